import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { DomainError } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { capture, getBalance, grant, hold, release } from './ledger.js';

let app: TestApp;
beforeAll(async () => { app = await createTestApp(); });
afterAll(async () => { await app.close(); });
afterEach(async () => { await expectLedgerInvariants(app.database.admin); });

const sys = <T>(fn: Parameters<typeof withSystem<T>>[1]) => withSystem(app.deps.db, fn);

describe('ledger', () => {
  it('holds subscription credits first and refunds the unused part to purchased first', async () => {
    const user = await app.createUser();
    await sys((tx) => grant(tx, { userId: user.id, key: `t1:${user.id}:sub`, type: 'monthly_allocation', bucket: 'subscription', amount: 50 }));
    await sys((tx) => grant(tx, { userId: user.id, key: `t1:${user.id}:pur`, type: 'purchase', bucket: 'purchased', amount: 100 }));
    const { hold: h } = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:1`, amount: 90 }));
    expect([h.subscriptionAmount, h.purchasedAmount]).toEqual([50, 40]);
    await sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 45 }));
    expect(await sys((tx) => getBalance(tx, user.id))).toEqual({ subscription: 5, purchased: 100, held: 0, available: 105 });
  });

  it('refuses a hold beyond the balance with PAYMENT_REQUIRED and writes nothing', async () => {
    const user = await app.createUser();
    await sys((tx) => grant(tx, { userId: user.id, key: `t2:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 10 }));
    const error = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:x`, amount: 11 })).catch((e) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error.details).toEqual({ balance: 10, needed: 11 });
    const rows = await app.database.admin`select count(*)::int as count from credit_holds where user_id = ${user.id}`;
    expect(rows[0]!.count).toBe(0);
  });

  it('a release after a capture changes nothing, and a capture after a release conflicts', async () => {
    const user = await app.createUser();
    await sys((tx) => grant(tx, { userId: user.id, key: `t3:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 100 }));
    const a = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:a`, amount: 30 }));
    await sys((tx) => capture(tx, { userId: user.id, holdId: a.hold.id, amount: 10 }));
    expect(await sys((tx) => release(tx, { userId: user.id, holdId: a.hold.id }))).toBeNull();
    const b = await sys((tx) => hold(tx, { userId: user.id, key: `hold:${user.id}:b`, amount: 30 }));
    await sys((tx) => release(tx, { userId: user.id, holdId: b.hold.id }));
    await expect(sys((tx) => capture(tx, { userId: user.id, holdId: b.hold.id, amount: 5 }))).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await sys((tx) => getBalance(tx, user.id))).available).toBe(90);
  });
});
