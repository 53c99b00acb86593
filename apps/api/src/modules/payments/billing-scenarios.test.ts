import { describe, expect, it } from 'vitest';
import { signLemonSqueezyBody } from '@pingvas/testkit';
import { receiveLemonSqueezyWebhook, unmatchedPurchases } from './webhook.js';
import { deliverFixture, fixtureBody, lsAt, postBody } from './webhook-fixtures.test-support.js';
import {
  spend,
  usePaymentsHarness,
  stateOf,
  VARIANT,
  WEBHOOK_SECRET,
  type PaymentsHarness,
} from './webhook.test-support.js';

/**
 * The lifecycle scenarios the issue reproduced, and the provider's real payload habits, all
 * delivered as real-shaped bodies (fixtures/*.json) through the HTTP webhook route.
 */
let h: PaymentsHarness;
let nextId = 80_000_000;
const newId = () => (nextId += 1000);

usePaymentsHarness((harness) => {
  h = harness;
});

async function newCustomer(email?: string) {
  const user = await h.app.createUser(email ? { email } : {});
  const id = newId();
  const vars = {
    user_id: user.id,
    email: user.email,
    subscription_id: id + 1,
    variant_id: VARIANT.pro,
    order_id: id + 2,
    invoice_id: id + 3,
  };
  const custom = (tier: 'starter' | 'pro') => ({ user_id: user.id, kind: 'subscription', tier });
  const subscription = (
    event: string,
    minutes: number,
    attributes: Record<string, unknown> = {},
    tier: 'starter' | 'pro' = 'pro',
    subscriptionId = id + 1,
  ) =>
    deliverFixture(h, 'subscription', {
      event,
      vars: { ...vars, subscription_id: subscriptionId, variant_id: VARIANT[tier] },
      custom: custom(tier),
      attributes: { updated_at: lsAt(minutes), ...attributes },
    });
  const invoice = (
    event: string,
    invoiceId: number,
    minutes: number,
    attributes: Record<string, unknown> = {},
    meta: Record<string, unknown> = {},
  ) =>
    deliverFixture(h, 'invoice', {
      event,
      vars: { ...vars, invoice_id: invoiceId },
      attributes: { updated_at: lsAt(minutes), ...attributes },
      meta,
    });
  return { user, id, vars, subscription, invoice, state: () => stateOf(h.app, user.id) };
}

const templates = async (userId: string) =>
  (await h.app.database.admin`select template from email_outbox where user_id = ${userId} order by created_at`).map(
    (r) => r.template as string,
  );

