import { sql } from 'drizzle-orm';
import { withSystem } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';
import type { BackgroundTask } from '../../infra/loop.js';
import { downgrade, hasEnded, lockCustomer, lockProviderSubscription, syncCustomer } from './subscription-lifecycle.js';

/**
 * Cancelled subscriptions whose paid term has run out while no webhook came (the provider's
 * `subscription_expired` may be late or lost): downgrade them. Each in its own transaction
 * under the subscription's lock, so it races webhooks and other replicas safely.
 */
export async function downgradeEndedSubscriptions(deps: AppDeps): Promise<number> {
  const due = await withSystem(deps.db, (tx) =>
    tx.execute<{ provider_subscription_id: string }>(sql`
    select provider_subscription_id::text from subscriptions
    where status = 'cancelled' and ends_at <= now() and downgraded_period is null
    limit 100`),
  );
  let applied = 0;
  for (const { provider_subscription_id } of due) {
    const done = await withSystem(deps.db, async (tx) => {
      const sub = await lockProviderSubscription(tx, Number(provider_subscription_id));
      if (!sub || !hasEnded(sub)) return false;
      await lockCustomer(tx, sub.userId);
      const downgraded = await downgrade(tx, deps, sub);
      await syncCustomer(tx, sub.userId);
      return downgraded;
    });
    if (done) applied += 1;
  }
  if (applied) deps.logger.info({ applied }, 'downgraded subscriptions whose cancelled term ended');
  return applied;
}

/** Terms end at whole provider timestamps; a minute's lag is what the provider's own expiry takes too. */
const END_CHECK_INTERVAL_MS = 60_000;

export function startSubscriptionEndTask(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'subscription-end',
    intervalMs: END_CHECK_INTERVAL_MS,
    logger: deps.logger,
    tick: async () => {
      await downgradeEndedSubscriptions(deps);
    },
  });
}
