import { randomUUID } from 'node:crypto';
import { and, eq, getTableColumns, sql } from 'drizzle-orm';
import { schema, withSystem, type Tx } from '@pingvas/db';
import {
  chargeCredits,
  DomainError,
  jobDeadline,
  type ClaimedInputImage,
  type ClaimedJob,
  type ClaimInput,
  type CompleteInput,
  type CompleteResult,
  paramsOf,
  type EngineParams,
  type FailInput,
  type FailResult,
  type HeartbeatInput,
  type HeartbeatResult,
  type ReleaseInput,
  type UpscaleScale,
} from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { attemptKeys, newAttemptPrefix } from '../../infra/object-store.js';
import { capture, getBalance } from '../credits/ledger.js';
import { busFor, publishJobEvent } from '../generation/bus.js';
import {
  afterStop,
  handBack,
  jobVersion,
  leaseHeld,
  lockJob,
  nextVersion,
  stopRun,
  type JobRow,
} from '../generation/jobs.js';
import { claimSettled, finishRunning, popEligible, recordDuration, workerSeen } from '../generation/queue.js';
import { observeJobCompleted } from '../metrics/metrics.js';
import { webpSize } from './image-headers.js';
import { checkUploadedImages } from './upload.service.js';

/**
 * The API side of the worker protocol (packages/core/src/worker-protocol.ts). Every call
 * after claim is fenced by the lease token the claim handed out: a worker whose lease was
 * taken over (expired and retried by the reconciler, or re-claimed) is refused LEASE_LOST.
 */

const jobs = schema.generationJobs;

function leaseLost(jobId: string): DomainError<'LEASE_LOST'> {
  return new DomainError('LEASE_LOST', 'This job is no longer leased to you; drop it.', { jobId });
}

/** What the engine runs with; an upscale runs on its source, so its params carry the source's size. */
function engineParams(job: JobRow): EngineParams {
  const upscaled = job.kind === 'upscale';
  return paramsOf({
    ...job,
    width: upscaled ? job.initWidth! : job.width,
    height: upscaled ? job.initHeight! : job.height,
  });
}

/** The run's deadline from the job's own hold (core jobDeadline), stored on the row it was claimed with. */
async function withRunDeadline<T extends JobRow>(tx: Tx, deps: AppDeps, job: T): Promise<T> {
  const { runSeconds } = runDeadlineOf(deps, job);
  const [row] = await tx
    .update(jobs)
    .set({ runDeadlineAt: sql`${jobs.startedAt} + make_interval(secs => ${runSeconds})` })
    .where(eq(jobs.id, job.id))
    .returning({ runDeadlineAt: jobs.runDeadlineAt });
  return { ...job, runDeadlineAt: row!.runDeadlineAt };
}

function runDeadlineOf(deps: AppDeps, job: Pick<JobRow, 'estimatedCredits'>) {
  return jobDeadline(job.estimatedCredits, {
    secondsPerCredit: deps.config.JOB_SECONDS_PER_CREDIT,
    loadAllowanceSeconds: deps.config.JOB_LOAD_ALLOWANCE_SECONDS,
    uploadAllowanceSeconds: deps.config.JOB_UPLOAD_ALLOWANCE_SECONDS,
    ceilingSeconds: deps.config.JOB_MAX_RUN_SECONDS,
  });
}

/**
 * The job as the worker runs it: its kind's fields, and presigned GETs of its stored inputs that
 * live as long as the run may (never less than a lease). Presigned rather than the CDN's read URL:
 * those are sized for browsers, and a worker needs the object as stored.
 */
async function claimedJob(deps: AppDeps, job: JobRow): Promise<ClaimedJob['job']> {
  const expiresSeconds = Math.max(deps.config.LEASE_SECONDS, runDeadlineOf(deps, job).runSeconds);
  const input = async (key: string): Promise<ClaimedInputImage> => ({
    url: await deps.store.presignGet(key, { expiresSeconds }),
    width: job.initWidth!,
    height: job.initHeight!,
  });
  const inputs: ClaimedJob['job']['inputs'] = {};
  if (job.initKey) inputs.initImage = await input(job.initKey);
  if (job.maskKey) inputs.mask = await input(job.maskKey);
  return {
    id: job.id,
    userId: job.userId,
    kind: job.kind,
    params: engineParams(job),
    attempt: job.retryCount + 1,
    count: job.count,
    ...(job.strength !== null ? { strength: job.strength } : {}),
    ...(job.upscaleScale !== null
      ? { upscale: { scale: job.upscaleScale as UpscaleScale, width: job.width, height: job.height } }
      : {}),
    inputs,
  };
}