describe('the three reproduced losses', () => {
  it('recovered after unpaid: the renewal paid while unpaid is kept, recovery restores pro with its credits, a later expiry downgrades again', async () => {
    const c = await newCustomer();
    await c.subscription('subscription_created', 0);
    await spend(h.app, c.user.id, 3000, `${c.user.id}:a`);
    await c.subscription('subscription_updated', 10, { status: 'unpaid' });
    expect((await c.state()).user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 0 });

    const renewal = c.id + 10;
    const kept = await c.invoice('subscription_payment_success', renewal, 20);
    expect(kept).toMatchObject({ outcome: 'applied' });
    expect((await c.state()).user.tier).toBe('free');

    await c.invoice('subscription_payment_recovered', renewal, 21);
    let state = await c.state();
    expect(state.user).toEqual({ tier: 'pro', banner_reason: null });
    expect(state.balance).toMatchObject({ subscription_credits: 10_000 });

    await c.subscription('subscription_updated', 22, { status: 'active', renews_at: lsAt(60 * 24 * 60) });
    await spend(h.app, c.user.id, 1000, `${c.user.id}:b`);
    // The same recovery re-sent with a new webhook id: the period is granted once.
    await c.invoice('subscription_payment_recovered', renewal, 21, {}, { webhook_id: 'another-delivery' });
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 9000 });

    await c.subscription('subscription_expired', 30 * 24 * 60, {
      status: 'expired',
      cancelled: true,
      ends_at: lsAt(30 * 24 * 60),
    });
    state = await c.state();
    expect(state.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(state.balance).toMatchObject({ subscription_credits: 0 });
    expect((await templates(c.user.id)).filter((t) => t === 'subscription_cancelled')).toHaveLength(2);
  });

  it("a second subscription never lowers the tier or credits; someone else's purchase naming a user cannot cut them", async () => {
    const c = await newCustomer();
    await c.subscription('subscription_created', 0, {}, 'starter');
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 2000 });
    // A second live subscription (pro) through a public buy link: the best plan decides.
    await c.subscription('subscription_created', 5, {}, 'pro', c.id + 500);
    expect((await c.state()).user.tier).toBe('pro');
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 10_000 });
    // The starter's own events (an update, a renewal) move no credits while pro decides.
    await c.subscription('subscription_updated', 6, { renews_at: lsAt(60 * 24 * 60) }, 'starter');
    await c.invoice('subscription_payment_success', c.id + 20, 30 * 24 * 60);
    expect((await c.state()).user.tier).toBe('pro');
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 10_000 });
    // Pro ends: starter goes on, its credits capped at starter's allocation.
    await c.subscription(
      'subscription_expired',
      40 * 24 * 60,
      { status: 'expired', cancelled: true, ends_at: lsAt(40 * 24 * 60) },
      'pro',
      c.id + 500,
    );
    expect((await c.state()).user).toEqual({ tier: 'starter', banner_reason: null });
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 2000 });

    const victim = await newCustomer();
    await victim.subscription('subscription_created', 0);
    await spend(h.app, victim.user.id, 4000, `${victim.user.id}:a`);
    // A stranger pays for starter with the victim's id in custom_data.
    await victim.subscription('subscription_created', 10, {}, 'starter', victim.id + 700);
    expect((await victim.state()).user.tier).toBe('pro');
    expect((await victim.state()).balance).toMatchObject({ subscription_credits: 6000 });
  });

  it('a late failure notice (delivered after the recovery, or re-sent with a new webhook id) changes nothing', async () => {
    const c = await newCustomer();
    await c.subscription('subscription_created', 0);
    const invoice = c.id + 30;
    await c.invoice('subscription_payment_failed', invoice, 10, { status: 'void' });
    expect((await c.state()).user.banner_reason).toBe('payment_failed');
    await c.invoice('subscription_payment_recovered', invoice, 20);
    expect((await c.state()).user.banner_reason).toBeNull();

    expect(
      await c.invoice('subscription_payment_failed', invoice, 10, { status: 'void' }, { webhook_id: 'retry-2' }),
    ).toMatchObject({ outcome: 'stale' });
    expect(await c.invoice('subscription_payment_failed', invoice, 15, { status: 'void' })).toMatchObject({
      outcome: 'stale',
    });
    const state = await c.state();
    expect(state.user).toEqual({ tier: 'pro', banner_reason: null });
    expect(state.subscriptions[0]).toMatchObject({ payment_failed_count: 0 });
    expect(await templates(c.user.id)).toEqual(['welcome', 'payment_failed_first', 'payment_recovered']);
  });
});

