import { DomainError, PLANS, type PaidTier } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import type { SessionUser } from '../../context.js';
import { liveSubscription } from './billing-view.service.js';
import { variantFor } from './catalog.js';
import { changeLemonSqueezySubscriptionVariant } from './lemonsqueezy.client.js';
import { sendDevPlanChange } from './test-checkout.js';

/**
 * "Change plan": the customer's live subscription moves to another plan at the provider
 * (which prorates the money) — never a second checkout, so never a second subscription. The
 * tier and credits change when the provider's `subscription_updated` arrives (README, "Plan
 * changes"); this answers once the provider accepted the change.
 */
export async function changePlan(deps: AppDeps, user: SessionUser, tier: PaidTier): Promise<{ tier: PaidTier }> {
  const sub = await liveSubscription(deps, user.id);
  if (!sub)
    throw new DomainError('BAD_REQUEST', 'You have no active subscription to change; choose a plan to subscribe.', {
      tier,
    });
  if (sub.tier === tier) throw new DomainError('BAD_REQUEST', `You are already on ${PLANS[tier].name}.`, { tier });
  if (sub.cancelled) {
    throw new DomainError(
      'BAD_REQUEST',
      'Your subscription is cancelled; resume it from "Manage subscription" before changing plan.',
      { tier },
    );
  }
  const variantId = variantFor(deps.config, { kind: 'subscription', tier });
  if (!variantId) {
    deps.logger.error({ tier }, 'no Lemon Squeezy variant configured for this plan');
    throw new DomainError(
      'PROVIDER_UNAVAILABLE',
      'This plan cannot be chosen right now. Nothing was charged; please try again later.',
      { provider: 'lemonsqueezy' },
    );
  }
  if (deps.config.lemonSqueezyEnabled) {
    await changeLemonSqueezySubscriptionVariant(deps.config, deps.logger, {
      subscriptionId: sub.providerSubscriptionId,
      variantId,
    });
  } else if (deps.config.development) {
    await sendDevPlanChange(deps, sub, tier, user.email);
  } else {
    throw new DomainError('PROVIDER_UNAVAILABLE', 'Payments are not set up on this server yet.', {
      provider: 'lemonsqueezy',
    });
  }
  deps.logger.info(
    { userId: user.id, from: sub.tier, to: tier, subscription: sub.providerSubscriptionId },
    'plan change requested',
  );
  return { tier };
}
