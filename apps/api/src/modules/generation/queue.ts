import type { AppDeps } from '../../deps.js';
import { runScript } from './lua-scripts.js';

/**
 * The dispatch queue in Redis. PostgreSQL holds the truth of every job; this is only the
 * order in which workers get them, plus the running counts the claim gate needs. Every
 * multi-key change is one Lua script (./lua/<name>-<number of keys>.lua, loaded by
 * lua-scripts.ts), so the TypeScript here only names keys and arguments.
 */

/** Claims read the queue in batches of this many entries… */
export const CLAIM_SCAN_BATCH = 100;
/**
 * …and give up after this many: with every owner near the head at their concurrency limit,
 * a job further back waits until a slot frees (its owner's queued jobs are at most
 * PLANS[tier].maxPendingJobs, so this takes about ten busy pro users' full queues).
 */
export const CLAIM_SCAN_LIMIT = 1000;
/** A claim popped from Redis whose DB commit has not landed after this long has died. */
export const STALE_CLAIM_MS = 30_000;
/** Wait estimates average this many recent engine runs. */
const RECENT_DURATIONS = 50;
/** Without history, a job is assumed to take this long. */
const DEFAULT_JOB_SECONDS = 30;
/** A worker seen (claim or heartbeat) within this window counts as active. */
const WORKER_ACTIVE_MS = 60_000;

export interface QueueEntry {
  jobId: string;
  userId: string;
  score: number;
  /** The owner's plan limit on running jobs. */
  concurrency: number;
  /** The job's model: claims only hand it to a worker that can run it. */
  model: string;
}

/** What a claiming worker has loaded and can load (see lua/claim-8.lua); absent: any model, none warm. */
export interface WorkerModels {
  warm: string[];
  loadable: string[];
}

/** How far model affinity may reorder the queue (lua/claim-8.lua's model-aware block). */
export interface AffinityBounds {
  /** Runnable cold jobs from the head a claim may look past for a warm one. */
  window: number;
  /** The most a job may be passed over for warm jobs, in all (ms). */
  maxDelayMs: number;
}

/** Adds the job (again) and wakes idle claimers; returns how many jobs are ahead of it. */
export async function enqueue(deps: AppDeps, entry: QueueEntry): Promise<number> {
  const { keys } = deps;
  const rank = await runScript(
    deps.redis,
    'enqueue',
    [keys.queue, keys.queueOwners, keys.queueLimits, keys.queueClaiming, keys.queueModels],
    [entry.jobId, entry.score, entry.userId, entry.concurrency, keys.queueWakeup, entry.model],
  );
  return Number(rank);
}

/** Pops the best eligible job for a worker with these models (see lua/claim-8.lua), or null. */
export async function popEligible(
  deps: AppDeps,
  models?: WorkerModels,
  bounds: AffinityBounds = affinityBounds(deps),
  now = Date.now(),
): Promise<{ jobId: string; userId: string } | null> {
  const { keys } = deps;
  const result = (await runScript(
    deps.redis,
    'claim',
    [
      keys.queue,
      keys.queueOwners,
      keys.queueLimits,
      keys.queueClaiming,
      keys.runningJobs,
      keys.runningCounts,
      keys.queueModels,
      keys.queueSkipped,
    ],
    [
      now,
      CLAIM_SCAN_BATCH,
      CLAIM_SCAN_LIMIT,
      models ? models.warm.join(',') : '',
      models ? models.loadable.join(',') : '*',
      bounds.window,
      bounds.maxDelayMs,
    ],
  )) as [string, string] | null;
  return result ? { jobId: result[0], userId: result[1] } : null;
}

export function affinityBounds(deps: AppDeps): AffinityBounds {
  return {
    window: deps.config.DISPATCH_AFFINITY_WINDOW,
    maxDelayMs: deps.config.DISPATCH_AFFINITY_MAX_DELAY_SECONDS * 1000,
  };
}

/** The claim's DB commit is done (either way): the job is no longer "being claimed". */
export async function claimSettled(deps: AppDeps, jobId: string): Promise<void> {
  await deps.redis.zrem(deps.keys.queueClaiming, jobId);
}

