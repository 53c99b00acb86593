import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { withSystem } from '@pingvas/db';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { capture, grant, hold } from './ledger.js';

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

const params = { prompt: 'a lighthouse', model: 'sdxl' as const, width: 1024, height: 1024, steps: 30, cfgScale: 7 };

async function trpcError(promise: Promise<unknown>): Promise<TRPCError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TRPCError);
  return error as TRPCError;
}

/** Every page, following nextCursor to the end. */
async function allPages(user: Awaited<ReturnType<TestApp['createUser']>>, limit: number) {
  const caller = app.callerFor(user);
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await caller.credits.transactions({ cursor, limit });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    ids.push(...page.items.map((i) => i.id));
    pages += 1;
    if (!page.nextCursor) return { ids, pages };
    expect(page.items).toHaveLength(limit);
    cursor = page.nextCursor;
  }
}

describe('credits.balance', () => {
  it('needs a session', async () => {
    expect((await trpcError(app.callerFor(null).credits.balance())).code).toBe('UNAUTHORIZED');
  });

  it('shows the buckets and what is held', async () => {
    const user = await app.createUser();
    await withSystem(app.deps.db, async (tx) => {
      await grant(tx, {
        userId: user.id,
        key: `bal:${user.id}:s`,
        type: 'monthly_allocation',
        bucket: 'subscription',
        amount: 20,
      });
      await grant(tx, { userId: user.id, key: `bal:${user.id}:p`, type: 'purchase', bucket: 'purchased', amount: 100 });
      await hold(tx, { userId: user.id, key: `bal:${user.id}:h`, amount: 30 });
    });
    expect(await app.callerFor(user).credits.balance()).toEqual({
      available: 90,
      subscription: 0,
      purchased: 90,
      held: 30,
    });
  });
});

