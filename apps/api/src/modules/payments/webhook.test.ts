import { describe, expect, it } from 'vitest';
import { signLemonSqueezyBody, webhookBody } from '@pingvas/testkit';
import { downgradeEndedSubscriptions } from './subscription-end.task.js';
import {
  at,
  counts,
  customer,
  deliverInOrder,
  spend,
  usePaymentsHarness,
  stateOf,
  VARIANT,
  WEBHOOK_SECRET,
  type PaymentsHarness,
} from './webhook.test-support.js';

let h: PaymentsHarness;
let nextBase = 1_000_000;
const newBase = () => (nextBase += 1_000_000);

usePaymentsHarness((harness) => {
  h = harness;
});

async function newCustomer() {
  const user = await h.app.createUser();
  return { user, ls: customer(user, newBase()) };
}

describe('Lemon Squeezy webhooks: journeys', () => {
  it('free → pro: tier pro, 10,000 credits, one welcome e-mail', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, ls.checkout('pro'));
    const state = await stateOf(h.app, user.id);
    expect(state.user).toEqual({ tier: 'pro', banner_reason: null });
    expect(state.balance).toMatchObject({ subscription_credits: 10_000, purchased_credits: 0 });
    expect(state.subscriptions).toMatchObject([
      { tier: 'pro', status: 'active', cancelled: false, payment_failed_count: 0 },
    ]);
    expect(state.outbox).toEqual(['welcome']);
    const outcomes = await h.app.database
      .admin`select event_name, outcome from webhook_events where user_id = ${user.id} order by received_at`;
    expect(outcomes.map((o) => `${o.event_name}:${o.outcome}`)).toEqual([
      // The burst's update carries the same state as the create (same updated_at and dates): not newer, so stale.
      'subscription_created:applied',
      'subscription_updated:stale',
      'order_created:ignored',
      'subscription_payment_success:ignored',
    ]);
  });

  it('a starter buys 5,000 credits: purchased +5,000 once, one "credits added" e-mail', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, ls.checkout('starter'));
    const order = ls.pack(5000, 20, 5);
    await deliverInOrder(h, [order, order]);
    const state = await stateOf(h.app, user.id);
    expect(state.balance).toMatchObject({ subscription_credits: 2000, purchased_credits: 5000 });
    expect(state.outbox).toEqual(['credits_added', 'welcome']);
  });

  it('a renewal resets subscription credits to the allocation once per period', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, ls.checkout('pro'));
    await spend(h.app, user.id, 7000, `${user.id}:a`);
    const renewal = ls.invoice('subscription_payment_success', 4, 'renewal', 60);
    await deliverInOrder(h, [renewal]);
    expect((await stateOf(h.app, user.id)).balance).toMatchObject({ subscription_credits: 10_000 });

    await spend(h.app, user.id, 3000, `${user.id}:b`);
    // The same delivery again, and the same invoice in a new delivery (other bytes): no second reset.
    await deliverInOrder(h, [renewal, ls.invoice('subscription_payment_success', 4, 'renewal', 61)]);
    expect((await stateOf(h.app, user.id)).balance).toMatchObject({ subscription_credits: 7000 });

    await deliverInOrder(h, [ls.invoice('subscription_payment_success', 5, 'renewal', 120)]);
    expect((await stateOf(h.app, user.id)).balance).toMatchObject({ subscription_credits: 10_000 });
  });

  it('two failed payments: count 2, a "we\'ll retry" then a "please update your card" e-mail, the banner; recovery clears it', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, ls.checkout('pro'));
    await deliverInOrder(h, [
      ls.invoice('subscription_payment_failed', 4, 'renewal', 60, 'void'),
      ls.subscription('pro', 'subscription_updated', 60, { status: 'past_due' }),
      ls.invoice('subscription_payment_failed', 4, 'renewal', 90, 'void'),
    ]);
    let state = await stateOf(h.app, user.id);
    expect(state.subscriptions[0]).toMatchObject({ payment_failed_count: 2, status: 'past_due' });
    expect(state.user).toEqual({ tier: 'pro', banner_reason: 'payment_failed' });
    const mails = await h.app.database
      .admin`select template, text_body from email_outbox where user_id = ${user.id} and template like 'payment_failed%' order by created_at`;
    expect(mails.map((m) => m.template)).toEqual(['payment_failed_first', 'payment_failed_later']);
    expect(mails[0]!.text_body).toContain("we'll retry");
    expect(mails[1]!.text_body).toContain('Please update your card');
    // Our billing page, which asks the provider for a fresh link: its own expires within a day.
    expect(mails[1]!.text_body).toContain('http://studio.localhost/billing?update-card=1');

    await spend(h.app, user.id, 9000, `${user.id}:c`);
    await deliverInOrder(h, [ls.invoice('subscription_payment_recovered', 4, 'renewal', 120)]);
    state = await stateOf(h.app, user.id);
    expect(state.subscriptions[0]).toMatchObject({ payment_failed_count: 0 });
    expect(state.user.banner_reason).toBeNull();
    expect(state.balance).toMatchObject({ subscription_credits: 10_000 });
    expect(state.outbox).toContain('payment_recovered');
  });

  it('expiry: tier free, subscription credits 0, purchased credits kept, banner, one cancellation e-mail', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, [...ls.checkout('pro'), ls.pack(1000, 20, 1)]);
    const expired = ls.subscription('pro', 'subscription_expired', 100, { status: 'expired', endsAt: at(100) });
    await deliverInOrder(h, [
      expired,
      ls.subscription('pro', 'subscription_updated', 100, { status: 'expired', endsAt: at(100) }),
    ]);
    const state = await stateOf(h.app, user.id);
    expect(state.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(state.balance).toMatchObject({ subscription_credits: 0, purchased_credits: 1000 });
    expect(state.subscriptions[0]).toMatchObject({ status: 'expired' });
    expect(state.outbox.filter((t) => t === 'subscription_cancelled')).toHaveLength(1);
    expect(state.ledger.find((e) => e.type === 'downgrade')).toMatchObject({
      subscription_delta: -10_000,
      purchased_delta: 0,
    });
  });

  it('cancelled with the term ahead keeps access until ends_at, then the background check downgrades; a past ends_at downgrades at once', async () => {
    const later = await newCustomer();
    await deliverInOrder(h, later.ls.checkout('starter'));
    const endsAt = new Date(Date.now() + 10 * 86_400_000);
    await deliverInOrder(h, [
      later.ls.subscription('starter', 'subscription_cancelled', 50, { status: 'cancelled', endsAt }),
    ]);
    expect(await downgradeEndedSubscriptions(h.app.deps)).toBe(0);
    let state = await stateOf(h.app, later.user.id);
    expect(state.user).toEqual({ tier: 'starter', banner_reason: null });
    expect(state.balance).toMatchObject({ subscription_credits: 2000 });

    await h.app.database
      .admin`update subscriptions set ends_at = now() - interval '1 minute' where user_id = ${later.user.id}`;
    expect(await downgradeEndedSubscriptions(h.app.deps)).toBe(1);
    expect(await downgradeEndedSubscriptions(h.app.deps)).toBe(0);
    state = await stateOf(h.app, later.user.id);
    expect(state.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(state.balance).toMatchObject({ subscription_credits: 0 });
    expect(state.outbox).toEqual(['subscription_cancelled', 'welcome']);

    const now = await newCustomer();
    await deliverInOrder(h, now.ls.checkout('pro'));
    await deliverInOrder(h, [
      now.ls.subscription('pro', 'subscription_cancelled', 50, { status: 'cancelled', endsAt: at(49) }),
    ]);
    expect((await stateOf(h.app, now.user.id)).user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
  });

  it('a resumed subscription is active again; an unresolved failed payment keeps its banner', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, [
      ...ls.checkout('pro'),
      ls.invoice('subscription_payment_failed', 4, 'renewal', 10, 'void'),
    ]);
    await deliverInOrder(h, [
      ls.subscription('pro', 'subscription_cancelled', 20, {
        status: 'cancelled',
        endsAt: new Date(Date.now() + 86_400_000),
      }),
      ls.subscription('pro', 'subscription_resumed', 30, { status: 'active' }),
    ]);
    let state = await stateOf(h.app, user.id);
    expect(state.user).toEqual({ tier: 'pro', banner_reason: 'payment_failed' });
    expect(state.subscriptions[0]).toMatchObject({ status: 'active', cancelled: false, ends_at: null });
    await deliverInOrder(h, [ls.invoice('subscription_payment_recovered', 4, 'renewal', 40)]);
    state = await stateOf(h.app, user.id);
    expect(state.user).toEqual({ tier: 'pro', banner_reason: null });
  });

  it('a plan change moves the tier; an older update arriving late changes nothing (stale)', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, ls.checkout('starter'));
    await deliverInOrder(h, [ls.subscription('pro', 'subscription_updated', 30)]);
    await deliverInOrder(h, [ls.subscription('starter', 'subscription_updated', 20, { status: 'past_due' })]);
    const state = await stateOf(h.app, user.id);
    expect(state.user.tier).toBe('pro');
    expect(state.subscriptions[0]).toMatchObject({ tier: 'pro', status: 'active', variant_id: VARIANT.pro });
    const [stale] = await h.app.database
      .admin`select outcome from webhook_events where user_id = ${user.id} order by received_at desc limit 1`;
    expect(stale!.outcome).toBe('stale');
  });

  it('a refund of a partly spent pack takes back only what is left', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, [ls.pack(5000, 20, 0)]);
    await spend(h.app, user.id, 3000, `${user.id}:d`);
    await deliverInOrder(h, [ls.pack(5000, 20, 10, 'order_refunded'), ls.pack(5000, 20, 10, 'order_refunded')]);
    const state = await stateOf(h.app, user.id);
    expect(state.balance).toMatchObject({ subscription_credits: 0, purchased_credits: 0 });
    expect(state.ledger.find((e) => e.type === 'refund')).toMatchObject({ purchased_delta: -2000 });
  });

  it('a refund that overtakes its order takes nothing, and the late order grants nothing', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, [ls.pack(1000, 20, 0)]);
    await deliverInOrder(h, [ls.pack(5000, 30, 10, 'order_refunded'), ls.pack(5000, 30, 0)]);
    const state = await stateOf(h.app, user.id);
    expect(state.balance).toMatchObject({ purchased_credits: 1000 });
    expect(state.outbox).toEqual(['credits_added']);
  });
});

