import { desc, eq } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import type { PaidTier } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { hasEnded } from './subscriptions.js';

export interface SubscriptionView {
  tier: PaidTier;
  status: string;
  cancelled: boolean;
  renewsAt: Date | null;
  endsAt: Date | null;
  paymentFailedCount: number;
  updatePaymentUrl: string | null;
  customerPortalUrl: string | null;
}

const { subscriptions } = schema;

/**
 * The subscription the billing page describes: the newest one still giving access, else the
 * newest ended one (so a user who has left still sees when it ended). A live subscription wins
 * over a newer ended one because it is the one that decides the user's tier.
 */
export async function currentSubscription(deps: AppDeps, userId: string): Promise<SubscriptionView | null> {
  const rows = await withUser(deps.db, userId, (tx) => tx
    .select({
      tier: subscriptions.tier,
      status: subscriptions.status,
      cancelled: subscriptions.cancelled,
      renewsAt: subscriptions.renewsAt,
      endsAt: subscriptions.endsAt,
      paymentFailedCount: subscriptions.paymentFailedCount,
      updatePaymentUrl: subscriptions.updatePaymentUrl,
      customerPortalUrl: subscriptions.customerPortalUrl,
    })
    .from(subscriptions)
    .where(eq(subscriptions.userId, userId))
    .orderBy(desc(subscriptions.createdAt), desc(subscriptions.id)));
  return rows.find((row) => !hasEnded(row)) ?? rows[0] ?? null;
}
