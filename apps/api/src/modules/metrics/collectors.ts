import { inArray, notInArray, sql } from 'drizzle-orm';
import { JOB_STATES, PLANS, QUEUE_EPOCH_MS, queueScore, TIERS, type Tier } from '@pingvas/core';
import { schema, withSystem } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';

/**
 * The gauges read at scrape time: queue depth from Redis, job counts from PostgreSQL.
 * A collector that fails leaves its gauge empty (never a stale figure) and reports
 * pingvas_metrics_collector_up{collector} 0; the rest of the scrape still answers.
 */

const jobs = schema.generationJobs;
const LIVE_STATES = ['pending', 'in_progress'] as const;

export interface ScoreBand {
  tier: Tier;
  /** ZCOUNT bounds: min inclusive, max exclusive. */
  min: string;
  max: string;
}

/**
 * A queued job's score is queueScore(priority, enqueuedAt): its tier's priority sets a band
 * far wider than any enqueue time spread. Each tier's band runs halfway to its neighbours'
 * centres (the score at QUEUE_EPOCH), so the bands follow PLANS and queueScore, whatever
 * the weight of a priority point.
 */
export function tierScoreBands(): ScoreBand[] {
  const centres = TIERS.map((tier) => ({ tier, centre: queueScore(PLANS[tier].queuePriority, QUEUE_EPOCH_MS) })).sort(
    (a, b) => a.centre - b.centre,
  );
  return centres.map(({ tier }, i) => {
    const below = centres[i - 1];
    const above = centres[i + 1];
    return {
      tier,
      min: below ? String((below.centre + centres[i]!.centre) / 2) : '-inf',
      max: above ? `(${(centres[i]!.centre + above.centre) / 2}` : '+inf',
    };
  });
}

const BANDS = tierScoreBands();

async function collectQueueDepth(deps: AppDeps): Promise<void> {
  const counts = await Promise.all(BANDS.map((band) => deps.redis.zcount(deps.keys.queue, band.min, band.max)));
  BANDS.forEach((band, i) => deps.metrics.queueDepth.set({ tier: band.tier }, counts[i]!));
}

async function countByStatus(deps: AppDeps, live: boolean): Promise<Map<string, number>> {
  const rows = await withSystem(deps.db, (tx) =>
    tx
      .select({ status: jobs.status, n: sql<number>`count(*)::int` })
      .from(jobs)
      .where(live ? inArray(jobs.status, [...LIVE_STATES]) : notInArray(jobs.status, [...LIVE_STATES]))
      .groupBy(jobs.status),
  );
  return new Map(rows.map((r) => [r.status, r.n]));
}

type FinishedCounts = { readAt: number; counts: Map<string, number> };

/**
 * Finished-job counts as of at most METRICS_FINISHED_JOBS_TTL_SECONDS ago, counted once per
 * period for all replicas: the count lives in Redis, and when it is stale the replica that
 * takes the period's lock (SET NX PX ttl) recounts while the others keep reporting the stale
 * one. Null when no count exists yet and another replica is making the first. Without Redis
 * each replica falls back to its own cache (the same period, counted per replica).
 */
async function finishedCounts(deps: AppDeps, ttlMs: number): Promise<FinishedCounts | null> {
  const { redis, keys, metrics } = deps;
  if (ttlMs === 0) return { readAt: Date.now(), counts: await countByStatus(deps, false) };
  let shared: FinishedCounts | null;
  let mine: boolean;
  try {
    const stored = await redis.get(keys.metricsFinishedJobs);
    const parsed = stored ? (JSON.parse(stored) as { readAt: number; counts: [string, number][] }) : null;
    shared = parsed ? { readAt: parsed.readAt, counts: new Map(parsed.counts) } : null;
    if (shared && Date.now() - shared.readAt < ttlMs) return shared;
    mine = (await redis.set(keys.lock('metrics:finished_jobs'), String(process.pid), 'PX', ttlMs, 'NX')) === 'OK';
  } catch {
    const local = metrics.finishedJobs;
    if (local && Date.now() - local.readAt < ttlMs) return local;
    metrics.finishedJobs = { readAt: Date.now(), counts: await countByStatus(deps, false) };
    return metrics.finishedJobs;
  }
  if (!mine) return shared;
  const fresh = { readAt: Date.now(), counts: await countByStatus(deps, false) };
  const stored = JSON.stringify({ readAt: fresh.readAt, counts: [...fresh.counts] });
  await redis.set(keys.metricsFinishedJobs, stored).catch(() => {});
  return fresh;
}

/**
 * Live states (pending, in_progress) are counted exactly on every scrape: the partial index
 * generation_jobs_active_idx makes that cost what the live jobs number. Finished states
 * grow forever and need a full scan (1–3 s for a million jobs as the runtime role, whose
 * RLS policy is evaluated per row: `npm run bench:metrics`), so they are re-read at most every
 * METRICS_FINISHED_JOBS_TTL_SECONDS across all replicas together (finishedCounts).
 */
async function collectJobStates(deps: AppDeps): Promise<void> {
  const { metrics } = deps;
  const [live, finished] = await Promise.all([
    countByStatus(deps, true),
    finishedCounts(deps, deps.config.METRICS_FINISHED_JOBS_TTL_SECONDS * 1000),
  ]);
  for (const state of JOB_STATES) {
    if (LIVE_STATES.includes(state as (typeof LIVE_STATES)[number])) metrics.jobs.set({ state }, live.get(state) ?? 0);
    else if (finished) metrics.jobs.set({ state }, finished.counts.get(state) ?? 0);
  }
}

async function run(
  deps: AppDeps,
  collector: 'queue' | 'jobs',
  collect: (deps: AppDeps) => Promise<void>,
): Promise<void> {
  const gauge = collector === 'queue' ? deps.metrics.queueDepth : deps.metrics.jobs;
  try {
    await collect(deps);
    deps.metrics.collectorUp.set({ collector }, 1);
  } catch (err) {
    gauge.reset();
    deps.metrics.collectorUp.set({ collector }, 0);
    deps.logger.warn({ err, collector }, 'metrics collector failed');
  }
}

/** Refreshes the scrape-time gauges, then renders the registry in the Prometheus text format. */
export async function scrape(deps: AppDeps): Promise<string> {
  await Promise.all([run(deps, 'queue', collectQueueDepth), run(deps, 'jobs', collectJobStates)]);
  return deps.metrics.registry.metrics();
}