/** One pop from Redis, made real by the DB; skips popped jobs that are no longer pending. */
async function claimOnce(deps: AppDeps, input: ClaimInput): Promise<ClaimedJob | null> {
  for (;;) {
    const popped = await popEligible(deps, input.models);
    if (!popped) return null;
    const token = randomUUID();
    let claimed: (JobRow & { version: string }) | undefined;
    try {
      [claimed] = await withSystem(deps.db, async (tx) => {
        const rows = await tx
          .update(jobs)
          .set({
            status: 'in_progress',
            startedAt: sql`now()`,
            leaseToken: token,
            workerId: input.workerId,
            progress: 0,
            attemptPrefix: newAttemptPrefix(),
            loadingModel: false,
            leaseExpiresAt: sql`now() + make_interval(secs => ${deps.config.LEASE_SECONDS})`,
            updatedAt: nextVersion,
          })
          .where(and(eq(jobs.id, popped.jobId), eq(jobs.status, 'pending')))
          .returning({ ...getTableColumns(jobs), version: jobVersion });
        return rows[0] ? [await withRunDeadline(tx, deps, rows[0])] : [];
      });
    } catch (err) {
      // PostgreSQL failed us: the job is still pending there. Freed from `claiming`, the
      // reconciler's next pass sees it missing from the queue and puts it back.
      await finishRunning(deps, popped.jobId).catch(() => undefined);
      throw err;
    }
    if (!claimed) {
      // Cancelled (or otherwise settled) since it was queued; a job another claim runs keeps its slot.
      const [current] = await withSystem(deps.db, (tx) =>
        tx.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, popped.jobId)),
      );
      if (current?.status === 'in_progress') await claimSettled(deps, popped.jobId);
      else await finishRunning(deps, popped.jobId);
      continue;
    }
    const { version, ...job } = claimed;
    deps.logger.info({ jobId: job.id, workerId: input.workerId, attempt: job.retryCount + 1 }, 'job claimed');
    await Promise.all([
      claimSettled(deps, job.id),
      publishJobEvent(deps, Number(version), { type: 'started', jobId: job.id }),
    ]);
    return {
      job: await claimedJob(deps, job),
      lease: {
        token,
        expiresAt: job.leaseExpiresAt!,
        heartbeatIntervalMs: Math.floor((deps.config.LEASE_SECONDS * 1000) / 3),
      },
      deadline: { engineSeconds: runDeadlineOf(deps, job).engineSeconds, expiresAt: job.runDeadlineAt! },
    };
  }
}

/**
 * Claims the best eligible job. With waitMs > 0 an empty queue is a long poll: the call
 * sleeps on the process's pub/sub wake-up channel (published by every enqueue and every
 * freed running slot), so a new job reaches an idle worker within one Redis round trip
 * instead of a polling interval. The wake-up counter is read before each attempt, so a
 * wake-up that lands during the attempt is not lost. If the worker hung up meanwhile, a
 * job claimed for it is handed straight back (not counted as an attempt).
 */
export async function claimJob(deps: AppDeps, input: ClaimInput, signal?: AbortSignal): Promise<ClaimedJob | null> {
  const waitMs = input.waitMs ?? 0;
  const deadline = Date.now() + waitMs;
  const bus = busFor(deps);
  await workerSeen(deps, input.workerId);
  for (;;) {
    const seen = waitMs > 0 ? await bus.wakeupCounter() : 0;
    const claimed = await claimOnce(deps, input);
    if (claimed) {
      if (signal?.aborted) {
        await releaseJob(deps, { jobId: claimed.job.id, leaseToken: claimed.lease.token });
        return null;
      }
      return claimed;
    }
    const left = deadline - Date.now();
    if (left <= 0 || signal?.aborted || bus.isClosed) return null;
    await bus.waitForWakeup(seen, left, signal);
  }
}

