import { eq, sql } from 'drizzle-orm';
import { schema, type Tx } from '@pingvas/db';
import { PLANS, type PaidTier } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { changePlanCredits, grant, setSubscriptionCredits } from '../credits/ledger.js';
import { queueEmail } from '../email/outbox.js';

/**
 * The subscription lifecycle: what each provider subscription's state means for its user's
 * tier, banner and subscription credits. Every function runs in the caller's transaction,
 * under the subscription's lock and then its user's (lockProviderSubscription, lockCustomer).
 */

export type SubscriptionRow = typeof schema.subscriptions.$inferSelect;
export type UserRow = typeof schema.users.$inferSelect;

const TIER_RANK: Record<PaidTier, number> = { starter: 1, pro: 2 };

/**
 * Serialises everything that touches one provider subscription (its webhooks, the end-of-term
 * task, a support link) for the rest of the transaction, even before its row exists — a row
 * lock cannot cover the first insert; this can.
 */
export async function lockProviderSubscription(
  tx: Tx,
  providerSubscriptionId: number,
): Promise<SubscriptionRow | null> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`ls-sub:${providerSubscriptionId}`}))`);
  const [row] = await tx
    .select()
    .from(schema.subscriptions)
    .where(eq(schema.subscriptions.providerSubscriptionId, providerSubscriptionId))
    .for('update');
  return row ?? null;
}

/**
 * Serialises the changes of one customer's tier and credits across their subscriptions (a
 * second subscription's events may arrive at the same time). Taken after the subscription's
 * lock and before the balance row's: one lock order everywhere.
 */
export async function lockCustomer(tx: Tx, userId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`ls-user:${userId}`}))`);
}

/**
 * Whether the subscription gives no access any more: expired; cancelled with its paid term
 * behind it; or unpaid after dunning — unless a payment recovered after it became unpaid.
 */
export function hasEnded(
  sub: Pick<SubscriptionRow, 'status' | 'endsAt' | 'recoveredAt' | 'providerUpdatedAt'>,
  now = new Date(),
): boolean {
  if (sub.status === 'expired') return true;
  if (sub.status === 'unpaid')
    return !(sub.recoveredAt && sub.providerUpdatedAt && sub.recoveredAt >= sub.providerUpdatedAt);
  return sub.status === 'cancelled' && (sub.endsAt === null || sub.endsAt <= now);
}

/** The end of the paid period the subscription is in: what a downgrade is keyed by. */
export function periodEnd(sub: Pick<SubscriptionRow, 'endsAt' | 'renewsAt'>): string {
  return (sub.endsAt ?? sub.renewsAt)?.toISOString() ?? 'open';
}

export async function findUser(tx: Tx, userId: string): Promise<UserRow | null> {
  const [row] = await tx.select().from(schema.users).where(eq(schema.users.id, userId));
  return row ?? null;
}

export const appUrl = (deps: AppDeps) => deps.config.PUBLIC_URL.replace(/\/$/, '');

async function subscriptionsOf(tx: Tx, userId: string): Promise<SubscriptionRow[]> {
  return tx.select().from(schema.subscriptions).where(eq(schema.subscriptions.userId, userId));
}

/**
 * The subscription that decides the customer's tier and subscription credits: the best live
 * plan, the oldest first among equals. A second live subscription (a public buy link, someone
 * else's purchase) never lowers either; its events move credits only while it is this one.
 */
export function primaryOf(subs: SubscriptionRow[], now = new Date()): SubscriptionRow | null {
  const live = subs.filter((s) => !hasEnded(s, now));
  live.sort(
    (a, b) =>
      TIER_RANK[b.tier] - TIER_RANK[a.tier] ||
      a.createdAt.getTime() - b.createdAt.getTime() ||
      a.providerSubscriptionId - b.providerSubscriptionId,
  );
  return live[0] ?? null;
}

export async function isPrimary(tx: Tx, sub: SubscriptionRow): Promise<boolean> {
  return primaryOf(await subscriptionsOf(tx, sub.userId))?.id === sub.id;
}

/** Whether `sub` decided the credits until it ended: the best among it and the plans still live. */
async function wasPrimaryAtItsEnd(tx: Tx, sub: SubscriptionRow): Promise<boolean> {
  const subs = await subscriptionsOf(tx, sub.userId);
  const asIfLive = subs.map((s) => (s.id === sub.id ? { ...s, status: 'active', endsAt: null } : s));
  return primaryOf(asIfLive)?.id === sub.id;
}

