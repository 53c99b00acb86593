import { and, eq, ne, sql } from 'drizzle-orm';
import { schema, withSystem, type Tx } from '@pingvas/db';
import { PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';
import type { BackgroundTask } from '../../infra/loop.js';
import { setSubscriptionCredits } from '../credits/ledger.js';
import { queueEmail } from '../email/outbox.js';

export type SubscriptionRow = typeof schema.subscriptions.$inferSelect;

/**
 * Serialises everything that touches one provider subscription (its webhooks, the end-of-term
 * check) for the rest of the transaction, even before its row exists — a row lock cannot
 * cover the first insert; this can.
 */
export async function lockProviderSubscription(tx: Tx, providerSubscriptionId: number): Promise<SubscriptionRow | null> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`ls-sub:${providerSubscriptionId}`}))`);
  const [row] = await tx.select().from(schema.subscriptions)
    .where(eq(schema.subscriptions.providerSubscriptionId, providerSubscriptionId)).for('update');
  return row ?? null;
}

/**
 * Whether the subscription's term is over: expired, unpaid after dunning, or cancelled with
 * its paid period behind it.
 */
export function hasEnded(sub: Pick<SubscriptionRow, 'status' | 'endsAt'>, now = new Date()): boolean {
  if (sub.status === 'expired' || sub.status === 'unpaid') return true;
  return sub.status === 'cancelled' && (sub.endsAt === null || sub.endsAt <= now);
}

export type UserRow = typeof schema.users.$inferSelect;

export async function findUser(tx: Tx, userId: string): Promise<UserRow | null> {
  const [row] = await tx.select().from(schema.users).where(eq(schema.users.id, userId));
  return row ?? null;
}

export const appUrl = (deps: AppDeps) => deps.config.PUBLIC_URL.replace(/\/$/, '');

/**
 * First sight of a live subscription: the plan's credits for the first period (set, not
 * added: subscription credits never roll over) and a welcome e-mail, each once per
 * subscription whatever event brought it.
 */
export async function activate(tx: Tx, deps: AppDeps, sub: SubscriptionRow, user: UserRow): Promise<void> {
  const plan = PLANS[sub.tier];
  await setSubscriptionCredits(tx, {
    userId: user.id,
    key: `allocation:ls-sub:${sub.providerSubscriptionId}:initial`,
    type: 'monthly_allocation',
    amount: plan.monthlyCredits,
    reference: `ls-sub:${sub.providerSubscriptionId}`,
    description: `${plan.name}: first month`,
  });
  await queueEmail(tx, {
    userId: user.id,
    to: user.email,
    dedupeKey: `welcome:ls-sub:${sub.providerSubscriptionId}`,
    email: { template: 'welcome', planName: plan.name, monthlyCredits: plan.monthlyCredits, appUrl: appUrl(deps) },
  });
}

/** Another subscription of the same user that still gives access, if any (then ending this one changes no tier). */
async function otherLiveSubscription(tx: Tx, sub: SubscriptionRow): Promise<SubscriptionRow | null> {
  const others = await tx.select().from(schema.subscriptions)
    .where(and(eq(schema.subscriptions.userId, sub.userId), ne(schema.subscriptions.id, sub.id)));
  return others.find((o) => !hasEnded(o)) ?? null;
}

/**
 * The end of a subscription (ARCHITECTURE "Downgrade"): tier free, subscription credits 0
 * (purchased credits stay), the banner, one cancellation e-mail. Once per subscription: the
 * ledger key makes a second call (the `expired` after a `cancelled`, the background check
 * racing a webhook) a no-op. Returns whether it applied now.
 */
export async function downgrade(tx: Tx, deps: AppDeps, sub: SubscriptionRow): Promise<boolean> {
  const other = await otherLiveSubscription(tx, sub);
  if (other) {
    await tx.update(schema.users).set({ tier: other.tier, updatedAt: sql`now()` }).where(eq(schema.users.id, sub.userId));
    return false;
  }
  const entry = await setSubscriptionCredits(tx, {
    userId: sub.userId,
    key: `downgrade:ls-sub:${sub.providerSubscriptionId}`,
    type: 'downgrade',
    amount: 0,
    reference: `ls-sub:${sub.providerSubscriptionId}`,
    description: `${PLANS[sub.tier].name} ended`,
  });
  if (entry.replayed) return false;
  const [user] = await tx.update(schema.users)
    .set({ tier: 'free', bannerReason: 'subscription_cancelled', updatedAt: sql`now()` })
    .where(eq(schema.users.id, sub.userId))
    .returning();
  await queueEmail(tx, {
    userId: sub.userId,
    to: user!.email,
    dedupeKey: `cancelled:ls-sub:${sub.providerSubscriptionId}`,
    email: { template: 'subscription_cancelled', planName: PLANS[sub.tier].name, appUrl: appUrl(deps) },
  });
  return true;
}

/**
 * Cancelled subscriptions whose paid term has run out while no webhook came (the provider's
 * `subscription_expired` may be late or lost): downgrade them. Each in its own transaction
 * under the subscription's lock, so it races webhooks and other replicas safely.
 */
export async function downgradeEndedSubscriptions(deps: AppDeps): Promise<number> {
  const due = await withSystem(deps.db, (tx) => tx.execute<{ provider_subscription_id: string }>(sql`
    select s.provider_subscription_id::text from subscriptions s join users u on u.id = s.user_id
    where s.status = 'cancelled' and s.ends_at <= now() and u.tier = s.tier
    limit 100`));
  let applied = 0;
  for (const { provider_subscription_id } of due) {
    const done = await withSystem(deps.db, async (tx) => {
      const sub = await lockProviderSubscription(tx, Number(provider_subscription_id));
      return sub && hasEnded(sub) ? downgrade(tx, deps, sub) : false;
    });
    if (done) applied += 1;
  }
  if (applied) deps.logger.info({ applied }, 'downgraded subscriptions whose cancelled term ended');
  return applied;
}

/** Terms end at whole provider timestamps; a minute's lag is what the provider's own expiry takes too. */
const END_CHECK_INTERVAL_MS = 60_000;

export function startSubscriptionEndCheck(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'subscription-end-check',
    intervalMs: END_CHECK_INTERVAL_MS,
    logger: deps.logger,
    tick: async () => { await downgradeEndedSubscriptions(deps); },
  });
}