/** A heartbeat's preview frame as the browser gets it; refused unless it is a WebP of the declared size. */
function previewFrame(preview: NonNullable<HeartbeatInput['preview']>) {
  const size = webpSize(Buffer.from(preview.webpBase64, 'base64'));
  if (!size) throw new DomainError('BAD_REQUEST', 'preview.webpBase64 is not a WebP image.', { field: 'preview' });
  if (size.width !== preview.width || size.height !== preview.height) {
    throw new DomainError(
      'BAD_REQUEST',
      `The preview is ${size.width}×${size.height}, not the ${preview.width}×${preview.height} declared.`,
      { field: 'preview', width: size.width, height: size.height },
    );
  }
  const { step, width, height, webpBase64 } = preview;
  return { step, width, height, dataUrl: `data:image/webp;base64,${webpBase64}` };
}

/**
 * Extends the lease and records progress; the answer says whether the user cancelled. A preview
 * frame is passed on to the job's live watchers as a `preview` event and stored nowhere.
 */
export async function heartbeat(deps: AppDeps, input: HeartbeatInput): Promise<HeartbeatResult> {
  // Checked before the lease is touched: a refused heartbeat changes nothing.
  const preview = input.preview ? previewFrame(input.preview) : null;
  const [row] = await withSystem(deps.db, (tx) =>
    tx
      .update(jobs)
      .set({
        leaseExpiresAt: sql`now() + make_interval(secs => ${deps.config.LEASE_SECONDS})`,
        progress: input.progress ? Math.round(input.progress.percent) : undefined,
        // Loading until the worker says otherwise: any progress means the model is in.
        loadingModel: input.progress ? false : input.loadingModel,
        updatedAt: nextVersion,
      })
      .where(leaseHeld(input))
      .returning({
        cancel: jobs.cancelRequested,
        leaseExpiresAt: jobs.leaseExpiresAt,
        workerId: jobs.workerId,
        version: jobVersion,
      }),
  );
  if (!row) throw leaseLost(input.jobId);
  if (row.workerId) await workerSeen(deps, row.workerId);
  if (input.progress) {
    const { percent, step, totalSteps } = input.progress;
    await publishJobEvent(deps, Number(row.version), {
      type: 'progress',
      jobId: input.jobId,
      percent,
      step,
      totalSteps,
    });
  } else if (input.loadingModel) {
    await publishJobEvent(deps, Number(row.version), { type: 'loading-model', jobId: input.jobId });
  }
  if (preview) await publishJobEvent(deps, Number(row.version), { type: 'preview', jobId: input.jobId, ...preview });
  return { cancel: row.cancel, leaseExpiresAt: row.leaseExpiresAt! };
}

/** One gallery row per image of the job, each pointing at its own keys of this attempt. */
function imageRows(job: JobRow, attemptPrefix: string, input: CompleteInput) {
  return input.images.map((image, index) => {
    const keys = attemptKeys(attemptPrefix, index);
    return {
      userId: job.userId,
      jobId: job.id,
      jobIndex: index,
      kind: job.kind,
      // The gallery image the job started from; an uploaded start image has no gallery row.
      parentImageId: job.initImageId,
      originalKey: keys.original,
      thumbKey: keys.thumb,
      width: image.width,
      height: image.height,
      bytes: image.bytes,
      prompt: job.prompt,
      negativePrompt: job.negativePrompt,
      model: job.model,
      steps: job.steps,
      cfgScale: job.cfgScale,
      // The engine numbers a batch's seeds from the job's: image i is what seed + i makes alone.
      seed: job.seed + index,
      sampler: job.sampler,
      engine: input.engine,
    };
  });
}

/**
 * The images are uploaded: after checking the report and the stored objects, one transaction
 * marks the job completed, inserts one image row per index (pointing at this attempt's keys)
 * and captures the charge for the engine seconds, once for the whole batch. A replay by the
 * same lease returns the first result (the same images, one charge); any other lease is refused.
 */
