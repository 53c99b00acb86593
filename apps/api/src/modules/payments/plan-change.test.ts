import { describe, expect, it } from 'vitest';
import {
  customer,
  deliverInOrder,
  spend,
  usePaymentsHarness,
  stateOf,
  VARIANT,
  type PaymentsHarness,
} from './webhook.test-support.js';

let h: PaymentsHarness;
usePaymentsHarness((harness) => {
  h = harness;
});

describe('payments.changePlan: one live subscription per customer', () => {
  it("a starter customer moves to pro through the provider's subscription update, never a second checkout", async () => {
    const user = await h.app.createUser();
    const ls = customer(user, 11_000_000);
    await deliverInOrder(h, ls.checkout('starter'));
    await spend(h.app, user.id, 500, `${user.id}:a`);
    const caller = h.app.callerFor({ ...user, tier: 'starter' });

    await expect(caller.payments.createCheckout({ tier: 'pro' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringContaining('Change plan'),
    });
    await expect(caller.payments.changePlan({ tier: 'starter' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: 'You are already on Starter.',
    });
    const checkoutsBefore = h.fake.checkouts.length;

    await expect(caller.payments.changePlan({ tier: 'pro' })).resolves.toEqual({ tier: 'pro' });
    expect(h.fake.planChanges.at(-1)).toMatchObject({
      subscriptionId: 11_000_001,
      fromVariantId: VARIANT.starter,
      variantId: VARIANT.pro,
    });
    expect(h.fake.checkouts.length).toBe(checkoutsBefore);

    // The provider's answer: the same subscription with the new variant. Upgrade: tier now, and the
    // period's plan credits rise by the difference (1,500 left + 8,000), capped at 10,000.
    await deliverInOrder(h, [ls.subscription('pro', 'subscription_updated', 10)]);
    let state = await stateOf(h.app, user.id);
    expect(state.user.tier).toBe('pro');
    expect(state.balance).toMatchObject({ subscription_credits: 9500 });
    expect(state.subscriptions).toHaveLength(1);
    expect(await caller.payments.subscription()).toMatchObject({ tier: 'pro', canChangePlan: true });

    // Downgrade: capped at the new allocation.
    await caller.payments.changePlan({ tier: 'starter' });
    await deliverInOrder(h, [ls.subscription('starter', 'subscription_plan_changed', 20)]);
    state = await stateOf(h.app, user.id);
    expect(state.user.tier).toBe('starter');
    expect(state.balance).toMatchObject({ subscription_credits: 2000 });
  });

  it('a customer without a live subscription cannot change plan; the update-card link is fresh on every click', async () => {
    const free = await h.app.createUser();
    await expect(h.app.callerFor(free).payments.changePlan({ tier: 'pro' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });

    const user = await h.app.createUser();
    await deliverInOrder(h, customer(user, 12_000_000).checkout('pro'));
    const caller = h.app.callerFor({ ...user, tier: 'pro' });
    const first = await caller.payments.updateCardUrl();
    const second = await caller.payments.updateCardUrl();
    expect(first.url).toMatch(/^https:\/\/pingvas-test\.lemonsqueezy\.com\/subscription\/12000001\/payment-details\?/);
    expect(second.url).not.toBe(first.url);
    expect(h.fake.subscriptionReads.filter((id) => id === 12_000_001)).toHaveLength(2);
  });
});