/**
 * Brings the user row in line with their subscriptions: the tier of the best live plan (free
 * without one), and the banner of the latest state — a failed payment on that plan, or the
 * end of the last paid plan.
 */
export async function syncCustomer(tx: Tx, userId: string): Promise<void> {
  const subs = await subscriptionsOf(tx, userId);
  const primary = primaryOf(subs);
  const bannerReason = primary
    ? primary.paymentFailedCount > 0
      ? 'payment_failed'
      : null
    : subs.some((s) => s.downgradedPeriod !== null)
      ? 'subscription_cancelled'
      : null;
  await tx
    .update(schema.users)
    .set({ tier: primary?.tier ?? 'free', bannerReason, updatedAt: sql`now()` })
    .where(eq(schema.users.id, userId));
}

export async function saveSubscription(
  tx: Tx,
  sub: SubscriptionRow,
  fields: Partial<SubscriptionRow>,
): Promise<SubscriptionRow> {
  const [row] = await tx
    .update(schema.subscriptions)
    .set({ ...fields, updatedAt: new Date() })
    .where(eq(schema.subscriptions.id, sub.id))
    .returning();
  return row!;
}

/**
 * First sight of a live subscription: the plan's credits for the first period (set, not
 * added: subscription credits never roll over) while it is the customer's primary one, and a
 * welcome e-mail — each once per subscription whatever event brought it.
 */
export async function activate(tx: Tx, deps: AppDeps, sub: SubscriptionRow, user: UserRow): Promise<void> {
  const plan = PLANS[sub.tier];
  if (await isPrimary(tx, sub)) {
    await setSubscriptionCredits(tx, {
      userId: user.id,
      key: `allocation:ls-sub:${sub.providerSubscriptionId}:initial`,
      type: 'monthly_allocation',
      amount: plan.monthlyCredits,
      reference: `ls-sub:${sub.providerSubscriptionId}`,
      description: `${plan.name}: first month`,
    });
  }
  await queueEmail(tx, {
    userId: user.id,
    to: user.email,
    dedupeKey: `welcome:ls-sub:${sub.providerSubscriptionId}`,
    email: { template: 'welcome', planName: plan.name, monthlyCredits: plan.monthlyCredits, appUrl: appUrl(deps) },
  });
}

/**
 * The end of a subscription. Keyed by (subscription, period end), so one that comes back and
 * ends again is downgraded again. While it was the primary plan and no other plan is live:
 * subscription credits 0 (purchased credits stay), one cancellation e-mail; with another live
 * plan, the credits are capped at that plan's allocation instead. The tier and banner follow
 * in syncCustomer. Returns whether it applied now.
 */
export async function downgrade(tx: Tx, deps: AppDeps, sub: SubscriptionRow): Promise<boolean> {
  if (sub.downgradedPeriod !== null) return false;
  const period = periodEnd(sub);
  const wasPrimary = await wasPrimaryAtItsEnd(tx, sub);
  const plan = PLANS[sub.tier];
  await saveSubscription(tx, sub, { downgradedPeriod: period });
  const next = primaryOf(await subscriptionsOf(tx, sub.userId));
  if (wasPrimary && next) {
    await changePlanCredits(tx, {
      userId: sub.userId,
      key: `plan_change:ls-sub:${sub.providerSubscriptionId}:ended:${period}`,
      from: plan.monthlyCredits,
      to: PLANS[next.tier].monthlyCredits,
      reference: `ls-sub:${sub.providerSubscriptionId}`,
      description: `${plan.name} ended; ${PLANS[next.tier].name} continues`,
    });
  } else if (wasPrimary) {
    await setSubscriptionCredits(tx, {
      userId: sub.userId,
      key: `downgrade:ls-sub:${sub.providerSubscriptionId}:${period}`,
      type: 'downgrade',
      amount: 0,
      reference: `ls-sub:${sub.providerSubscriptionId}`,
      description: `${plan.name} ended`,
    });
  }
  if (!next) {
    const user = (await findUser(tx, sub.userId))!;
    await queueEmail(tx, {
      userId: sub.userId,
      to: user.email,
      dedupeKey: `cancelled:ls-sub:${sub.providerSubscriptionId}:${period}`,
      email: { template: 'subscription_cancelled', planName: plan.name, appUrl: appUrl(deps) },
    });
  }
  return true;
}

