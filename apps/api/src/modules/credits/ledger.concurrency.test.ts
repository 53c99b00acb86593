import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { schema, withSystem, withUser, type Tx } from '@pingvas/db';
import { DomainError } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { capture, getBalance, grant, hold, release, revokePurchased, setSubscriptionCredits } from './ledger.js';

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

const sys = <T>(fn: (tx: Tx) => Promise<T>) => withSystem(app.deps.db, fn);
const times = (n: number) => Array.from({ length: n }, (_, i) => i);
const settle = <T>(promises: Promise<T>[]) => Promise.allSettled(promises);
const rejections = (results: PromiseSettledResult<unknown>[]) =>
  results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
const values = <T>(results: PromiseSettledResult<T>[]) =>
  results.filter((r): r is PromiseFulfilledResult<T> => r.status === 'fulfilled').map((r) => r.value);

async function fundedUser(amounts: { subscription?: number; purchased?: number }) {
  const user = await app.createUser();
  if (amounts.subscription) {
    await sys((tx) =>
      setSubscriptionCredits(tx, {
        userId: user.id,
        key: `period:${user.id}:0`,
        type: 'monthly_allocation',
        amount: amounts.subscription!,
      }),
    );
  }
  if (amounts.purchased) {
    await sys((tx) =>
      grant(tx, {
        userId: user.id,
        key: `pack:${user.id}:0`,
        type: 'purchase',
        bucket: 'purchased',
        amount: amounts.purchased!,
      }),
    );
  }
  return user;
}

const balanceOf = (userId: string) => sys((tx) => getBalance(tx, userId));
const countRows = async (table: 'credit_transactions' | 'credit_holds', userId: string) =>
  (await app.database.admin`select count(*)::int as n from ${app.database.admin(table)} where user_id = ${userId}`)[0]!
    .n as number;

