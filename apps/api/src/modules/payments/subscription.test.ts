import { describe, expect, it } from 'vitest';
import { at, customer, deliverInOrder, usePaymentsHarness, type PaymentsHarness } from './webhook.test-support.js';

let h: PaymentsHarness;

usePaymentsHarness((harness) => {
  h = harness;
});

describe('payments.subscription', () => {
  it('shows the renewal date while active, the end date once cancelled; other users see nothing of it', async () => {
    const user = await h.app.createUser();
    const stranger = await h.app.createUser();
    const ls = customer(user, 7_000_000);
    const caller = h.app.callerFor(user);
    expect(await caller.payments.subscription()).toBeNull();

    const created = ls.subscription('pro', 'subscription_created', 0);
    await deliverInOrder(h, [created]);
    const { renews_at, urls } = created.data.attributes as { renews_at: string; urls: Record<string, string> };
    const renewsAt = new Date(renews_at);
    expect(await caller.payments.subscription()).toEqual({
      tier: 'pro',
      status: 'active',
      cancelled: false,
      renewsAt,
      endsAt: null,
      paymentFailedCount: 0,
      customerPortalUrl: urls.customer_portal,
      canChangePlan: true,
    });

    const endsAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 20 * 86_400_000);
    await deliverInOrder(h, [ls.subscription('pro', 'subscription_cancelled', 30, { status: 'cancelled', endsAt })]);
    expect(await caller.payments.subscription()).toMatchObject({
      tier: 'pro',
      status: 'cancelled',
      cancelled: true,
      renewsAt,
      endsAt,
    });

    expect(await h.app.callerFor(stranger).payments.subscription()).toBeNull();
  });

  it('a live subscription wins over a newer one that has ended', async () => {
    const user = await h.app.createUser();
    const older = customer(user, 8_000_000);
    const newer = customer(user, 9_000_000);
    await deliverInOrder(h, [older.subscription('starter', 'subscription_created', 0)]);
    await deliverInOrder(h, [
      newer.subscription('pro', 'subscription_created', 10),
      newer.subscription('pro', 'subscription_expired', 20, { status: 'expired', endsAt: at(20) }),
    ]);
    expect(await h.app.callerFor(user).payments.subscription()).toMatchObject({ tier: 'starter', status: 'active' });
  });
});