/**
 * A way back to active after a downgrade (payment recovered, renewal paid after unpaid,
 * resumed, unpaused, updated to active): the downgrade of that period is undone once — what it
 * took from the bucket comes back, up to the plan's allocation — and a renewal paid meanwhile
 * is applied. The tier follows in syncCustomer.
 */
export async function reactivate(tx: Tx, sub: SubscriptionRow): Promise<SubscriptionRow> {
  const period = sub.downgradedPeriod;
  let row = await saveSubscription(tx, sub, { downgradedPeriod: null });
  if (period !== null && (await isPrimary(tx, row))) {
    const [taken] = await tx
      .select({ delta: schema.creditTransactions.subscriptionDelta })
      .from(schema.creditTransactions)
      .where(eq(schema.creditTransactions.idempotencyKey, `downgrade:ls-sub:${sub.providerSubscriptionId}:${period}`));
    const back = Math.min(-(taken?.delta ?? 0), PLANS[row.tier].monthlyCredits);
    if (back > 0) {
      await grant(tx, {
        userId: row.userId,
        key: `reactivation:ls-sub:${sub.providerSubscriptionId}:${period}`,
        type: 'monthly_allocation',
        bucket: 'subscription',
        amount: back,
        reference: `ls-sub:${sub.providerSubscriptionId}`,
        description: `${PLANS[row.tier].name} active again`,
      });
    }
  }
  if (row.pendingInvoiceId !== null) row = await applyRenewal(tx, row, row.pendingInvoiceId, row.pendingInvoiceAt!);
  return row;
}

/**
 * A paid renewal: the plan's allocation for the new period, once per period (the period is
 * its invoice), and only when newer than the period we hold. While the subscription has
 * ended (unpaid) it is kept and applied when the subscription is live again, never dropped.
 */
export async function applyRenewal(
  tx: Tx,
  sub: SubscriptionRow,
  invoiceId: number,
  invoiceAt: Date,
): Promise<SubscriptionRow> {
  if (sub.periodInvoiceId === invoiceId || (sub.paidAt && invoiceAt <= sub.paidAt)) {
    return sub.pendingInvoiceId === invoiceId
      ? saveSubscription(tx, sub, { pendingInvoiceId: null, pendingInvoiceAt: null })
      : sub;
  }
  if (hasEnded(sub)) {
    if (sub.pendingInvoiceAt && invoiceAt <= sub.pendingInvoiceAt) return sub;
    return saveSubscription(tx, sub, { pendingInvoiceId: invoiceId, pendingInvoiceAt: invoiceAt });
  }
  const plan = PLANS[sub.tier];
  const row = await saveSubscription(tx, sub, {
    periodInvoiceId: invoiceId,
    paidAt: invoiceAt,
    pendingInvoiceId: null,
    pendingInvoiceAt: null,
  });
  if (await isPrimary(tx, row)) {
    await setSubscriptionCredits(tx, {
      userId: sub.userId,
      key: `allocation:ls-invoice:${invoiceId}`,
      type: 'monthly_allocation',
      amount: plan.monthlyCredits,
      reference: `ls-sub:${sub.providerSubscriptionId}`,
      description: `${plan.name}: new period`,
    });
  }
  return row;
}

/**
 * A plan change of a live subscription (the provider prorates the money). Upgrade: the tier
 * at once, and this period's plan credits rise by the difference of the allocations, never
 * past the new one. Downgrade: capped at the new allocation. Credits move only when this
 * subscription decided them before or decides them after the change; the allocation they move
 * to is the plan that decides them now. Keyed by the subscription and the state that changed it.
 */
export async function changePlan(
  tx: Tx,
  before: SubscriptionRow,
  after: SubscriptionRow,
  wasPrimary: boolean,
): Promise<void> {
  const primary = primaryOf(await subscriptionsOf(tx, after.userId));
  if (!wasPrimary && primary?.id !== after.id) return;
  const from = PLANS[before.tier];
  const to = PLANS[primary?.tier ?? after.tier];
  await changePlanCredits(tx, {
    userId: after.userId,
    key: `plan_change:ls-sub:${after.providerSubscriptionId}:${after.stateVersion}`,
    from: from.monthlyCredits,
    to: to.monthlyCredits,
    reference: `ls-sub:${after.providerSubscriptionId}`,
    description: `${from.name} → ${PLANS[after.tier].name}`,
  });
}