describe('credits.transactions', () => {
  it('pages through entries that share one timestamp without gaps or repeats', async () => {
    const user = await app.createUser();
    const other = await app.createUser();
    // One database transaction: every entry gets the same created_at (now()).
    await withSystem(app.deps.db, async (tx) => {
      for (let i = 0; i < 23; i++) {
        await grant(tx, {
          userId: user.id,
          key: `page:${user.id}:${i}`,
          type: 'adjustment',
          bucket: 'purchased',
          amount: i + 1,
        });
      }
      await grant(tx, {
        userId: other.id,
        key: `page:${other.id}`,
        type: 'adjustment',
        bucket: 'purchased',
        amount: 5,
      });
    });
    await withSystem(app.deps.db, (tx) =>
      grant(tx, { userId: user.id, key: `page:${user.id}:late`, type: 'purchase', bucket: 'purchased', amount: 1000 }),
    );
    const expected = (
      await app.database.admin`
      select id from credit_transactions where user_id = ${user.id} order by created_at desc, id desc`
    ).map((r) => r.id as string);
    expect(expected).toHaveLength(24);
    for (const limit of [1, 4, 7, 23, 24, 100]) {
      const { ids, pages } = await allPages(user, limit);
      expect(ids, `limit ${limit}`).toEqual(expected);
      expect(pages).toBe(Math.max(1, Math.ceil(24 / limit)));
    }
  });

  it('shows each entry with its spendable change, newest first', async () => {
    const user = await app.createUser();
    await withSystem(app.deps.db, (tx) =>
      grant(tx, {
        userId: user.id,
        key: `show:${user.id}`,
        type: 'purchase',
        bucket: 'purchased',
        amount: 100,
        reference: 'order:1',
        description: '1,000-credit pack',
      }),
    );
    const { hold: h } = await withSystem(app.deps.db, (tx) =>
      hold(tx, { userId: user.id, key: `show:${user.id}:job`, amount: 90, reference: 'job:1' }),
    );
    await withSystem(app.deps.db, (tx) => capture(tx, { userId: user.id, holdId: h.id, amount: 45 }));
    const page = await app.callerFor(user).credits.transactions({});
    expect(page.nextCursor).toBeNull();
    expect(
      page.items.map(({ type, amount, heldDelta, balanceAfter, reference }) => ({
        type,
        amount,
        heldDelta,
        balanceAfter,
        reference,
      })),
    ).toEqual([
      { type: 'capture', amount: 45, heldDelta: -90, balanceAfter: 55, reference: 'job:1' },
      { type: 'hold', amount: -90, heldDelta: 90, balanceAfter: 10, reference: 'job:1' },
      { type: 'purchase', amount: 100, heldDelta: 0, balanceAfter: 100, reference: 'order:1' },
    ]);
    expect(page.items[2]).toMatchObject({
      description: '1,000-credit pack',
      createdAt: expect.any(Date),
      id: expect.any(String),
    });
  });

  it('defaults to 20 per page and allows up to 100', async () => {
    const user = await app.createUser();
    await withSystem(app.deps.db, async (tx) => {
      for (let i = 0; i < 105; i++)
        await grant(tx, {
          userId: user.id,
          key: `lim:${user.id}:${i}`,
          type: 'adjustment',
          bucket: 'purchased',
          amount: 1,
        });
    });
    const caller = app.callerFor(user);
    expect((await caller.credits.transactions({})).items).toHaveLength(20);
    const big = await caller.credits.transactions({ limit: 100 });
    expect(big.items).toHaveLength(100);
    expect((await caller.credits.transactions({ limit: 100, cursor: big.nextCursor! })).items).toHaveLength(5);
  });

  it.each([
    [0, 'limit must be at least 1'],
    [101, 'limit must be at most 100'],
    [2.5, 'limit must be a whole number'],
  ])('refuses limit %s: "%s"', async (limit, message) => {
    const user = await app.createUser();
    const error = await trpcError(app.callerFor(user).credits.transactions({ limit }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toContain(message);
  });

  it.each([
    ['not base64 at all', '!!!'],
    ['base64 of junk', Buffer.from('hello').toString('base64url')],
    ['a bad uuid', Buffer.from('2026-11-26T10:00:00.000000Z|nope').toString('base64url')],
    [
      'an impossible date',
      Buffer.from('2026-02-30T10:00:00.000000Z|3f1b7a52-8c1e-4d7a-9b0a-2e5c6d7f8a90').toString('base64url'),
    ],
    [
      'a millisecond time',
      Buffer.from('2026-11-26T10:00:00.000Z|3f1b7a52-8c1e-4d7a-9b0a-2e5c6d7f8a90').toString('base64url'),
    ],
    [
      'extra parts',
      Buffer.from('2026-11-26T10:00:00.000000Z|3f1b7a52-8c1e-4d7a-9b0a-2e5c6d7f8a90|x').toString('base64url'),
    ],
  ])('refuses a malformed cursor (%s) with BAD_REQUEST', async (_, cursor) => {
    const user = await app.createUser();
    const error = await trpcError(app.callerFor(user).credits.transactions({ cursor }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toBe('The page cursor is malformed; start again from the first page.');
  });

  it("a cursor from another user's history shows nothing of theirs", async () => {
    const a = await app.createUser();
    const b = await app.createUser();
    await withSystem(app.deps.db, async (tx) => {
      for (let i = 0; i < 3; i++)
        await grant(tx, { userId: a.id, key: `x:${a.id}:${i}`, type: 'adjustment', bucket: 'purchased', amount: 1 });
    });
    const first = await app.callerFor(a).credits.transactions({ limit: 1 });
    const page = await app.callerFor(b).credits.transactions({ cursor: first.nextCursor! });
    expect(page).toEqual({ items: [], nextCursor: null });
  });

  it('needs a session', async () => {
    expect((await trpcError(app.callerFor(null).credits.transactions({}))).code).toBe('UNAUTHORIZED');
  });
});

describe('credits.estimate', () => {
  it('prices a job for anyone, signed in or not', async () => {
    expect(await app.callerFor(null).credits.estimate(params)).toEqual({ credits: 90 });
    expect(
      await app.callerFor(null).credits.estimate({ ...params, model: 'sd15', width: 512, height: 512, steps: 20 }),
    ).toEqual({ credits: 10 });
  });

  it('tells a signed-in user whether their balance covers it', async () => {
    const user = await app.createUser();
    await withSystem(app.deps.db, (tx) =>
      grant(tx, { userId: user.id, key: `est:${user.id}`, type: 'purchase', bucket: 'purchased', amount: 89 }),
    );
    expect(await app.callerFor(user).credits.estimate(params)).toEqual({ credits: 90, balance: 89, enough: false });
    await withSystem(app.deps.db, (tx) =>
      grant(tx, { userId: user.id, key: `est:${user.id}:2`, type: 'adjustment', bucket: 'subscription', amount: 1 }),
    );
    expect(await app.callerFor(user).credits.estimate(params)).toEqual({ credits: 90, balance: 90, enough: true });
  });

  it('validates with the same schema as generation.create, naming the bad field', async () => {
    const error = await trpcError(app.callerFor(null).credits.estimate({ ...params, width: 1000 }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toContain('width must be a multiple of 64');
  });
});