describe('Lemon Squeezy webhooks: adversarial', () => {
  /** A whole life, grouped as the provider fires events together for one happening. */
  function lifecycle(ls: ReturnType<typeof customer>) {
    const farEnd = new Date(Date.parse('2099-01-01T00:00:00Z'));
    return [
      ls.checkout('pro'),
      [ls.pack(1000, 20, 5)],
      [
        ls.invoice('subscription_payment_success', 4, 'renewal', 60),
        ls.subscription('pro', 'subscription_updated', 60, { renewsAt: at(60 + 43_200) }),
      ],
      [
        ls.invoice('subscription_payment_failed', 5, 'renewal', 120, 'void'),
        ls.subscription('pro', 'subscription_updated', 120, { status: 'past_due' }),
      ],
      [ls.invoice('subscription_payment_failed', 5, 'renewal', 150, 'void')],
      [
        ls.invoice('subscription_payment_recovered', 5, 'renewal', 180),
        ls.invoice('subscription_payment_success', 5, 'renewal', 180),
        ls.subscription('pro', 'subscription_updated', 180),
      ],
      [
        ls.subscription('pro', 'subscription_cancelled', 200, { status: 'cancelled', endsAt: farEnd }),
        ls.subscription('pro', 'subscription_updated', 200, { status: 'cancelled', endsAt: farEnd }),
      ],
      [
        ls.subscription('pro', 'subscription_expired', 300, { status: 'expired', endsAt: at(300) }),
        ls.subscription('pro', 'subscription_updated', 300, { status: 'expired', endsAt: at(300) }),
      ],
      [ls.pack(1000, 20, 310, 'order_refunded')],
    ];
  }

  /** Every event 3 times, all at once, in a random order; what the provider must retry (non-200) is retried. */
  async function stormDeliver(burst: ReturnType<typeof lifecycle>[number]) {
    let pending = burst.flatMap((e) => [e, e, e]).sort(() => Math.random() - 0.5);
    for (let round = 0; pending.length && round < 10; round += 1) {
      const results = await Promise.all(pending.map((e) => h.fake.sendWebhook(h.webhookUrl, e)));
      for (const r of results) expect([200, 503]).toContain(r.status);
      pending = pending.filter((_, i) => results[i]!.status !== 200);
    }
    expect(pending).toEqual([]);
  }

  it('every event delivered 3 times, concurrently and out of order, ends as once in order', async () => {
    const inOrder = await newCustomer();
    const storm = await newCustomer();
    const bursts = lifecycle(inOrder.ls);
    const stormBursts = lifecycle(storm.ls);
    for (let i = 0; i < bursts.length; i += 1) {
      await deliverInOrder(h, bursts[i]!);
      await stormDeliver(stormBursts[i]!);
      const [a, b] = [await stateOf(h.app, inOrder.user.id), await stateOf(h.app, storm.user.id)];
      expect(b, `after burst ${i}`).toEqual(a);
    }
    const final = await stateOf(h.app, storm.user.id);
    expect(final.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(final.balance).toMatchObject({ subscription_credits: 0, purchased_credits: 0 });
    expect(final.outbox).toEqual([
      'credits_added',
      'payment_failed_first',
      'payment_failed_later',
      'payment_recovered',
      'subscription_cancelled',
      'welcome',
    ]);
  });

  it('the whole checkout burst shuffled (an update before its create, the invoice first) activates once', async () => {
    for (let i = 0; i < 5; i += 1) {
      const { user, ls } = await newCustomer();
      await stormDeliver(ls.checkout('starter').reverse());
      const state = await stateOf(h.app, user.id);
      expect(state.user.tier).toBe('starter');
      expect(state.balance).toMatchObject({ subscription_credits: 2000 });
      expect(state.outbox).toEqual(['welcome']);
    }
  });

  it('the end-of-term check racing the expiry webhook (and another replica) downgrades once', async () => {
    const { user, ls } = await newCustomer();
    await deliverInOrder(h, [
      ...ls.checkout('pro'),
      ls.subscription('pro', 'subscription_cancelled', 50, {
        status: 'cancelled',
        endsAt: new Date(Date.now() + 86_400_000),
      }),
    ]);
    await h.app.database
      .admin`update subscriptions set ends_at = now() - interval '1 second' where user_id = ${user.id}`;
    const expired = ls.subscription('pro', 'subscription_expired', 60, { status: 'expired', endsAt: at(60) });
    await Promise.all([
      downgradeEndedSubscriptions(h.app.deps),
      downgradeEndedSubscriptions(h.app.deps),
      h.fake.sendWebhook(h.webhookUrl, expired),
      h.fake.sendWebhook(h.webhookUrl, expired),
    ]);
    const state = await stateOf(h.app, user.id);
    expect(state.user).toEqual({ tier: 'free', banner_reason: 'subscription_cancelled' });
    expect(state.outbox).toEqual(['subscription_cancelled', 'welcome']);
    expect(state.ledger.filter((e) => e.type === 'downgrade')).toHaveLength(1);
    expect(state.subscriptions[0]).toMatchObject({ status: 'expired' });
  });

  it('forged, missing and truncated signatures → 401 and no change', async () => {
    const { user, ls } = await newCustomer();
    const event = ls.checkout('pro')[0]!;
    const body = webhookBody(event);
    const good = signLemonSqueezyBody(WEBHOOK_SECRET, body);
    const before = await counts(h.app);
    for (const signature of [
      signLemonSqueezyBody('another-secret', body),
      null,
      good.slice(0, 63),
      good.slice(0, 32),
      '',
      good.toUpperCase(),
      `${good}00`,
    ]) {
      const r = await h.fake.sendWebhook(h.webhookUrl, event, { signature });
      expect(r.status, `signature ${signature}`).toBe(401);
    }
    // A valid signature of other bytes: the body was tampered with.
    const r = await h.fake.sendWebhook(h.webhookUrl, event, {
      body: body.replace('"active"', '"expired"'),
      signature: good,
    });
    expect(r.status).toBe(401);
    expect(await counts(h.app)).toEqual(before);
    expect((await stateOf(h.app, user.id)).user.tier).toBe('free');
  });

  it('malformed JSON (or a known event without its attributes) with a valid signature → 400 and no change', async () => {
    const { ls } = await newCustomer();
    const before = await counts(h.app);
    const event = ls.checkout('pro')[0]!;
    const truncated = webhookBody(event).slice(0, -7);
    expect(
      (
        await h.fake.sendWebhook(h.webhookUrl, event, {
          body: truncated,
          signature: signLemonSqueezyBody(WEBHOOK_SECRET, truncated),
        })
      ).status,
    ).toBe(400);
    const missing = JSON.stringify({
      meta: { event_name: 'subscription_created' },
      data: { type: 'subscriptions', id: '5', attributes: { status: 'active' } },
    });
    expect(
      (
        await h.fake.sendWebhook(h.webhookUrl, event, {
          body: missing,
          signature: signLemonSqueezyBody(WEBHOOK_SECRET, missing),
        })
      ).status,
    ).toBe(400);
    expect(await counts(h.app)).toEqual(before);
  });

  it('an event for an unknown user is recorded (unknown_user), changes nothing, 200', async () => {
    const ghost = customer({ id: '00000000-0000-4000-8000-00000000dead', email: 'ghost@example.test' }, newBase());
    const before = await counts(h.app);
    for (const event of [ghost.checkout('pro')[0]!, ghost.pack(5000, 20, 0)]) {
      const r = await h.fake.sendWebhook(h.webhookUrl, event);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ outcome: 'unknown_user' });
    }
    const weird = { ...ghost.checkout('pro')[0]!, custom: { user_id: 12345 } };
    expect((await h.fake.sendWebhook(h.webhookUrl, weird)).status).toBe(200);
    const after = await counts(h.app);
    expect(after).toEqual({ ...before, events: before.events + 3 });
  });

  it('verifies the exact bytes received, whatever their formatting and charset parameter', async () => {
    const { user, ls } = await newCustomer();
    const event = ls.pack(1000, 20, 0);
    const body = JSON.stringify(JSON.parse(webhookBody(event)), null, 2);
    const r = await fetch(h.webhookUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'x-event-name': event.name,
        'x-signature': signLemonSqueezyBody(WEBHOOK_SECRET, body),
      },
      body,
    });
    expect(r.status).toBe(200);
    expect((await stateOf(h.app, user.id)).balance).toMatchObject({ purchased_credits: 1000 });
  });

  it('an unknown event type is recorded and answered 200', async () => {
    const { ls } = await newCustomer();
    const r = await h.fake.sendWebhook(h.webhookUrl, { ...ls.pack(1000, 20, 0), name: 'license_key_created' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ outcome: 'ignored' });
  });

  it('a failure inside the transaction → 500 and nothing half-applied; the redelivery applies it', async () => {
    const { user, ls } = await newCustomer();
    const created = ls.checkout('pro')[0]!;
    const sql = h.app.database.admin;
    // The welcome e-mail is the last write of the activation: failing it proves the earlier writes roll back.
    await sql.unsafe(`
      create function fail_welcome() returns trigger language plpgsql as $$
      begin if new.template = 'welcome' then raise exception 'injected failure'; end if; return new; end $$;
      create trigger fail_welcome before insert on email_outbox for each row execute function fail_welcome();`);
    try {
      const before = await counts(h.app);
      expect((await h.fake.sendWebhook(h.webhookUrl, created)).status).toBe(500);
      expect(await counts(h.app)).toEqual(before);
      expect((await stateOf(h.app, user.id)).user.tier).toBe('free');
    } finally {
      await sql.unsafe('drop trigger fail_welcome on email_outbox; drop function fail_welcome();');
    }
    expect((await h.fake.sendWebhook(h.webhookUrl, created)).status).toBe(200);
    const state = await stateOf(h.app, user.id);
    expect(state.user.tier).toBe('pro');
    expect(state.balance).toMatchObject({ subscription_credits: 10_000 });
    expect(state.outbox).toEqual(['welcome']);
  });

  it('an invoice for a subscription not seen yet asks for a retry (503) and records nothing', async () => {
    const { user, ls } = await newCustomer();
    const failed = ls.invoice('subscription_payment_failed', 4, 'renewal', 60, 'void');
    const before = await counts(h.app);
    expect((await h.fake.sendWebhook(h.webhookUrl, failed)).status).toBe(503);
    expect(await counts(h.app)).toEqual(before);
    await deliverInOrder(h, [...ls.checkout('pro'), failed]);
    expect((await stateOf(h.app, user.id)).subscriptions[0]).toMatchObject({ payment_failed_count: 1 });
  });
});
