import { DomainError, PLANS } from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import type { SessionUser } from '../../context.js';
import { liveSubscription } from './billing-view.service.js';
import { variantFor, type Product } from './catalog.js';
import { createLemonSqueezyCheckout, type CheckoutCustom } from './lemonsqueezy.client.js';
import { createTestCheckout } from './test-checkout.js';

/**
 * Starts a checkout and returns the page to send the user to. Nothing is recorded as bought
 * here: only the provider's signed webhook does that.
 *
 * `apiOrigin` is where this request reached the API (through the web's proxy or directly);
 * the local test checkout is served there.
 */
export async function startCheckout(
  deps: AppDeps,
  user: SessionUser,
  product: Product,
  apiOrigin: string,
): Promise<{ url: string }> {
  if (product.kind === 'subscription') {
    // One live subscription per customer: a second checkout would bill both plans.
    const live = await liveSubscription(deps, user.id);
    if (live) {
      throw new DomainError(
        'BAD_REQUEST',
        live.tier === product.tier
          ? `You are already on ${PLANS[product.tier].name}.`
          : `You already have ${PLANS[live.tier].name}: use "Change plan" to move to ${PLANS[product.tier].name}.`,
        { tier: product.tier },
      );
    }
  }
  const custom: CheckoutCustom =
    product.kind === 'subscription'
      ? { user_id: user.id, kind: 'subscription', tier: product.tier }
      : { user_id: user.id, kind: 'credits', pack: String(product.pack) };
  if (!deps.config.lemonSqueezyEnabled) {
    if (!deps.config.development) {
      throw new DomainError('PROVIDER_UNAVAILABLE', 'Payments are not set up on this server yet.', {
        provider: 'lemonsqueezy',
      });
    }
    return createTestCheckout(deps, { userId: user.id, email: user.email, product }, apiOrigin);
  }

  const variantId = variantFor(deps.config, product);
  if (!variantId) {
    deps.logger.error({ product }, 'no Lemon Squeezy variant configured for this product');
    throw new DomainError(
      'PROVIDER_UNAVAILABLE',
      'This product cannot be bought right now. Nothing was charged; please try again later.',
      { provider: 'lemonsqueezy' },
    );
  }
  const checkout = await createLemonSqueezyCheckout(deps.config, deps.logger, {
    email: user.email,
    custom,
    variantId,
    redirectUrl: `${deps.config.PUBLIC_URL.replace(/\/$/, '')}/billing?paid=1`,
  });
  deps.logger.info({ userId: user.id, product, checkoutId: checkout.id }, 'checkout created');
  return { url: checkout.url };
}