export async function completeJob(deps: AppDeps, input: CompleteInput): Promise<CompleteResult> {
  const [current] = await withSystem(deps.db, (tx) => tx.select().from(jobs).where(eq(jobs.id, input.jobId)));
  if (!current || current.leaseToken !== input.leaseToken) throw leaseLost(input.jobId);
  if (current.status === 'completed') return { creditsCharged: current.chargedCredits ?? 0, replayed: true };
  // A job claimed before attempt prefixes existed has nowhere checked to upload: it is retried.
  if (current.status !== 'in_progress' || !current.attemptPrefix) throw leaseLost(input.jobId);
  const attemptPrefix = current.attemptPrefix;
  await checkUploadedImages(deps.store, { ...current, attemptPrefix }, input.images);

  const done = await withSystem(deps.db, async (tx) => {
    const job = await lockJob(tx, input.jobId);
    if (!job || job.leaseToken !== input.leaseToken) throw leaseLost(input.jobId);
    if (job.status === 'completed') return { replayed: true as const, charged: job.chargedCredits ?? 0 };
    // The prefix is fixed for the lease's life; checked under the lock all the same, since the
    // orphan sweep relies on no image ever pointing at a prefix that is not this running attempt's.
    if (job.status !== 'in_progress' || job.attemptPrefix !== attemptPrefix) throw leaseLost(input.jobId);
    const charged = chargeCredits(input.engineSeconds, job.estimatedCredits);
    const [updated] = await tx
      .update(jobs)
      .set({
        status: 'completed',
        finishedAt: sql`now()`,
        engineSeconds: input.engineSeconds,
        chargedCredits: charged,
        progress: 100,
        loadingModel: false,
        leaseExpiresAt: null,
        updatedAt: nextVersion,
      })
      .where(eq(jobs.id, job.id))
      .returning({ version: jobVersion });
    const made = await tx
      .insert(schema.images)
      .values(imageRows(job, attemptPrefix, input))
      .returning({
        id: schema.images.id,
        width: schema.images.width,
        height: schema.images.height,
        index: schema.images.jobIndex,
      });
    await capture(tx, { userId: job.userId, holdId: job.holdId!, amount: charged });
    const balance = await getBalance(tx, job.userId);
    return {
      replayed: false as const,
      charged,
      version: Number(updated!.version),
      images: made.sort((a, b) => a.index - b.index).map(({ index: _index, ...image }) => image),
      balance: balance.available,
    };
  });
  if (done.replayed) return { creditsCharged: done.charged, replayed: true };
  observeJobCompleted(deps.metrics, { createdAt: current.createdAt, engineSeconds: input.engineSeconds });
  deps.logger.info(
    { jobId: input.jobId, engineSeconds: input.engineSeconds, creditsCharged: done.charged },
    'job completed',
  );

  await finishRunning(deps, input.jobId);
  await recordDuration(deps, input.engineSeconds);
  await publishJobEvent(deps, done.version, {
    type: 'completed',
    jobId: input.jobId,
    image: done.images[0]!,
    images: done.images,
    creditsCharged: done.charged,
    balance: done.balance,
  });
  return { creditsCharged: done.charged, replayed: false };
}

const OUTCOME_OF_STATUS = { pending: 'retrying', failed: 'failed', cancelled: 'cancelled' } as const;

/**
 * The run failed: retried (pending, retry_count + 1, re-queued), or failed for good after
 * MAX_JOB_ATTEMPTS with the hold released, or — after a user cancel — cancelled and
 * charged only for the engine seconds used. A replay by the same lease answers the same.
 */
export async function failJob(deps: AppDeps, input: FailInput): Promise<FailResult> {
  const stopped = await withSystem(deps.db, async (tx) => {
    const job = await lockJob(tx, input.jobId);
    if (!job || job.leaseToken !== input.leaseToken || job.status === 'completed') throw leaseLost(input.jobId);
    if (job.status !== 'in_progress') return { replay: OUTCOME_OF_STATUS[job.status] };
    return stopRun(tx, job, { code: input.code, message: input.message, engineSeconds: input.engineSeconds });
  });
  if ('replay' in stopped) return { outcome: stopped.replay };
  deps.logger.info({ jobId: input.jobId, code: input.code, outcome: stopped.outcome }, 'job run failed');
  await afterStop(deps, stopped);
  return { outcome: stopped.outcome === 'requeued' ? 'retrying' : stopped.outcome };
}

export interface ReleaseResult {
  /** requeued: back in the queue at its old place; cancelled: the user had cancelled it meanwhile. */
  outcome: 'requeued' | 'cancelled';
}

/** The worker hands the job back unfinished (shutdown); not counted as an attempt. */
export async function releaseJob(deps: AppDeps, input: ReleaseInput): Promise<ReleaseResult> {
  const stopped = await withSystem(deps.db, async (tx) => {
    const job = await lockJob(tx, input.jobId);
    if (!job || job.leaseToken !== input.leaseToken || job.status !== 'in_progress') throw leaseLost(input.jobId);
    return handBack(tx, job);
  });
  deps.logger.info({ jobId: input.jobId, outcome: stopped.outcome }, 'job handed back');
  await afterStop(deps, stopped);
  return { outcome: stopped.outcome === 'cancelled' ? 'cancelled' : 'requeued' };
}
