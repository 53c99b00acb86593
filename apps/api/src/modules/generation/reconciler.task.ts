import { and, asc, eq, gt, lt, or, sql } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import type { BackgroundTask } from '../../infra/loop.js';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';
import { afterStop, queueEntryFor, stopRun, type Stopped } from './jobs.js';
import { requeueMissing, syncRunning, type QueueEntry } from './queue.js';

/**
 * Repairs what crashes leave behind, with PostgreSQL as the truth:
 * 1. runs whose lease expired, or that are past their own deadline (set at claim from the
 *    job's hold, core jobDeadline; JOB_MAX_RUN_SECONDS from the start for rows claimed
 *    without one), are retried (or failed with the hold released after MAX_JOB_ATTEMPTS, or
 *    cancelled if asked). A run that heartbeats inside its deadline is left alone, however long;
 * 2. pending jobs missing from the Redis queue (create died between commit and ZADD, Redis
 *    lost data, a claim died before its commit) are queued again;
 * 3. the per-user running counts in Redis are rebuilt from the in_progress jobs.
 *
 * Every API replica runs it; no leader is needed. Step 1 locks each job with
 * FOR UPDATE SKIP LOCKED and re-checks its condition under the lock, so two reconcilers
 * (or a reconciler and the worker's own late call) never both act on one run. Steps 2 and 3
 * are idempotent Lua scripts.
 */

const jobs = schema.generationJobs;
/** Rows handled per pass and step; the next pass continues. */
const BATCH = 500;

export interface ReconcileReport {
  retried: number;
  failed: number;
  cancelled: number;
  requeued: number;
  running: number;
}

function runDeadline(deps: AppDeps) {
  const ceiling = sql`${jobs.startedAt} + make_interval(secs => ${deps.config.JOB_MAX_RUN_SECONDS})`;
  return sql`coalesce(${jobs.runDeadlineAt}, ${ceiling})`;
}

function overdue(deps: AppDeps) {
  return and(
    eq(jobs.status, 'in_progress'),
    or(lt(jobs.leaseExpiresAt, sql`now()`), lt(runDeadline(deps), sql`now()`)),
  );
}

async function expireRuns(deps: AppDeps, report: ReconcileReport): Promise<void> {
  const candidates = await withSystem(deps.db, (tx) =>
    tx.select({ id: jobs.id }).from(jobs).where(overdue(deps)).limit(BATCH),
  );
  for (const { id } of candidates) {
    const stopped: Stopped | null = await withSystem(deps.db, async (tx) => {
      const [row] = await tx
        .select({
          job: jobs,
          leaseExpired: sql<boolean>`${jobs.leaseExpiresAt} < now()`,
          allowedSeconds: sql<number>`round(extract(epoch from ${runDeadline(deps)} - ${jobs.startedAt}))::int`,
        })
        .from(jobs)
        .where(and(eq(jobs.id, id), overdue(deps)))
        .for('update', { skipLocked: true });
      if (!row) return null;
      const { job, leaseExpired, allowedSeconds } = row;
      return stopRun(
        tx,
        job,
        leaseExpired
          ? { code: 'LEASE_EXPIRED', message: `lease of worker ${job.workerId ?? '?'} expired` }
          : { code: 'TIMEOUT', message: `ran past its deadline (${allowedSeconds} s from the start)` },
      );
    });
    if (!stopped) continue;
    await afterStop(deps, stopped);
    if (stopped.outcome === 'failed') report.failed += 1;
    else if (stopped.outcome === 'cancelled') report.cancelled += 1;
    else report.retried += 1;
  }
}

async function requeuePending(deps: AppDeps, report: ReconcileReport): Promise<void> {
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await withSystem(deps.db, (tx) =>
      tx
        .select({
          id: jobs.id,
          userId: jobs.userId,
          queueScore: jobs.queueScore,
          model: jobs.model,
          kind: jobs.kind,
          tier: schema.users.tier,
        })
        .from(jobs)
        .innerJoin(schema.users, eq(schema.users.id, jobs.userId))
        .where(and(eq(jobs.status, 'pending'), gt(jobs.id, after)))
        .orderBy(asc(jobs.id))
        .limit(BATCH),
    );
    const entries: QueueEntry[] = rows.map((row) => queueEntryFor(row, row.tier));
    report.requeued += await requeueMissing(deps, entries);
    if (rows.length < BATCH) return;
    after = rows.at(-1)!.id;
  }
}

async function syncRunningCounts(deps: AppDeps, report: ReconcileReport): Promise<void> {
  const running = await withSystem(deps.db, (tx) =>
    tx.select({ jobId: jobs.id, userId: jobs.userId }).from(jobs).where(eq(jobs.status, 'in_progress')),
  );
  report.running = await syncRunning(deps, running);
}

/**
 * A claim whose commit lands between this step's DB read and its Lua call can lose its
 * running entry (or a job finishing then can keep one) until the next pass: the count is
 * off by one for at most RECONCILE_INTERVAL_MS, never for good.
 */
export async function reconcileOnce(deps: AppDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { retried: 0, failed: 0, cancelled: 0, requeued: 0, running: 0 };
  await expireRuns(deps, report);
  await requeuePending(deps, report);
  await syncRunningCounts(deps, report);
  if (report.retried + report.failed + report.cancelled + report.requeued > 0)
    deps.logger.info({ ...report }, 'reconciler repaired jobs');
  return report;
}

export function startReconciler(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'reconciler',
    intervalMs: deps.config.RECONCILE_INTERVAL_MS,
    logger: deps.logger,
    tick: async () => {
      await reconcileOnce(deps);
    },
  });
}
