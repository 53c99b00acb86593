import { eq, inArray } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import type { ClaimedJob, JobEvent } from '@pingvas/core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { release } from '../credits/ledger.js';
import { deliveredSize, pngOf, uploadResult } from '../../test/factories.js';
import { jobEvents } from './job-events.js';

export async function balanceOf(app: TestApp, userId: string): Promise<{ available: number; held: number }> {
  const [row] = await app.database.admin`
    select subscription_credits + purchased_credits as available, held_credits as held from credit_balances where user_id = ${userId}`;
  return { available: Number(row!.available), held: Number(row!.held) };
}

export async function jobRow(app: TestApp, jobId: string) {
  const [row] = await app.database.admin`select * from generation_jobs where id = ${jobId}`;
  return row!;
}

export async function completeClaimed(app: TestApp, claimed: ClaimedJob, engineSeconds = 4.2) {
  await uploadResult(app, claimed);
  return reportComplete(app, claimed, engineSeconds);
}

/** `worker.complete` alone, for what `uploadResult` stored: `count` images of the delivered size. */
export async function reportComplete(app: TestApp, claimed: ClaimedJob, engineSeconds = 4.2) {
  const { width, height } = deliveredSize(claimed);
  const image = { width, height, bytes: pngOf(width, height).length };
  return app.workerCaller().complete({
    jobId: claimed.job.id,
    leaseToken: claimed.lease.token,
    engineSeconds,
    images: Array.from({ length: claimed.job.count }, () => image),
    engine: 'reference',
  });
}

export async function claim(app: TestApp, workerId = 'test-worker'): Promise<ClaimedJob | null> {
  return app.workerCaller().claim({ workerId, engineVersion: 'test', waitMs: 0 });
}

/** Follows a job's live events in process (`jobEvents`), in the background; `next` waits for the first event of a type. */
export function followJob(app: TestApp, userId: string, jobId: string) {
  const events: JobEvent[] = [];
  const abort = new AbortController();
  const waiter: { notify: (() => void) | null } = { notify: null };
  const done = (async () => {
    for await (const event of jobEvents(app.deps, userId, jobId, abort.signal)) {
      events.push(event);
      waiter.notify?.();
    }
  })();
  return {
    events,
    async next(type: JobEvent['type']): Promise<JobEvent> {
      for (;;) {
        const found = events.find((event) => event.type === type);
        if (found) return found;
        await new Promise<void>((resolve) => {
          waiter.notify = resolve;
          setTimeout(resolve, 100);
        });
      }
    },
    async stop() {
      abort.abort();
      await done;
    },
  };
}

/** Makes a leased run look abandoned: its lease ran out a minute ago. */
export async function expireLease(app: TestApp, jobId: string): Promise<void> {
  await app.database
    .admin`update generation_jobs set lease_expires_at = now() - interval '1 minute' where id = ${jobId}`;
}

/**
 * Ends every live job the way a user cancel would (hold released), and empties the queue
 * keys: tests in one file then start from an idle queue and the ledger stays consistent.
 */
export async function settleAll(app: TestApp): Promise<void> {
  const jobs = schema.generationJobs;
  const live = await withSystem(app.deps.db, (tx) =>
    tx
      .select()
      .from(jobs)
      .where(inArray(jobs.status, ['pending', 'in_progress'])),
  );
  for (const job of live) {
    await withSystem(app.deps.db, async (tx) => {
      await release(tx, { userId: job.userId, holdId: job.holdId! });
      await tx.update(jobs).set({ status: 'cancelled', chargedCredits: 0 }).where(eq(jobs.id, job.id));
    });
  }
  const { keys } = app.deps;
  await app.deps.redis.del(
    keys.queue,
    keys.queueOwners,
    keys.queueLimits,
    keys.queueClaiming,
    keys.queueModels,
    keys.queueSkipped,
    keys.runningJobs,
    keys.runningCounts,
  );
}

/**
 * One test app per file for the queue and worker tests: created before the file, closed after
 * it. After every test the ledger invariants are checked first — while leftover jobs are still
 * live, so a live job that lost its hold is caught — then the open jobs are settled and the
 * invariants checked again.
 */
export function useGenerationTestApp(receive: (app: TestApp) => void): void {
  let app: TestApp;
  beforeAll(async () => {
    app = await createTestApp({ GENERATION_RATE_LIMIT: '1000' });
    receive(app);
  });
  afterAll(async () => {
    await app.close();
  });
  afterEach(async () => {
    await expectLedgerInvariants(app.database.admin);
    await settleAll(app);
    await expectLedgerInvariants(app.database.admin);
  });
}