describe('real payloads', () => {
  it('order_created with "refunded": null, numeric strings and \\/ escapes grants the pack; partial refunds take back in proportion, never more than is unspent', async () => {
    const c = await newCustomer();
    const order = { ...c.vars, variant_id: VARIANT[5000] };
    const body = fixtureBody('order', { event: 'order_created', vars: order });
    expect(body).toContain('"refunded":null');
    expect(body).toContain('https:\\/\\/app.lemonsqueezy.com');
    expect((await postBody(h, body)).status).toBe(200);
    expect((await c.state()).balance).toMatchObject({ purchased_credits: 5000 });

    // 1,000 of 4,000 cents refunded: a quarter of the pack.
    await deliverFixture(h, 'order', {
      event: 'order_refunded',
      vars: order,
      attributes: { refunded_amount: '1000', refunded: null, updated_at: lsAt(5) },
    });
    expect((await c.state()).balance).toMatchObject({ purchased_credits: 3750 });
    await spend(h.app, c.user.id, 3000, `${c.user.id}:a`);
    // The rest refunded: only the 750 still unspent can come back.
    await deliverFixture(h, 'order', {
      event: 'order_refunded',
      vars: order,
      attributes: { status: 'refunded', refunded: true, refunded_amount: 4000, updated_at: lsAt(6) },
    });
    expect((await c.state()).balance).toMatchObject({ purchased_credits: 0 });
  });

  it('fields we do not need may be null, odd or of another type: still 200 and applied', async () => {
    const c = await newCustomer();
    await deliverFixture(h, 'subscription', {
      event: 'subscription_created',
      vars: c.vars,
      custom: { user_id: c.user.id },
      attributes: {
        card_last_four: 4242,
        pause: 'weird',
        cancelled: null,
        urls: null,
        customer_id: null,
        first_subscription_item: 'x',
        trial_ends_at: 'not a date',
      },
    });
    expect((await c.state()).user.tier).toBe('pro');
  });

  it('equal updated_at: whichever of created/updated arrives first, the later renewal date wins', async () => {
    for (const order of [
      ['subscription_updated', 'subscription_created'],
      ['subscription_created', 'subscription_updated'],
    ]) {
      const c = await newCustomer();
      for (const event of order) {
        await c.subscription(event, 0, {
          renews_at: event === 'subscription_created' ? '2026-12-12T16:34:39.000000Z' : '2026-11-12T16:34:39.000000Z',
        });
      }
      const view = await h.app.callerFor({ ...c.user, tier: 'pro' }).payments.subscription();
      expect(view?.renewsAt?.toISOString()).toBe('2026-12-12T16:34:39.000Z');
    }
  });

  it("subscription_plan_changed applies the plan-change rule; subscription_payment_refunded takes back that period's unspent credits", async () => {
    const c = await newCustomer();
    await c.subscription('subscription_created', 0, {}, 'starter');
    await c.subscription('subscription_plan_changed', 5, {}, 'pro');
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 10_000 });
    const renewal = c.id + 40;
    await c.invoice('subscription_payment_success', renewal, 30 * 24 * 60);
    await spend(h.app, c.user.id, 4000, `${c.user.id}:a`);
    await c.invoice('subscription_payment_refunded', renewal, 30 * 24 * 60 + 5, {
      status: 'refunded',
      refunded: true,
      refunded_amount: 3750,
    });
    // Half the price back: half the allocation (5,000) taken, from the 6,000 unspent.
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 1000 });
    await c.invoice('subscription_payment_refunded', renewal, 30 * 24 * 60 + 6, {
      status: 'refunded',
      refunded: true,
      refunded_amount: 7500,
    });
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 0 });
    // A refund of an older period takes nothing: those credits lapsed at the renewal.
    expect(
      await c.invoice('subscription_payment_refunded', c.id + 3, 30 * 24 * 60 + 7, {
        billing_reason: 'initial',
        refunded_amount: 7500,
      }),
    ).toMatchObject({ outcome: 'applied' });
    expect((await c.state()).user.tier).toBe('pro');
  });
});