/** Removes a queued job; true if it was there. */
export async function dequeue(deps: AppDeps, jobId: string): Promise<boolean> {
  const { keys } = deps;
  const removed = await runScript(
    deps.redis,
    'dequeue',
    [keys.queue, keys.queueOwners, keys.queueModels, keys.queueSkipped],
    [jobId],
  );
  return Number(removed) === 1;
}

/** A running job stopped: frees its owner's slot and wakes claimers (idempotent). */
export async function finishRunning(deps: AppDeps, jobId: string): Promise<void> {
  const { keys } = deps;
  await runScript(
    deps.redis,
    'finish',
    [keys.runningJobs, keys.runningCounts, keys.queue, keys.queueClaiming],
    [jobId, keys.queueWakeup],
  );
}

/** Re-adds the pending jobs that are neither queued nor being claimed; returns how many. */
export async function requeueMissing(deps: AppDeps, pending: QueueEntry[], now = Date.now()): Promise<number> {
  if (pending.length === 0) return 0;
  const { keys } = deps;
  const args = pending.flatMap((e) => [e.jobId, e.score, e.userId, e.concurrency, e.model]);
  const added = await runScript(
    deps.redis,
    'requeueMissing',
    [keys.queue, keys.queueOwners, keys.queueLimits, keys.queueClaiming, keys.queueModels],
    [now - STALE_CLAIM_MS, keys.queueWakeup, ...args],
  );
  return Number(added);
}

/** Rebuilds the running set and counts from PostgreSQL's in_progress jobs. */
export async function syncRunning(
  deps: AppDeps,
  running: { jobId: string; userId: string }[],
  now = Date.now(),
): Promise<number> {
  const { keys } = deps;
  const count = await runScript(
    deps.redis,
    'syncRunning',
    [keys.runningJobs, keys.runningCounts, keys.queueClaiming, keys.queue],
    [now - STALE_CLAIM_MS, keys.queueWakeup, ...running.flatMap((r) => [r.jobId, r.userId])],
  );
  return Number(count);
}

export async function runningCount(deps: AppDeps, userId: string): Promise<number> {
  return Number((await deps.redis.hget(deps.keys.runningCounts, userId)) ?? 0);
}

/** Records that a worker is alive; the wait estimate divides by the active ones. */
export async function workerSeen(deps: AppDeps, workerId: string): Promise<void> {
  await deps.redis.zadd(deps.keys.workersSeen, Date.now(), workerId);
}

export async function recordDuration(deps: AppDeps, engineSeconds: number): Promise<void> {
  await deps.redis
    .multi()
    .lpush(deps.keys.recentDurations, engineSeconds.toFixed(3))
    .ltrim(deps.keys.recentDurations, 0, RECENT_DURATIONS - 1)
    .exec();
}

export interface Standing {
  /** Jobs ahead of this one (0 = next). */
  position: number;
  estimatedWaitSeconds: number;
}

/**
 * Where a queued job stands. The wait is an estimate of the time until it starts:
 * jobs ahead × mean of the last 50 engine runs (30 s without history) ÷ workers seen in
 * the last minute (at least 1). It ignores per-user limits and the jobs running now.
 */
export async function standing(deps: AppDeps, jobId: string, rank?: Promise<number | null>): Promise<Standing | null> {
  const { keys } = deps;
  const now = Date.now();
  const [ahead, durations, workers] = await Promise.all([
    rank ?? deps.redis.zrank(keys.queue, jobId),
    deps.redis.lrange(keys.recentDurations, 0, -1),
    deps.redis.zcount(keys.workersSeen, now - WORKER_ACTIVE_MS, '+inf'),
  ]);
  if (ahead === null) return null;
  return { position: ahead, estimatedWaitSeconds: estimateWait(ahead, durations.map(Number), workers) };
}

export function estimateWait(ahead: number, recentSeconds: number[], activeWorkers: number): number {
  const mean =
    recentSeconds.length > 0 ? recentSeconds.reduce((a, b) => a + b, 0) / recentSeconds.length : DEFAULT_JOB_SECONDS;
  return Math.ceil((ahead * mean) / Math.max(1, activeWorkers));
}
