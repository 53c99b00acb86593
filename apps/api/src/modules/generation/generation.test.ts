import { describe, expect, it } from 'vitest';
import { PLANS } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { fundedUser, SMALL_ESTIMATE, smallParams } from '../../test/factories.js';
import { balanceOf, claim, jobRow, settleAll, useGenerationTestApp } from './generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

async function countRows(
  table: 'generation_jobs' | 'credit_holds' | 'credit_transactions',
  userId: string,
): Promise<number> {
  const [row] = await app.database
    .admin`select count(*)::int as count from ${app.database.admin(table)} where user_id = ${userId}`;
  return row!.count as number;
}

describe('generation.create', () => {
  it('holds the estimate, resolves seed and sampler, and queues the job', async () => {
    const user = await fundedUser(app, 'free', 100);
    const result = await app.callerFor(user).generation.create(smallParams());
    expect(result).toMatchObject({
      status: 'pending',
      estimatedCredits: SMALL_ESTIMATE,
      queuePosition: 0,
      estimatedWaitSeconds: 0,
    });
    const row = await jobRow(app, result.jobId);
    expect(row).toMatchObject({
      status: 'pending',
      sampler: 'euler_a',
      estimated_credits: SMALL_ESTIMATE,
      priority: 0,
    });
    expect(Number(row.seed)).toBeGreaterThanOrEqual(0);
    expect(Number(row.seed)).toBeLessThanOrEqual(2 ** 32 - 1);
    const [h] = await app.database.admin`select * from credit_holds where id = ${row.hold_id}`;
    expect(h).toMatchObject({ idempotency_key: `hold:job:${result.jobId}`, status: 'open' });
    expect(await balanceOf(app, user.id)).toEqual({ available: 90, held: SMALL_ESTIMATE });
  });

  it('refuses without enough credits: PAYMENT_REQUIRED with balance and need, nothing written', async () => {
    const user = await fundedUser(app, 'free', 5);
    const error = await app
      .callerFor(user)
      .generation.create(smallParams())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'PAYMENT_REQUIRED',
      cause: { details: { balance: 5, needed: SMALL_ESTIMATE } },
    });
    expect(await countRows('generation_jobs', user.id)).toBe(0);
    expect(await countRows('credit_holds', user.id)).toBe(0);
    expect(await app.deps.redis.zcard(app.deps.keys.queue)).toBe(0);
  });

  it('refuses sizes beyond the plan, and bad input, with clear errors', async () => {
    const user = await fundedUser(app, 'free', 1000);
    await expect(
      app.callerFor(user).generation.create(smallParams({ model: 'sdxl', width: 1536, height: 1536 })),
    ).rejects.toMatchObject({
      code: 'FORBIDDEN',
      cause: { code: 'PLAN_LIMIT', details: { limit: 'maxPixels' } },
    });
    await expect(app.callerFor(user).generation.create(smallParams({ width: 500 }))).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(app.callerFor(user).generation.create(smallParams({ prompt: '  ' }))).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(app.callerFor(null).generation.create(smallParams())).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await countRows('generation_jobs', user.id)).toBe(0);
  });

  it('caps the jobs waiting per user at the plan limit', async () => {
    const user = await fundedUser(app, 'free', 1000);
    const cap = PLANS.free.maxPendingJobs;
    const results = await Promise.allSettled(
      Array.from({ length: cap + 5 }, () => app.callerFor(user).generation.create(smallParams())),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(cap);
    expect(
      results
        .filter((r) => r.status === 'rejected')
        .every((r) => (r as PromiseRejectedResult).reason.cause.code === 'PLAN_LIMIT'),
    ).toBe(true);
    // A started job no longer waits: room for one more.
    await claim(app);
    await app.callerFor(user).generation.create(smallParams());
  });

  it('200 parallel creates with credits for 50: exactly 50 accepted', async () => {
    const user = await fundedUser(app, 'pro', 50 * SMALL_ESTIMATE);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, () => app.callerFor(user).generation.create(smallParams())),
    );
    const accepted = results.filter((r) => r.status === 'fulfilled');
    expect(accepted).toHaveLength(50);
    for (const r of results) if (r.status === 'rejected') expect(r.reason.code).toBe('PAYMENT_REQUIRED');
    expect(await countRows('generation_jobs', user.id)).toBe(50);
    expect(await balanceOf(app, user.id)).toEqual({ available: 0, held: 50 * SMALL_ESTIMATE });
    expect(await app.deps.redis.zcard(app.deps.keys.queue)).toBe(50);
  });
});

