import { eq, inArray } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import type { ClaimedJob, GenerationParams } from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { grant, release } from '../credits/ledger.js';

/** sd15, 512², 20 steps: an estimate (and hold) of 10 credits. */
export function smallParams(overrides: Partial<GenerationParams> = {}): GenerationParams {
  return { prompt: 'a lighthouse at dusk', model: 'sd15', width: 512, height: 512, steps: 20, cfgScale: 7, ...overrides };
}
export const SMALL_ESTIMATE = 10;

export async function fund(app: TestApp, user: SessionUser, amount: number): Promise<void> {
  await withSystem(app.deps.db, (tx) =>
    grant(tx, { userId: user.id, key: `test-grant:${user.id}:${amount}:${Math.random()}`, type: 'purchase', bucket: 'purchased', amount }));
}

export async function fundedUser(app: TestApp, tier: SessionUser['tier'] = 'free', credits = 1000): Promise<SessionUser> {
  const user = await app.createUser({ tier });
  await fund(app, user, credits);
  return user;
}

export async function balanceOf(app: TestApp, userId: string): Promise<{ available: number; held: number }> {
  const [row] = await app.database.admin`
    select subscription_credits + purchased_credits as available, held_credits as held from credit_balances where user_id = ${userId}`;
  return { available: Number(row!.available), held: Number(row!.held) };
}

export async function jobRow(app: TestApp, jobId: string) {
  const [row] = await app.database.admin`select * from generation_jobs where id = ${jobId}`;
  return row!;
}

/** What a GPU worker does before `complete`: PUT both files to the presigned URLs. */
export async function uploadResult(claimed: ClaimedJob): Promise<void> {
  const put = async (url: string, type: string) => {
    const response = await fetch(url, { method: 'PUT', body: new Uint8Array([1, 2, 3, 4]), headers: { 'content-type': type } });
    if (!response.ok) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  };
  await Promise.all([put(claimed.upload.originalUrl, 'image/png'), put(claimed.upload.thumbUrl, 'image/webp')]);
}

export async function completeClaimed(app: TestApp, claimed: ClaimedJob, engineSeconds = 4.2) {
  await uploadResult(claimed);
  return app.workerCaller().complete({
    jobId: claimed.job.id, leaseToken: claimed.lease.token, engineSeconds,
    image: { width: claimed.job.params.width, height: claimed.job.params.height, bytes: 4 }, engine: 'reference',
  });
}

export async function claim(app: TestApp, workerId = 'test-worker'): Promise<ClaimedJob | null> {
  return app.workerCaller().claim({ workerId, engineVersion: 'test', waitMs: 0 });
}

/** Makes a leased run look abandoned: its lease ran out a minute ago. */
export async function expireLease(app: TestApp, jobId: string): Promise<void> {
  await app.database.admin`update generation_jobs set lease_expires_at = now() - interval '1 minute' where id = ${jobId}`;
}

/**
 * Ends every live job the way a user cancel would (hold released), and empties the queue
 * keys: tests in one file then start from an idle queue and the ledger stays consistent.
 */
export async function settleAll(app: TestApp): Promise<void> {
  const jobs = schema.generationJobs;
  const live = await withSystem(app.deps.db, (tx) =>
    tx.select().from(jobs).where(inArray(jobs.status, ['pending', 'in_progress'])));
  for (const job of live) {
    await withSystem(app.deps.db, async (tx) => {
      await release(tx, { userId: job.userId, holdId: job.holdId! });
      await tx.update(jobs).set({ status: 'cancelled', chargedCredits: 0 }).where(eq(jobs.id, job.id));
    });
  }
  const { keys } = app.deps;
  await app.deps.redis.del(
    keys.queue, keys.queueOwners, keys.queueLimits, keys.queueClaiming, keys.queueModels, keys.queueSkipped, keys.runningJobs, keys.runningCounts,
  );
}

/**
 * One test app per file for the queue and worker tests: created before the file, closed after
 * it, and after every test the open jobs are settled and the ledger invariants checked.
 */
export function useGenerationTestApp(receive: (app: TestApp) => void): void {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ GENERATION_RATE_LIMIT: '1000' });
    receive(app);
  });
  afterAll(async () => { await app.close(); });
  afterEach(async () => {
    await settleAll(app);
    await expectLedgerInvariants(app.database.admin);
  });
}
