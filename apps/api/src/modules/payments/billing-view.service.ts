import { eq } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import { DomainError, type PaidTier } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import type { SessionUser } from '../../context.js';
import { fetchLemonSqueezySubscriptionUrls } from './lemonsqueezy.client.js';
import { hasEnded, primaryOf, type SubscriptionRow } from './subscription-lifecycle.js';
import { linkUnmatchedPurchases } from './webhook.js';

/** What the billing page shows about the customer's plan subscription. */
export interface BillingView {
  tier: PaidTier;
  status: string;
  cancelled: boolean;
  renewsAt: Date | null;
  endsAt: Date | null;
  paymentFailedCount: number;
  customerPortalUrl: string | null;
  /** Whether "Change plan" applies (a live subscription that is not cancelled): no second checkout then. */
  canChangePlan: boolean;
}

const { subscriptions } = schema;

async function subscriptionsOf(deps: AppDeps, userId: string): Promise<SubscriptionRow[]> {
  return withUser(deps.db, userId, (tx) => tx.select().from(subscriptions).where(eq(subscriptions.userId, userId)));
}

/**
 * The subscription the billing page describes: the one that decides the tier (the best live
 * plan), else the newest ended one (so a user who has left still sees when it ended). Purchases
 * made with the user's e-mail outside our checkout that matched nobody are linked first.
 */
export async function billingView(deps: AppDeps, userId: string): Promise<BillingView | null> {
  await linkUnmatchedPurchases(deps, userId);
  const subs = await subscriptionsOf(deps, userId);
  const newestFirst = [...subs].sort(
    (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id.localeCompare(a.id),
  );
  const shown = primaryOf(subs) ?? newestFirst[0];
  if (!shown) return null;
  return {
    tier: shown.tier,
    status: shown.status,
    cancelled: shown.cancelled,
    renewsAt: shown.renewsAt,
    endsAt: shown.endsAt,
    paymentFailedCount: shown.paymentFailedCount,
    customerPortalUrl: shown.customerPortalUrl,
    canChangePlan: !hasEnded(shown) && !shown.cancelled,
  };
}

/** The customer's live plan subscription, or null. */
export async function liveSubscription(deps: AppDeps, userId: string): Promise<SubscriptionRow | null> {
  return primaryOf(await subscriptionsOf(deps, userId));
}

/**
 * A fresh update-card link: the provider signs it for about a day, so e-mails and the banner
 * link to our billing page, which asks for one when the customer clicks.
 */
export async function updateCardUrl(deps: AppDeps, user: SessionUser): Promise<{ url: string }> {
  const subs = await subscriptionsOf(deps, user.id);
  const sub = primaryOf(subs) ?? [...subs].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0];
  if (!sub)
    throw new DomainError('NOT_FOUND', 'You have no subscription to update a card for.', { entity: 'subscription' });
  if (!deps.config.lemonSqueezyEnabled) {
    if (!sub.updatePaymentUrl)
      throw new DomainError('NOT_FOUND', 'No card update link is available for this subscription.', {
        entity: 'subscription',
      });
    return { url: sub.updatePaymentUrl };
  }
  const urls = await fetchLemonSqueezySubscriptionUrls(deps.config, deps.logger, sub.providerSubscriptionId);
  if (!urls.updatePaymentMethod)
    throw new DomainError('NOT_FOUND', 'The payment provider has no card update link for this subscription.', {
      entity: 'subscription',
    });
  return { url: urls.updatePaymentMethod };
}