describe('test mode', () => {
  it('a test_mode event in production is recorded and changes nothing, unless LEMONSQUEEZY_ACCEPT_TEST_MODE', async () => {
    const c = await newCustomer();
    const body = fixtureBody('subscription', {
      event: 'subscription_created',
      vars: c.vars,
      custom: { user_id: c.user.id },
      meta: { test_mode: true },
    });
    const production = {
      ...h.app.deps,
      config: { ...h.app.deps.config, NODE_ENV: 'production' as const, development: false },
    };
    // NODE_ENV=development on a public PUBLIC_URL is not development either (see config.ts).
    const developmentOnAPublicAddress = {
      ...h.app.deps,
      config: { ...h.app.deps.config, NODE_ENV: 'development' as const, development: false },
    };
    for (const [deps, copy] of [
      [production, body],
      [developmentOnAPublicAddress, body.replace(/"webhook_id":"[^"]*"/, '"webhook_id":"public-development"')],
    ] as const) {
      // Another webhook id: other bytes, so each copy is judged, not answered as a duplicate.
      const refused = await receiveLemonSqueezyWebhook(
        deps,
        Buffer.from(copy),
        signLemonSqueezyBody(WEBHOOK_SECRET, copy),
      );
      expect(refused).toMatchObject({ status: 200, body: { outcome: 'ignored' } });
    }
    expect((await c.state()).user.tier).toBe('free');
    expect((await c.state()).subscriptions).toEqual([]);

    const staging = { ...production, config: { ...production.config, LEMONSQUEEZY_ACCEPT_TEST_MODE: true } };
    const again = fixtureBody('subscription', {
      event: 'subscription_created',
      vars: c.vars,
      custom: { user_id: c.user.id },
      meta: { test_mode: true, webhook_id: 'again' },
    });
    expect(
      await receiveLemonSqueezyWebhook(staging, Buffer.from(again), signLemonSqueezyBody(WEBHOOK_SECRET, again)),
    ).toMatchObject({ status: 200, body: { outcome: 'applied' } });
    expect((await c.state()).user.tier).toBe('pro');
  });
});

describe('purchases outside our checkout', () => {
  it('subscription_created without custom_data is matched by the e-mail of exactly one user', async () => {
    const c = await newCustomer();
    await deliverFixture(h, 'subscription', {
      event: 'subscription_created',
      vars: c.vars,
      withoutCustomData: true,
      attributes: { user_email: c.user.email.toUpperCase() },
    });
    expect((await c.state()).user.tier).toBe('pro');
    expect((await c.state()).balance).toMatchObject({ subscription_credits: 10_000 });
  });

  it('one that matches nobody is kept (metric and log) and applied when the customer signs up and opens billing', async () => {
    const email = `later-${newId()}@example.test`;
    const id = newId();
    const vars = {
      user_id: 'none',
      email,
      subscription_id: id + 1,
      variant_id: VARIANT.pro,
      invoice_id: id + 3,
      order_id: id + 2,
    };
    const before = (await unmatchedPurchases.get()).values.reduce((n, v) => n + v.value, 0);
    expect(
      await deliverFixture(h, 'subscription', { event: 'subscription_created', vars, withoutCustomData: true }),
    ).toMatchObject({ outcome: 'unknown_user' });
    expect(
      await deliverFixture(h, 'invoice', {
        event: 'subscription_payment_success',
        vars,
        attributes: { updated_at: lsAt(30 * 24 * 60) },
      }),
    ).toMatchObject({ outcome: 'unknown_user' });
    expect((await unmatchedPurchases.get()).values.reduce((n, v) => n + v.value, 0)).toBe(before + 2);

    const user = await h.app.createUser({ email });
    expect((await stateOf(h.app, user.id)).user.tier).toBe('free');
    const view = await h.app.callerFor(user).payments.subscription();
    expect(view).toMatchObject({ tier: 'pro', status: 'active' });
    const state = await stateOf(h.app, user.id);
    expect(state.user.tier).toBe('pro');
    expect(state.balance).toMatchObject({ subscription_credits: 10_000 });
    // stateOf folds provider ids to their last five digits.
    expect(state.ledger.map((e) => e.idempotency_key)).toEqual([
      `allocation:ls-invoice:${(id + 3) % 100_000}`,
      `allocation:ls-sub:${(id + 1) % 100_000}:initial`,
    ]);
  });
});
