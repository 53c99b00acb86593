import { randomInt, randomUUID } from 'node:crypto';
import { and, count, eq, getTableColumns, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { schema, withUser, type Tx } from '@pingvas/db';
import {
  checkPlanLimits,
  classifyCreateInput,
  DEFAULT_SAMPLER,
  DomainError,
  estimateCreateInput,
  estimateUpscale,
  FAILURE_MESSAGES,
  MAX_SEED,
  notFound,
  PLANS,
  queueScore,
  upscalePlan,
  type createJobInputSchema,
  paramsOf,
  type GenerationParams,
  type JobKind,
  type JobState,
  type UpscaleInput,
  type UpscaleScale,
} from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { AppDeps } from '../../deps.js';
import { getBalance, hold, release } from '../credits/ledger.js';
import { hitRateLimit } from '../../infra/rate-limit.js';
import { publishJobEvent } from './bus.js';
import { resolveDiffusionInputs, resolveUpscaleSource, type JobInputColumns } from './job-inputs.js';
import { enqueueAndAnnounce, jobVersion, lockJob, nextVersion, queueEntryFor, type JobRow } from './jobs.js';
import { dequeue } from './queue.js';

/** `generation.create`'s input, parsed. */
export type CreateJobRequest = z.infer<typeof createJobInputSchema>;

const jobs = schema.generationJobs;

export interface CreateResult {
  jobId: string;
  status: 'pending';
  kind: JobKind;
  estimatedCredits: number;
  /** Jobs ahead of this one; null only if queuing failed (the reconciler queues it shortly). */
  queuePosition: number | null;
  estimatedWaitSeconds: number | null;
}

/** Refuses a create beyond GENERATION_RATE_LIMIT per window for this user. */
export async function checkCreateRate(deps: AppDeps, userId: string): Promise<void> {
  const verdict = await hitRateLimit(deps.redis, deps.keys, {
    scope: 'generation.create',
    subject: userId,
    limit: deps.config.GENERATION_RATE_LIMIT,
    windowSeconds: deps.config.GENERATION_RATE_WINDOW_SECONDS,
  });
  if (!verdict.allowed) {
    throw new DomainError(
      'TOO_MANY_REQUESTS',
      `Too many generations started; try again in ${verdict.retryAfterSeconds} s.`,
      {
        retryAfterSeconds: verdict.retryAfterSeconds,
      },
    );
  }
}

/** A job about to be inserted: its kind's columns, what it holds, and what it starts from. */
interface NewJob {
  kind: JobKind;
  /** For an upscale, width × height is the delivered size; the rest is copied from the source image. */
  params: GenerationParams;
  count: number;
  strength: number | null;
  upscaleScale: UpscaleScale | null;
  estimatedCredits: number;
  inputs: JobInputColumns;
}

/**
 * Holds the estimate and inserts the job `pending`, in one transaction with `plan`, which
 * resolves the job's inputs (so a refused input leaves nothing held). Seed and sampler are
 * resolved here so every retry re-runs the same image. Queuing is the separate next step
 * (`enqueueCreated`): if it never happens, the reconciler finds the pending job missing from
 * Redis and queues it.
 */
async function insertJob(
  deps: AppDeps,
  user: SessionUser,
  plan: (tx: Tx) => Promise<NewJob>,
): Promise<{ job: JobRow; version: number }> {
  const limits = PLANS[user.tier];
  const jobId = randomUUID();
  return withUser(deps.db, user.id, async (tx) => {
    const { params, estimatedCredits, inputs, ...kindColumns } = await plan(tx);
    // The hold locks the user's balance row until commit, which also serialises this count
    // against the user's concurrent creates: the cap cannot be overrun by a burst.
    const { hold: held } = await hold(tx, {
      userId: user.id,
      key: `hold:job:${jobId}`,
      amount: estimatedCredits,
      reference: `job:${jobId}`,
    });
    const [waiting] = await tx
      .select({ n: count() })
      .from(jobs)
      .where(and(eq(jobs.userId, user.id), eq(jobs.status, 'pending')));
    if (waiting!.n >= limits.maxPendingJobs) {
      throw new DomainError(
        'PLAN_LIMIT',
        `The ${limits.name} plan allows ${limits.maxPendingJobs} waiting jobs; wait for some to start.`,
        {
          limit: 'maxPendingJobs',
          allowed: limits.maxPendingJobs,
        },
      );
    }
    const [job] = await tx
      .insert(jobs)
      .values({
        id: jobId,
        userId: user.id,
        prompt: params.prompt,
        negativePrompt: params.negativePrompt ?? null,
        model: params.model,
        width: params.width,
        height: params.height,
        steps: params.steps,
        cfgScale: params.cfgScale,
        // A batch's image i has seed + i: a drawn seed leaves room for all of them, so each
        // image's own seed stays one `generation.create` takes.
        seed: params.seed ?? randomInt(0, MAX_SEED + 2 - kindColumns.count),
        sampler: params.sampler ?? DEFAULT_SAMPLER,
        ...kindColumns,
        ...inputs,
        estimatedCredits,
        holdId: held.id,
        priority: limits.queuePriority,
        queueScore: queueScore(limits.queuePriority, Date.now()),
        updatedAt: sql`clock_timestamp()`,
      })
      .returning({ ...getTableColumns(jobs), version: jobVersion });
    const { version, ...row } = job!;
    return { job: row, version: Number(version) };
  });
}

/** A txt2img, img2img or inpaint job from `generation.create`'s parsed input (committed, not yet queued). */
export async function createJob(
  deps: AppDeps,
  user: SessionUser,
  input: CreateJobRequest,
): Promise<{ job: JobRow; version: number }> {
  const job = classifyCreateInput(input);
  const tooLarge = checkPlanLimits(job.input, user.tier);
  if (tooLarge) {
    throw new DomainError('PLAN_LIMIT', tooLarge, { limit: 'maxPixels', allowed: PLANS[user.tier].maxPixels });
  }
  const { count: images, ...params } = job.input;
  return insertJob(deps, user, async (tx) => ({
    kind: job.kind,
    params,
    count: images,
    strength: job.kind === 'txt2img' ? null : job.input.strength,
    upscaleScale: null,
    estimatedCredits: estimateCreateInput(job),
    inputs: await resolveDiffusionInputs(tx, job),
  }));
}

/**
 * An upscale of one of the user's gallery images. The plan's pixel limit is not applied: making
 * an image larger than the plan generates is the point; `checkUpscaleSize` bounds it instead.
 */
export async function createUpscaleJob(
  deps: AppDeps,
  user: SessionUser,
  input: UpscaleInput,
): Promise<{ job: JobRow; version: number }> {
  return insertJob(deps, user, async (tx) => {
    const source = await resolveUpscaleSource(tx, user.id, input);
    const { delivered } = upscalePlan(source, input.scale);
    return {
      kind: 'upscale',
      params: paramsOf({ ...source, ...delivered }),
      count: 1,
      strength: null,
      upscaleScale: input.scale,
      estimatedCredits: estimateUpscale(source, input.scale),
      inputs: {
        initUploadId: null,
        initImageId: source.id,
        initKey: source.originalKey,
        initWidth: source.width,
        initHeight: source.height,
        maskUploadId: null,
        maskKey: null,
      },
    };
  });
}

/** Queues a just-created job. A Redis failure is logged, not thrown: the job is safe in PostgreSQL. */
export async function enqueueCreated(
  deps: AppDeps,
  user: SessionUser,
  created: { job: JobRow; version: number },
): Promise<CreateResult> {
  const { job } = created;
  let where: { position: number; estimatedWaitSeconds: number } | null = null;
  try {
    where = await enqueueAndAnnounce(deps, queueEntryFor(job, user.tier), created.version);
  } catch (err) {
    deps.logger.error({ err, jobId: job.id }, 'queuing a created job failed; the reconciler will queue it');
  }
  return {
    jobId: job.id,
    status: 'pending',
    kind: job.kind,
    estimatedCredits: job.estimatedCredits,
    queuePosition: where?.position ?? null,
    estimatedWaitSeconds: where?.estimatedWaitSeconds ?? null,
  };
}

export async function createGeneration(
  deps: AppDeps,
  user: SessionUser,
  input: CreateJobRequest,
): Promise<CreateResult> {
  await checkCreateRate(deps, user.id);
  return enqueueCreated(deps, user, await createJob(deps, user, input));
}

export async function createUpscale(deps: AppDeps, user: SessionUser, input: UpscaleInput): Promise<CreateResult> {
  await checkCreateRate(deps, user.id);
  return enqueueCreated(deps, user, await createUpscaleJob(deps, user, input));
}

export interface CancelResult {
  jobId: string;
  status: JobState;
  /** A running job stops at the worker's next heartbeat; it is charged only for engine seconds used. */
  cancelRequested: boolean;
  refunded: number;
}

/**
 * Pending: cancelled with its hold released at once. Running: flagged, and the worker's
 * next heartbeat stops it. Both paths lock the job row, as a claim's conditional update
 * does, so a cancel racing a claim ends exactly one way.
 */
export async function cancelJob(deps: AppDeps, userId: string, jobId: string): Promise<CancelResult> {
  const result = await withUser(deps.db, userId, async (tx) => {
    const job = await lockJob(tx, jobId);
    if (!job) throw notFound('Job');
    if (job.status === 'pending') {
      await release(tx, { userId, holdId: job.holdId! });
      const [row] = await tx
        .update(jobs)
        .set({
          status: 'cancelled',
          finishedAt: sql`now()`,
          chargedCredits: 0,
          failureCode: 'CANCELLED',
          failureMessage: FAILURE_MESSAGES.CANCELLED,
          updatedAt: nextVersion,
        })
        .where(eq(jobs.id, jobId))
        .returning({ version: jobVersion });
      return {
        jobId,
        status: 'cancelled' as const,
        cancelRequested: false,
        refunded: job.estimatedCredits,
        version: Number(row!.version),
      };
    }
    if (job.status === 'in_progress') {
      if (!job.cancelRequested) {
        await tx.update(jobs).set({ cancelRequested: true, updatedAt: nextVersion }).where(eq(jobs.id, jobId));
      }
      return { jobId, status: job.status, cancelRequested: true, refunded: 0, version: null };
    }
    if (job.status === 'cancelled')
      return { jobId, status: job.status, cancelRequested: job.cancelRequested, refunded: 0, version: null };
    throw new DomainError('CONFLICT', `This job already ${job.status === 'completed' ? 'completed' : 'failed'}.`, {
      status: job.status,
    });
  });
  if (result.version !== null) {
    await dequeue(deps, jobId);
    await publishJobEvent(deps, result.version, { type: 'cancelled', jobId, refunded: result.refunded });
  }
  const { version: _version, ...answer } = result;
  return answer;
}

/** The user's available balance, for the `completed` event of a late subscriber. */
export async function availableBalance(deps: AppDeps, userId: string): Promise<number> {
  return (await withUser(deps.db, userId, (tx) => getBalance(tx, userId))).available;
}
