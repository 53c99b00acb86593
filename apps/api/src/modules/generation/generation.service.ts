import { randomInt, randomUUID } from 'node:crypto';
import { and, count, desc, eq, getTableColumns, sql, type SQL } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import {
  checkPlanLimits,
  decodeKeysetCursor,
  DEFAULT_SAMPLER,
  DomainError,
  encodeKeysetCursor,
  estimateCredits,
  FAILURE_CODES,
  FAILURE_MESSAGES,
  KEYSET_TIME_FORMAT,
  MAX_SEED,
  notFound,
  PLANS,
  queueScore,
  type FailureCode,
  type GenerationParams,
  type JobState,
} from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { AppDeps } from '../../deps.js';
import { getBalance, hold, release } from '../credits/ledger.js';
import { hitRateLimit } from '../../infra/rate-limit.js';
import { publishJobEvent } from './bus.js';
import { enqueueAndAnnounce, jobVersion, lockJob, nextVersion, queueEntryFor, type JobRow } from './jobs.js';
import { dequeue, standing } from './queue.js';

const jobs = schema.generationJobs;
const images = schema.images;

export interface CreateResult {
  jobId: string;
  status: 'pending';
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

/**
 * Validates against the plan, holds the estimate and inserts the job `pending`, in one
 * transaction. Seed and sampler are resolved here so every retry re-runs the same image.
 * Queuing is the separate next step (`enqueueCreated`): if it never happens, the
 * reconciler finds the pending job missing from Redis and queues it.
 */
export async function createJob(
  deps: AppDeps,
  user: SessionUser,
  params: GenerationParams,
): Promise<{ job: JobRow; version: number }> {
  const plan = PLANS[user.tier];
  const tooLarge = checkPlanLimits(params, user.tier);
  if (tooLarge) throw new DomainError('PLAN_LIMIT', tooLarge, { limit: 'maxPixels', allowed: plan.maxPixels });
  const estimatedCredits = estimateCredits(params);
  const jobId = randomUUID();
  return withUser(deps.db, user.id, async (tx) => {
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
    if (waiting!.n >= plan.maxPendingJobs) {
      throw new DomainError(
        'PLAN_LIMIT',
        `The ${plan.name} plan allows ${plan.maxPendingJobs} waiting jobs; wait for some to start.`,
        {
          limit: 'maxPendingJobs',
          allowed: plan.maxPendingJobs,
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
        seed: params.seed ?? randomInt(0, MAX_SEED + 1),
        sampler: params.sampler ?? DEFAULT_SAMPLER,
        estimatedCredits,
        holdId: held.id,
        priority: plan.queuePriority,
        queueScore: queueScore(plan.queuePriority, Date.now()),
        updatedAt: sql`clock_timestamp()`,
      })
      .returning({ ...getTableColumns(jobs), version: jobVersion });
    const { version, ...row } = job!;
    return { job: row, version: Number(version) };
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
    estimatedCredits: job.estimatedCredits,
    queuePosition: where?.position ?? null,
    estimatedWaitSeconds: where?.estimatedWaitSeconds ?? null,
  };
}

export async function createGeneration(
  deps: AppDeps,
  user: SessionUser,
  params: GenerationParams,
): Promise<CreateResult> {
  await checkCreateRate(deps, user.id);
  return enqueueCreated(deps, user, await createJob(deps, user, params));
}

function failureOf(job: Pick<JobRow, 'status' | 'failureCode'>): { code: FailureCode; message: string } | null {
  if (job.status !== 'failed' && job.status !== 'cancelled') return null;
  const code = (FAILURE_CODES as readonly string[]).includes(job.failureCode ?? '')
    ? (job.failureCode as FailureCode)
    : 'ENGINE_ERROR';
  return { code, message: FAILURE_MESSAGES[code] };
}

type ImageRow = Pick<typeof images.$inferSelect, 'id' | 'width' | 'height' | 'thumbKey' | 'originalKey'>;

export interface JobView {
  id: string;
  status: JobState;
  prompt: string;
  negativePrompt: string | null;
  model: string;
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  seed: number;
  sampler: string;
  estimatedCredits: number;
  chargedCredits: number | null;
  /** Failed attempts so far. */
  retryCount: number;
  progress: number;
  /** Running, and waiting for its model to load on the worker. */
  loadingModel: boolean;
  cancelRequested: boolean;
  /** Why it failed or was cancelled, in words for the user. */
  failure: { code: FailureCode; message: string } | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  image: { id: string; width: number; height: number; thumbUrl: string; url: string } | null;
}

async function toView(deps: AppDeps, job: JobRow, image: ImageRow | null): Promise<JobView> {
  return {
    id: job.id,
    status: job.status,
    prompt: job.prompt,
    negativePrompt: job.negativePrompt,
    model: job.model,
    width: job.width,
    height: job.height,
    steps: job.steps,
    cfgScale: job.cfgScale,
    seed: job.seed,
    sampler: job.sampler,
    estimatedCredits: job.estimatedCredits,
    chargedCredits: job.chargedCredits,
    retryCount: job.retryCount,
    progress: job.progress,
    loadingModel: job.status === 'in_progress' && job.loadingModel,
    cancelRequested: job.cancelRequested,
    failure: failureOf(job),
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    image: image
      ? {
          id: image.id,
          width: image.width,
          height: image.height,
          thumbUrl: await deps.store.readUrl(image.thumbKey),
          url: await deps.store.readUrl(image.originalKey),
        }
      : null,
  };
}

const imageColumns = {
  id: images.id,
  width: images.width,
  height: images.height,
  thumbKey: images.thumbKey,
  originalKey: images.originalKey,
};

/** The user's own job (another user's reads as not found), with its queue standing while pending. */
export async function getJob(
  deps: AppDeps,
  userId: string,
  jobId: string,
): Promise<JobView & { queuePosition: number | null; estimatedWaitSeconds: number | null }> {
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .select({ job: jobs, image: imageColumns })
      .from(jobs)
      .leftJoin(images, eq(images.jobId, jobs.id))
      .where(eq(jobs.id, jobId)),
  );
  if (!row) throw notFound('Job');
  const where = row.job.status === 'pending' ? await standing(deps, jobId) : null;
  return {
    ...(await toView(deps, row.job, row.image)),
    queuePosition: where?.position ?? null,
    estimatedWaitSeconds: where?.estimatedWaitSeconds ?? null,
  };
}

/** The user's jobs newest first, keyset-paginated on (created_at, id) (page N costs what page 1 costs). */
export async function listJobs(
  deps: AppDeps,
  userId: string,
  input: { cursor?: string; limit: number; status?: JobState },
): Promise<{ items: JobView[]; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(jobs.userId, userId)];
  if (input.status) conditions.push(eq(jobs.status, input.status));
  if (input.cursor) {
    const after = decodeKeysetCursor('jobs', input.cursor);
    conditions.push(sql`(${jobs.createdAt}, ${jobs.id}) < (${after.time}::timestamptz, ${after.id}::uuid)`);
  }
  const position = sql<string>`to_char(${jobs.createdAt} at time zone 'UTC', ${KEYSET_TIME_FORMAT})`;
  const rows = await withUser(deps.db, userId, (tx) =>
    tx
      .select({ job: jobs, image: imageColumns, position })
      .from(jobs)
      .leftJoin(images, eq(images.jobId, jobs.id))
      .where(and(...conditions))
      .orderBy(desc(jobs.createdAt), desc(jobs.id))
      .limit(input.limit + 1),
  );
  const page = rows.slice(0, input.limit);
  const last = page.at(-1);
  return {
    items: await Promise.all(page.map((r) => toView(deps, r.job, r.image))),
    nextCursor:
      rows.length > input.limit && last ? encodeKeysetCursor('jobs', { time: last.position, id: last.job.id }) : null,
  };
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
