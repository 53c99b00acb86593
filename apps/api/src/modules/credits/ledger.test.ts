import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { DomainError } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import {
  capture,
  changePlanCredits,
  getBalance,
  grant,
  hold,
  release,
  revokePurchased,
  setSubscriptionCredits,
} from './ledger.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});
afterEach(async () => {
  await expectLedgerInvariants(app.database.admin);
});

const sys = <T>(fn: Parameters<typeof withSystem<T>>[1]) => withSystem(app.deps.db, fn);

describe('ledger', () => {
  it('holds subscription credits first and refunds the unused part to purchased first', async () => {
    const user = await app.createUser();
    await sys((tx) =>
      grant(tx, {
        userId: user.id,
        key: `t1:${user.id}:sub`,
        type: 'monthly_allocation',
        bucket: 'subscription',
        amount: 50,
      }),
    );
    await sys((tx) =>
      grant(tx, { userId: user.id, key: `t1:${user.id}:pur`, type: 'purchase', bucket: 'purchased', amount: 100 }),
    );
    const { hold: h } = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:1`, amount: 90 }));
    expect([h.subscriptionAmount, h.purchasedAmount]).toEqual([50, 40]);
    await sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 45 }));
    expect(await sys((tx) => getBalance(tx, user.id))).toEqual({
      subscription: 5,
      purchased: 100,
      held: 0,
      available: 105,
    });
  });

  it('refuses a hold beyond the balance with PAYMENT_REQUIRED and writes nothing', async () => {
    const user = await app.createUser();
    await sys((tx) =>
      grant(tx, { userId: user.id, key: `t2:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 10 }),
    );
    const error = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:x`, amount: 11 })).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect(error.details).toEqual({ balance: 10, needed: 11 });
    const rows = await app.database.admin`select count(*)::int as count from credit_holds where user_id = ${user.id}`;
    expect(rows[0]!.count).toBe(0);
  });

  it('a release after a capture changes nothing, and a capture after a release conflicts', async () => {
    const user = await app.createUser();
    await sys((tx) =>
      grant(tx, { userId: user.id, key: `t3:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 100 }),
    );
    const a = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:a`, amount: 30 }));
    await sys((tx) => capture(tx, { userId: user.id, holdId: a.hold.id, amount: 10 }));
    expect(await sys((tx) => release(tx, { userId: user.id, holdId: a.hold.id }))).toBeNull();
    const b = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:b`, amount: 30 }));
    await sys((tx) => release(tx, { userId: user.id, holdId: b.hold.id }));
    await expect(sys((tx) => capture(tx, { userId: user.id, holdId: b.hold.id, amount: 5 }))).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect((await sys((tx) => getBalance(tx, user.id))).available).toBe(90);
  });

  it('plan credits a running job held come back only within their period: across a reset or a downgrade they lapse', async () => {
    const user = await app.createUser();
    const set = (key: string, amount: number, type: 'monthly_allocation' | 'downgrade' = 'monthly_allocation') =>
      sys((tx) => setSubscriptionCredits(tx, { userId: user.id, key: `${key}:${user.id}`, type, amount }));
    await set('p1', 2000);
    const a = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:a`, amount: 500 }));
    await set('p2', 2000);
    await sys((tx) => release(tx, { userId: user.id, holdId: a.hold.id }));
    // A new period has its own allocation: the old period's 500 do not land on top of it.
    expect((await sys((tx) => getBalance(tx, user.id))).subscription).toBe(2000);

    const b = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:b`, amount: 300 }));
    await set('end', 0, 'downgrade');
    await sys((tx) => capture(tx, { userId: user.id, holdId: b.hold.id, amount: 100 }));
    expect((await sys((tx) => getBalance(tx, user.id))).subscription).toBe(0);

    await set('p3', 2000);
    const c = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:c`, amount: 400 }));
    await sys((tx) => release(tx, { userId: user.id, holdId: c.hold.id }));
    expect((await sys((tx) => getBalance(tx, user.id))).subscription).toBe(2000);
  });

  it('a refund takes what is unspent: purchased credits a job holds are taken from what it returns, spent ones never', async () => {
    const user = await app.createUser();
    await sys((tx) =>
      grant(tx, { userId: user.id, key: `pack:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 1000 }),
    );
    const a = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:a`, amount: 800 }));
    await sys((tx) => revokePurchased(tx, { userId: user.id, key: `refund:${user.id}`, amount: 1000 }));
    expect(await sys((tx) => getBalance(tx, user.id))).toMatchObject({ purchased: 0, held: 800 });
    // The job used 300: the 500 it returns belong to the refunded pack; the 300 spent are not taken twice.
    await sys((tx) => capture(tx, { userId: user.id, holdId: a.hold.id, amount: 300 }));
    expect(await sys((tx) => getBalance(tx, user.id))).toMatchObject({ purchased: 0, held: 0 });
    const [row] = await app.database.admin`select purchased_debt from credit_balances where user_id = ${user.id}`;
    expect(row!.purchased_debt).toBe(0);
  });

  it('a plan change counts what running jobs hold from this period toward the new allocation', async () => {
    const user = await app.createUser();
    await sys((tx) =>
      setSubscriptionCredits(tx, { userId: user.id, key: `p:${user.id}`, type: 'monthly_allocation', amount: 10_000 }),
    );
    await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:a`, amount: 1500 }));
    await sys((tx) => changePlanCredits(tx, { userId: user.id, key: `down:${user.id}`, from: 10_000, to: 2000 }));
    // 8,500 in the bucket + 1,500 held, capped at 2,000: 500 stay in the bucket.
    expect(await sys((tx) => getBalance(tx, user.id))).toMatchObject({ subscription: 500, held: 1500 });
    await sys((tx) => changePlanCredits(tx, { userId: user.id, key: `up:${user.id}`, from: 2000, to: 10_000 }));
    expect(await sys((tx) => getBalance(tx, user.id))).toMatchObject({ subscription: 8500, held: 1500 });
  });
});