describe('ledger under concurrency', () => {
  it('500 parallel holds of 10 on 2,000 credits: exactly 200 succeed, the rest get PAYMENT_REQUIRED', async () => {
    const user = await fundedUser({ subscription: 1200, purchased: 800 });
    const results = await settle(
      times(500).map((i) => sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:${i}`, amount: 10 }))),
    );
    const held = values(results);
    const refused = rejections(results);
    expect(held).toHaveLength(200);
    expect(new Set(held.map((h) => h.hold.id)).size).toBe(200);
    expect(refused).toHaveLength(300);
    for (const error of refused) {
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ code: 'PAYMENT_REQUIRED', details: { balance: 0, needed: 10 } });
    }
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 0, held: 2000, available: 0 });
    expect(await countRows('credit_holds', user.id)).toBe(200);
  });

  it('capture/release/replay storms settle every hold exactly once: captured XOR released', async () => {
    const user = await fundedUser({ subscription: 500, purchased: 1000 });
    const holds = await Promise.all(
      times(50).map((i) => sys((tx) => hold(tx, { userId: user.id, key: `storm:${user.id}:${i}`, amount: 20 }))),
    );
    const charge = 7;
    const outcomes = await Promise.all(
      holds.map(async ({ hold: h }, i) => {
        const shots: Promise<unknown>[] = [];
        for (const _ of times(5)) {
          shots.push(
            sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: charge })).then((e) => ({
              kind: 'capture' as const,
              id: e.id,
            })),
          );
          shots.push(
            sys((tx) => release(tx, { userId: user.id, holdId: h.id })).then((e) => ({
              kind: 'release' as const,
              id: e?.id ?? null,
            })),
          );
          shots.push(
            sys((tx) => hold(tx, { userId: user.id, key: `storm:${user.id}:${i}`, amount: 20 })).then((r) => ({
              kind: 'replay' as const,
              id: r.hold.id,
            })),
          );
        }
        return settle(shots);
      }),
    );

    let captured = 0;
    for (const [i, results] of outcomes.entries()) {
      const ok = values(results) as { kind: 'capture' | 'release' | 'replay'; id: string | null }[];
      const captures = ok.filter((r) => r.kind === 'capture');
      const releases = ok.filter((r) => r.kind === 'release' && r.id !== null);
      // The replays all return the first hold, whatever happened to it since.
      expect(ok.filter((r) => r.kind === 'replay').map((r) => r.id)).toEqual(times(5).map(() => holds[i]!.hold.id));
      // Exactly one side won: all captures saw the same entry, or all releases did.
      expect(captures.length === 0 || releases.length === 0).toBe(true);
      expect(new Set([...captures, ...releases].map((r) => r.id)).size).toBe(1);
      // The losing captures are CONFLICTs; nothing else failed.
      for (const error of rejections(results)) expect(error).toMatchObject({ code: 'CONFLICT' });
      if (captures.length) {
        captured += 1;
        expect(captures).toHaveLength(5);
      } else {
        expect(releases).toHaveLength(5);
        expect(rejections(results)).toHaveLength(5);
      }
    }
    const closing = await app.database.admin`
      select hold_id, count(*)::int as n from credit_transactions
      where user_id = ${user.id} and type in ('capture', 'release') group by hold_id`;
    expect(closing).toHaveLength(50);
    expect(closing.every((row) => row.n === 1)).toBe(true);
    const states = await app.database
      .admin`select status, count(*)::int as n from credit_holds where user_id = ${user.id} group by status`;
    expect(states.find((s) => s.status === 'open')).toBeUndefined();
    expect(await balanceOf(user.id)).toEqual({
      subscription: expect.any(Number),
      purchased: expect.any(Number),
      held: 0,
      available: 1500 - captured * charge,
    });
  });

  it('one grant key applied 20 times at once has one effect, and every call returns that entry', async () => {
    const user = await app.createUser();
    const key = `order:${user.id}`;
    const entries = await Promise.all(
      times(20).map(() =>
        sys((tx) => grant(tx, { userId: user.id, key, type: 'purchase', bucket: 'purchased', amount: 1000 })),
      ),
    );
    expect(new Set(entries.map((e) => e.id)).size).toBe(1);
    expect(entries.filter((e) => !e.replayed)).toHaveLength(1);
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 1000, held: 0, available: 1000 });
  });

  it('one hold key taken 20 times at once holds once and every call returns the first hold', async () => {
    const user = await fundedUser({ purchased: 100 });
    const results = await Promise.all(
      times(20).map(() => sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:same`, amount: 60 }))),
    );
    expect(new Set(results.map((r) => r.hold.id)).size).toBe(1);
    expect(results.filter((r) => !r.entry.replayed)).toHaveLength(1);
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 40, held: 60, available: 40 });
  });

  it('returns the hold exactly as stored, and a replay returns the same', async () => {
    const user = await fundedUser({ subscription: 7, purchased: 100 });
    const first = await sys((tx) =>
      hold(tx, { userId: user.id, key: `job:${user.id}:stored`, amount: 20, reference: 'job:stored' }),
    );
    const [stored] = await sys((tx) =>
      tx.select().from(schema.creditHolds).where(eq(schema.creditHolds.id, first.hold.id)),
    );
    expect(first.hold).toEqual(stored);
    expect(first.hold).toMatchObject({
      status: 'open',
      subscriptionAmount: 7,
      purchasedAmount: 13,
      capturedAmount: null,
      reference: 'job:stored',
    });
    const again = await sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:stored`, amount: 20 }));
    expect(again.hold).toEqual(stored);
    expect(again.entry).toEqual({ ...first.entry, replayed: true });
    const released = await sys((tx) => release(tx, { userId: user.id, holdId: first.hold.id }));
    const entries = await sys((tx) =>
      tx.select().from(schema.creditTransactions).where(eq(schema.creditTransactions.holdId, first.hold.id)),
    );
    expect(entries.map((e) => ({ ...e, replayed: false })).sort((a, b) => a.type.localeCompare(b.type))).toEqual([
      first.entry,
      released,
    ]);
    expect(first.entry.createdAt).toBeInstanceOf(Date);
  });

  it('a hold replay succeeds even when the balance could no longer pay for it', async () => {
    const user = await fundedUser({ purchased: 50 });
    const first = await sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:a`, amount: 50 }));
    const again = await sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:a`, amount: 50 }));
    expect(again.hold.id).toBe(first.hold.id);
    expect(again.entry.replayed).toBe(true);
  });

  it('one setSubscriptionCredits key applied 20 times at once sets the bucket once', async () => {
    const user = await fundedUser({ subscription: 2000 });
    const h = await sys((tx) => hold(tx, { userId: user.id, key: `job:${user.id}:1`, amount: 300 }));
    await sys((tx) => capture(tx, { userId: user.id, holdId: h.hold.id, amount: 300 }));
    const entries = await Promise.all(
      times(20).map(() =>
        sys((tx) =>
          setSubscriptionCredits(tx, {
            userId: user.id,
            key: `period:${user.id}:1`,
            type: 'monthly_allocation',
            amount: 2000,
          }),
        ),
      ),
    );
    expect(new Set(entries.map((e) => e.id)).size).toBe(1);
    expect(entries.find((e) => !e.replayed)!.subscriptionDelta).toBe(300);
    expect(await balanceOf(user.id)).toEqual({ subscription: 2000, purchased: 0, held: 0, available: 2000 });
  });

  it('revokePurchased: one key has one effect, and many revokes never take purchased credits below zero', async () => {
    const user = await fundedUser({ subscription: 100, purchased: 1000 });
    const same = await Promise.all(
      times(20).map(() =>
        sys((tx) => revokePurchased(tx, { userId: user.id, key: `refund:${user.id}:a`, amount: 300 })),
      ),
    );
    expect(new Set(same.map((e) => e.id)).size).toBe(1);
    expect(await balanceOf(user.id)).toMatchObject({ purchased: 700 });
    const many = await Promise.all(
      times(10).map((i) =>
        sys((tx) => revokePurchased(tx, { userId: user.id, key: `refund:${user.id}:${i}`, amount: 300 })),
      ),
    );
    expect(many.reduce((sum, e) => sum + e.purchasedDelta, 0)).toBe(-700);
    expect(await balanceOf(user.id)).toEqual({ subscription: 100, purchased: 0, held: 0, available: 100 });
  });

  it('a key used for one kind of operation cannot be replayed as another, nor by another user', async () => {
    const a = await fundedUser({ purchased: 100 });
    const b = await fundedUser({ purchased: 100 });
    await sys((tx) =>
      grant(tx, { userId: a.id, key: `shared:${a.id}`, type: 'adjustment', bucket: 'purchased', amount: 5 }),
    );
    await expect(sys((tx) => hold(tx, { userId: a.id, key: `shared:${a.id}`, amount: 5 }))).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(
      sys((tx) =>
        grant(tx, { userId: b.id, key: `shared:${a.id}`, type: 'adjustment', bucket: 'purchased', amount: 5 }),
      ),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await balanceOf(a.id)).available).toBe(105);
    expect((await balanceOf(b.id)).available).toBe(100);
  });

  it("capturing or releasing another user's hold is NOT_FOUND and moves nothing", async () => {
    const a = await fundedUser({ purchased: 100 });
    const b = await fundedUser({ purchased: 100 });
    const { hold: h } = await sys((tx) => hold(tx, { userId: a.id, key: `job:${a.id}:x`, amount: 40 }));
    await expect(sys((tx) => capture(tx, { userId: b.id, holdId: h.id, amount: 10 }))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(sys((tx) => release(tx, { userId: b.id, holdId: h.id }))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      withUser(app.deps.db, b.id, (tx) => release(tx, { userId: b.id, holdId: h.id })),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await balanceOf(b.id)).toEqual({ subscription: 0, purchased: 100, held: 0, available: 100 });
    expect(await balanceOf(a.id)).toEqual({ subscription: 0, purchased: 60, held: 40, available: 60 });
    await sys((tx) => release(tx, { userId: a.id, holdId: h.id }));
  });

  it("in a user's scope, another user's balance does not exist: no hold, no grant", async () => {
    const a = await fundedUser({ purchased: 100 });
    const b = await fundedUser({ purchased: 100 });
    await expect(
      withUser(app.deps.db, a.id, (tx) => hold(tx, { userId: b.id, key: `job:${b.id}:by-a`, amount: 10 })),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      withUser(app.deps.db, a.id, (tx) =>
        grant(tx, { userId: b.id, key: `gift:${b.id}:by-a`, type: 'adjustment', bucket: 'purchased', amount: 10 }),
      ),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await balanceOf(b.id)).toEqual({ subscription: 0, purchased: 100, held: 0, available: 100 });
    expect(await countRows('credit_transactions', b.id)).toBe(1);
  });

  it('works inside a user-scoped transaction for the user themself', async () => {
    const user = await fundedUser({ purchased: 100 });
    const { hold: h } = await withUser(app.deps.db, user.id, (tx) =>
      hold(tx, { userId: user.id, key: `job:${user.id}:own`, amount: 30 }),
    );
    await withUser(app.deps.db, user.id, (tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 12 }));
    expect(await withUser(app.deps.db, user.id, (tx) => getBalance(tx, user.id))).toEqual({
      subscription: 0,
      purchased: 88,
      held: 0,
      available: 88,
    });
  });

  it('rejects invalid amounts before touching anything', async () => {
    const user = await fundedUser({ purchased: 100 });
    await expect(sys((tx) => hold(tx, { userId: user.id, key: `bad:${user.id}:1`, amount: 0 }))).rejects.toThrow(
      RangeError,
    );
    await expect(sys((tx) => hold(tx, { userId: user.id, key: `bad:${user.id}:2`, amount: 1.5 }))).rejects.toThrow(
      RangeError,
    );
    await expect(
      sys((tx) =>
        grant(tx, { userId: user.id, key: `bad:${user.id}:3`, type: 'purchase', bucket: 'purchased', amount: -5 }),
      ),
    ).rejects.toThrow(RangeError);
    const { hold: h } = await sys((tx) => hold(tx, { userId: user.id, key: `bad:${user.id}:4`, amount: 10 }));
    await expect(sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 11 }))).rejects.toThrow(RangeError);
    await expect(sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: -1 }))).rejects.toThrow(RangeError);
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 90, held: 10, available: 90 });
    await sys((tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 10 }));
  });
});

describe('two buckets', () => {
  it('spends subscription credits first, then purchased ones', async () => {
    const user = await fundedUser({ subscription: 30, purchased: 100 });
    const first = await sys((tx) => hold(tx, { userId: user.id, key: `b:${user.id}:1`, amount: 20 }));
    expect([first.hold.subscriptionAmount, first.hold.purchasedAmount]).toEqual([20, 0]);
    const second = await sys((tx) => hold(tx, { userId: user.id, key: `b:${user.id}:2`, amount: 25 }));
    expect([second.hold.subscriptionAmount, second.hold.purchasedAmount]).toEqual([10, 15]);
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 85, held: 45, available: 85 });
    // A release gives each bucket back exactly what it gave.
    await sys((tx) => release(tx, { userId: user.id, holdId: second.hold.id }));
    expect(await balanceOf(user.id)).toEqual({ subscription: 10, purchased: 100, held: 20, available: 110 });
    await sys((tx) => capture(tx, { userId: user.id, holdId: first.hold.id, amount: 20 }));
    expect(await balanceOf(user.id)).toEqual({ subscription: 10, purchased: 100, held: 0, available: 110 });
  });

  it('a new period resets subscription credits to the allocation (no rollover) and leaves purchased ones', async () => {
    const user = await fundedUser({ subscription: 2000, purchased: 500 });
    const h = await sys((tx) => hold(tx, { userId: user.id, key: `b:${user.id}:1`, amount: 100 }));
    await sys((tx) => capture(tx, { userId: user.id, holdId: h.hold.id, amount: 100 }));
    expect(await balanceOf(user.id)).toMatchObject({ subscription: 1900, purchased: 500 });
    const renewal = await sys((tx) =>
      setSubscriptionCredits(tx, {
        userId: user.id,
        key: `period:${user.id}:2`,
        type: 'monthly_allocation',
        amount: 2000,
      }),
    );
    expect(renewal.subscriptionDelta).toBe(100);
    expect(await balanceOf(user.id)).toEqual({ subscription: 2000, purchased: 500, held: 0, available: 2500 });
    // An upgrade mid-way sets, it does not add.
    await sys((tx) =>
      setSubscriptionCredits(tx, {
        userId: user.id,
        key: `period:${user.id}:3`,
        type: 'monthly_allocation',
        amount: 10000,
      }),
    );
    expect(await balanceOf(user.id)).toMatchObject({ subscription: 10000, purchased: 500 });
  });

  it('a downgrade zeroes subscription credits and keeps every purchased credit', async () => {
    const user = await fundedUser({ subscription: 2000, purchased: 1000 });
    const entry = await sys((tx) =>
      setSubscriptionCredits(tx, { userId: user.id, key: `down:${user.id}`, type: 'downgrade', amount: 0 }),
    );
    expect(entry).toMatchObject({ type: 'downgrade', subscriptionDelta: -2000, purchasedDelta: 0, balanceAfter: 1000 });
    expect(await balanceOf(user.id)).toEqual({ subscription: 0, purchased: 1000, held: 0, available: 1000 });
  });

  it('records balanceAfter on every entry as the available balance right after it', async () => {
    const user = await fundedUser({ subscription: 50, purchased: 50 });
    const h = await sys((tx) => hold(tx, { userId: user.id, key: `b:${user.id}:after`, amount: 70 }));
    expect(h.entry.balanceAfter).toBe(30);
    const c = await sys((tx) => capture(tx, { userId: user.id, holdId: h.hold.id, amount: 45 }));
    expect(c.balanceAfter).toBe(55);
    expect(await balanceOf(user.id)).toEqual({ subscription: 5, purchased: 50, held: 0, available: 55 });
  });
});
