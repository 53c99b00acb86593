import { and, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import { schema, type Tx } from '@pingvas/db';
import {
  chargeCredits,
  dispatchModel,
  FAILURE_MESSAGES,
  MAX_JOB_ATTEMPTS,
  PLANS,
  type FailureCode,
  type JobEvent,
  type Tier,
} from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { capture, release } from '../credits/ledger.js';
import { publishJobEvent } from './bus.js';
import { enqueue, finishRunning, standing, type QueueEntry } from './queue.js';

/**
 * The job's state changes that several callers share (worker callbacks, the reconciler,
 * cancel). Each runs inside the caller's transaction with the job row locked; what must
 * happen in Redis afterwards is returned, and done by `afterStop` once the commit landed.
 */

const jobs = schema.generationJobs;
export type JobRow = typeof jobs.$inferSelect;

/**
 * The row's version, in microseconds since the epoch. Every change of a job sets
 * updated_at through `nextVersion`, which strictly grows per row even when clocks tie,
 * so a subscriber can tell which published events its snapshot already contains.
 */
export const jobVersion = sql<string>`(extract(epoch from ${jobs.updatedAt}) * 1000000)::bigint::text`;
export const nextVersion = sql`greatest(clock_timestamp(), ${jobs.updatedAt} + interval '1 microsecond')`;

/** The job is running under this lease, and the lease has not run out: what every call after a claim is fenced by. */
export function leaseHeld(lease: { jobId: string; leaseToken: string }): SQL {
  return and(
    eq(jobs.id, lease.jobId),
    eq(jobs.status, 'in_progress'),
    eq(jobs.leaseToken, lease.leaseToken),
    gt(jobs.leaseExpiresAt, sql`now()`),
  )!;
}

export async function lockJob(tx: Tx, jobId: string): Promise<JobRow | null> {
  const [row] = await tx.select().from(jobs).where(eq(jobs.id, jobId)).for('update');
  return row ?? null;
}

export async function tierOf(tx: Tx, userId: string): Promise<Tier> {
  const [row] = await tx.select({ tier: schema.users.tier }).from(schema.users).where(eq(schema.users.id, userId));
  return row?.tier ?? 'free';
}

export function queueEntryFor(
  job: Pick<JobRow, 'id' | 'userId' | 'queueScore' | 'model' | 'kind'>,
  tier: Tier,
): QueueEntry {
  return {
    jobId: job.id,
    userId: job.userId,
    score: job.queueScore,
    concurrency: PLANS[tier].concurrentJobs,
    model: dispatchModel(job),
  };
}

export interface Stopped {
  jobId: string;
  outcome: 'retrying' | 'requeued' | 'failed' | 'cancelled';
  version: number;
  /** For retrying/requeued: where it goes back in the queue. */
  requeue?: QueueEntry;
  /** For failed/cancelled: what the user is told. */
  event?: JobEvent;
}

async function update(tx: Tx, jobId: string, values: PgUpdateSetSource<typeof jobs>): Promise<number> {
  // Every stop ends whatever model load the run was waiting for.
  const [row] = await tx
    .update(jobs)
    .set({ ...values, loadingModel: false, updatedAt: nextVersion })
    .where(eq(jobs.id, jobId))
    .returning({ version: jobVersion });
  return Number(row!.version);
}

/** A cancelled job pays for the engine seconds it used (if any), and gets the rest back. */
async function cancelRun(tx: Tx, job: JobRow, engineSeconds: number | undefined): Promise<Stopped> {
  const charged = engineSeconds && engineSeconds > 0 ? chargeCredits(engineSeconds, job.estimatedCredits) : 0;
  if (charged > 0) await capture(tx, { userId: job.userId, holdId: job.holdId!, amount: charged });
  else await release(tx, { userId: job.userId, holdId: job.holdId! });
  const version = await update(tx, job.id, {
    status: 'cancelled',
    finishedAt: sql`now()`,
    engineSeconds: engineSeconds ?? null,
    chargedCredits: charged,
    leaseExpiresAt: null,
    failureCode: 'CANCELLED',
    failureMessage: FAILURE_MESSAGES.CANCELLED,
  });
  return {
    jobId: job.id,
    outcome: 'cancelled',
    version,
    event: { type: 'cancelled', jobId: job.id, refunded: job.estimatedCredits - charged },
  };
}

/**
 * A run of the job ended without an image (worker failure, lease expiry, over-run, user
 * cancel): cancelled if the user asked, else back to pending for another attempt, else
 * failed after MAX_JOB_ATTEMPTS with the whole hold released.
 */
export async function stopRun(
  tx: Tx,
  job: JobRow,
  input: { code: FailureCode; message: string; engineSeconds?: number },
): Promise<Stopped> {
  if (job.cancelRequested) return cancelRun(tx, job, input.code === 'CANCELLED' ? input.engineSeconds : undefined);
  const attempts = job.retryCount + 1;
  if (attempts < MAX_JOB_ATTEMPTS) {
    const version = await update(tx, job.id, {
      status: 'pending',
      retryCount: attempts,
      leaseExpiresAt: null,
      workerId: null,
      progress: 0,
      failureCode: input.code,
      failureMessage: input.message,
    });
    return { jobId: job.id, outcome: 'retrying', version, requeue: queueEntryFor(job, await tierOf(tx, job.userId)) };
  }
  await release(tx, { userId: job.userId, holdId: job.holdId! });
  const version = await update(tx, job.id, {
    status: 'failed',
    retryCount: attempts,
    finishedAt: sql`now()`,
    leaseExpiresAt: null,
    engineSeconds: input.engineSeconds ?? null,
    chargedCredits: 0,
    failureCode: input.code,
    failureMessage: input.message,
  });
  return {
    jobId: job.id,
    outcome: 'failed',
    version,
    event: {
      type: 'failed',
      jobId: job.id,
      code: input.code,
      message: FAILURE_MESSAGES[input.code],
      refunded: job.estimatedCredits,
    },
  };
}

/** A worker hands the job back unfinished (shutdown): not an attempt, same place in the queue. */
export async function handBack(tx: Tx, job: JobRow): Promise<Stopped> {
  if (job.cancelRequested) return cancelRun(tx, job, undefined);
  const version = await update(tx, job.id, { status: 'pending', leaseExpiresAt: null, workerId: null, progress: 0 });
  return { jobId: job.id, outcome: 'requeued', version, requeue: queueEntryFor(job, await tierOf(tx, job.userId)) };
}

/** After the commit: free the owner's running slot, re-queue or tell the user. */
export async function afterStop(deps: AppDeps, stopped: Stopped): Promise<void> {
  await finishRunning(deps, stopped.jobId);
  if (stopped.requeue) await enqueueAndAnnounce(deps, stopped.requeue, stopped.version);
  else if (stopped.event) await publishJobEvent(deps, stopped.version, stopped.event);
}

/** Queues the job and publishes where it stands; returns that standing. */
export async function enqueueAndAnnounce(
  deps: AppDeps,
  entry: QueueEntry,
  version: number,
): Promise<{ position: number; estimatedWaitSeconds: number }> {
  // The reads for the estimate go out with the enqueue (one pipelined round trip).
  const where = (await standing(deps, entry.jobId, enqueue(deps, entry)))!;
  await publishJobEvent(deps, version, { type: 'queued', jobId: entry.jobId, ...where });
  return where;
}