describe('create rate limit', () => {
  it('answers TOO_MANY_REQUESTS with retryAfterSeconds past the per-user limit', async () => {
    const limited = await createTestApp({ GENERATION_RATE_LIMIT: '3', GENERATION_RATE_WINDOW_SECONDS: '60' });
    try {
      const user = await fundedUser(limited, 'pro', 1000);
      for (let i = 0; i < 3; i += 1) await limited.callerFor(user).generation.create(smallParams());
      const error = await limited
        .callerFor(user)
        .generation.create(smallParams())
        .catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'TOO_MANY_REQUESTS',
        cause: { details: { retryAfterSeconds: expect.any(Number) } },
      });
      // Another user has their own budget.
      const other = await fundedUser(limited, 'pro', 100);
      await limited.callerFor(other).generation.create(smallParams());
      await settleAll(limited);
      await expectLedgerInvariants(limited.database.admin);
    } finally {
      await limited.close();
    }
  });
});

describe('generation.get and generation.list', () => {
  it("shows only the user's own jobs", async () => {
    const owner = await fundedUser(app);
    const stranger = await fundedUser(app);
    const { jobId } = await app.callerFor(owner).generation.create(smallParams());
    expect(await app.callerFor(owner).generation.get({ jobId })).toMatchObject({
      id: jobId,
      status: 'pending',
      queuePosition: 0,
    });
    await expect(app.callerFor(stranger).generation.get({ jobId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await app.callerFor(stranger).generation.list()).items).toEqual([]);
    await expect(app.callerFor(stranger).generation.cancel({ jobId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('lists newest first with an opaque cursor, filtered by status', async () => {
    const user = await fundedUser(app, 'pro', 1000);
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push((await app.callerFor(user).generation.create(smallParams())).jobId);
    await app.callerFor(user).generation.cancel({ jobId: ids[2]! });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await app.callerFor(user).generation.list({ limit: 3, cursor });
      seen.push(...page.items.map((j) => j.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const cancelled = await app.callerFor(user).generation.list({ limit: 10, status: 'cancelled' });
    expect(cancelled.items.map((j) => j.id)).toEqual([ids[2]]);
    await expect(app.callerFor(user).generation.list({ limit: 3, cursor: 'nonsense' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});

describe('generation.cancel', () => {
  it('cancels a pending job at once: hold released, out of the queue', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    expect(await app.callerFor(user).generation.cancel({ jobId })).toEqual({
      jobId,
      status: 'cancelled',
      cancelRequested: false,
      refunded: SMALL_ESTIMATE,
    });
    expect(await balanceOf(app, user.id)).toEqual({ available: 100, held: 0 });
    expect(await claim(app)).toBeNull();
    // Idempotent.
    expect((await app.callerFor(user).generation.cancel({ jobId })).status).toBe('cancelled');
  });

  it('cancel of a pending job racing a claim ends exactly one way, credits right', async () => {
    for (let round = 0; round < 10; round += 1) {
      const user = await fundedUser(app, 'free', 100);
      const { jobId } = await app.callerFor(user).generation.create(smallParams());
      const [cancelled, claimed] = await Promise.all([app.callerFor(user).generation.cancel({ jobId }), claim(app)]);
      const row = await jobRow(app, jobId);
      if (claimed) {
        // The claim won: the job runs, the cancel became a request the worker will see.
        expect(claimed.job.id).toBe(jobId);
        expect(cancelled).toMatchObject({ status: 'in_progress', cancelRequested: true });
        expect(row).toMatchObject({ status: 'in_progress', cancel_requested: true });
        expect(await balanceOf(app, user.id)).toEqual({ available: 90, held: SMALL_ESTIMATE });
      } else {
        expect(cancelled).toMatchObject({ status: 'cancelled' });
        expect(row.status).toBe('cancelled');
        expect(await balanceOf(app, user.id)).toEqual({ available: 100, held: 0 });
        expect(await app.deps.redis.hlen(app.deps.keys.runningJobs)).toBe(0);
      }
      expect(await app.deps.redis.zcard(app.deps.keys.queue)).toBe(0);
      await expectLedgerInvariants(app.database.admin);
      await settleAll(app);
    }
  });

  it('refuses to cancel a finished job', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    await app.workerCaller().fail({ jobId, leaseToken: claimed.lease.token, code: 'CRASH', message: 'x' });
    await app.database.admin`update generation_jobs set retry_count = 2 where id = ${jobId}`;
    const again = (await claim(app))!;
    await app.workerCaller().fail({ jobId, leaseToken: again.lease.token, code: 'CRASH', message: 'x' });
    await expect(app.callerFor(user).generation.cancel({ jobId })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
