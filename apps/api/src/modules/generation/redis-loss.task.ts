import type { BackgroundTask } from '../../infra/loop.js';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';
import { reconcileOnce } from './reconciler.task.js';

/**
 * Redis keeps nothing on disk: a restart (or a FLUSHALL) empties the queue, the running
 * counts and the claim bookkeeping at once. The reconciler would rebuild them at its next
 * pass; this watch notices sooner. Every replica keeps a marker key alive with SET NX; a
 * replica that finds it missing runs the repair at once. Several replicas finding it gone
 * together is harmless: the repair is idempotent and safe concurrently.
 *
 * Bound: a pending job is claimable again, and the running counts are right again, at most
 * REDIS_LOSS_CHECK_MS plus one reconcile pass after Redis answers again.
 */
export const REDIS_LOSS_CHECK_MS = 1_000;

/** Re-creates the marker if Redis lost it; true when it was missing (and the repair ran). */
export async function repairIfRedisLost(deps: AppDeps): Promise<boolean> {
  const created = await deps.redis.set(deps.keys.dataMarker, String(Date.now()), 'NX');
  if (created !== 'OK') return false;
  deps.logger.warn('redis lost its data (restarted or flushed): rebuilding the queue and running counts now');
  try {
    await reconcileOnce(deps);
  } catch (err) {
    // Not repaired: drop the marker again so the next check retries.
    await deps.redis.del(deps.keys.dataMarker).catch(() => undefined);
    throw err;
  }
  return true;
}

export function startRedisLossWatch(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'redis-loss-watch',
    intervalMs: REDIS_LOSS_CHECK_MS,
    logger: deps.logger,
    tick: async () => {
      // While Redis is down every check fails; the reconciler already logs that outage.
      await repairIfRedisLost(deps).catch((err: unknown) => deps.logger.debug({ err }, 'redis loss check failed'));
    },
  });
}
