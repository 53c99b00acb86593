import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JobEvent } from '@pingvas/core';
import { startRedisServer, type RedisServer } from '@pingvas/testkit';
import pino from 'pino';
import { loadApiConfig } from '../../config.js';
import { createAppDeps, closeAppDeps } from '../../deps.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { jobEvents } from './job-events.js';
import { runningCount } from './queue.js';
import { repairIfRedisLost } from './redis-loss.task.js';
import { completeJob } from '../worker/worker.service.js';
import { fundedUser, pngOf, smallParams, uploadResult } from '../../test/factories.js';
import { claim, completeClaimed, jobRow, settleAll } from './generation.test-support.js';

/**
 * Redis keeps nothing on disk: these tests break a private redis-server (FLUSHALL, SIGKILL and
 * start again empty) and check that PostgreSQL's jobs come back into the queue and the running
 * counts, that nothing runs twice, and that a watcher still hears its job's end.
 */

let redis: RedisServer;
let app: TestApp;

beforeAll(async () => {
  redis = await startRedisServer();
  app = await createTestApp({ REDIS_URL: redis.url, GENERATION_RATE_LIMIT: '1000' });
});
afterAll(async () => {
  await app?.close();
  await redis?.stop();
});
afterEach(async () => {
  await redis.start();
  // Checked while leftover jobs are live too: settling first would hide a live job that lost its hold.
  await expectLedgerInvariants(app.database.admin);
  await settleAll(app);
  await expectLedgerInvariants(app.database.admin);
});

/** Follows a job's live events as a WebSocket subscription would; collects them until the end. */
function watch(jobId: string, userId: string, idleResyncMs?: number) {
  const events: JobEvent[] = [];
  const abort = new AbortController();
  const done = (async () => {
    for await (const event of jobEvents(app.deps, userId, jobId, abort.signal, { idleResyncMs })) events.push(event);
  })();
  return { events, done, stop: () => abort.abort() };
}

async function imagesOf(jobId: string): Promise<number> {
  const [row] = await app.database.admin`select count(*)::int as n from images where job_id = ${jobId}`;
  return Number(row!.n);
}

describe('Redis loses its data', () => {
  it('after a FLUSHALL the pending job is queued again, the running one keeps its slot and runs once', async () => {
    expect(await repairIfRedisLost(app.deps)).toBe(true); // first look: the marker did not exist yet
    expect(await repairIfRedisLost(app.deps)).toBe(false);
    const user = await fundedUser(app, 'free', 100); // free: one running job at a time
    const running = await app.callerFor(user).generation.create(smallParams());
    const pending = await app.callerFor(user).generation.create(smallParams());
    const first = (await claim(app))!;
    expect(first.job.id).toBe(running.jobId);

    await app.deps.redis.flushall();
    expect(await app.deps.redis.zcard(app.deps.keys.queue)).toBe(0);
    expect(await runningCount(app.deps, user.id)).toBe(0);

    expect(await repairIfRedisLost(app.deps)).toBe(true);
    // The running count is back, so the free user's second job waits for the first.
    expect(await runningCount(app.deps, user.id)).toBe(1);
    expect(await app.deps.redis.zscore(app.deps.keys.queue, pending.jobId)).not.toBeNull();
    expect(await claim(app)).toBeNull();

    await completeClaimed(app, first);
    const second = (await claim(app))!;
    expect(second.job.id).toBe(pending.jobId);
    expect(await claim(app)).toBeNull(); // the first job is not handed out again
    await completeClaimed(app, second);
    for (const jobId of [running.jobId, pending.jobId]) {
      expect(await jobRow(app, jobId)).toMatchObject({ status: 'completed', retry_count: 0 });
      expect(await imagesOf(jobId)).toBe(1);
    }
  });

  it('after a restart, a watcher of a job that ended while Redis was down gets the end; a pending job runs', async () => {
    const user = await fundedUser(app, 'pro', 100);
    const caller = app.callerFor(user);
    const { jobId } = await caller.generation.create(smallParams());
    const waiting = await caller.generation.create(smallParams());
    const claimed = (await claim(app))!;
    expect(claimed.job.id).toBe(jobId);
    // No idle re-read within the test: only the subscriber's reconnect can bring the end.
    const watcher = watch(jobId, user.id, 600_000);
    await vi.waitFor(() => expect(watcher.events[0]).toMatchObject({ type: 'snapshot', status: 'in_progress' }));

    await redis.kill();
    // The run finishes while Redis is down: the completion commits in PostgreSQL, but the
    // Redis steps after it (free the slot, publish the event) fail.
    await expect(completeClaimed(app, claimed)).rejects.toThrow();
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'completed' });
    await redis.start();

    // The subscriber comes back, subscribes again and the watcher re-reads: it sees the end.
    await vi.waitFor(() => expect(watcher.events.at(-1)).toMatchObject({ type: 'completed', jobId }), {
      timeout: 15_000,
    });
    await watcher.done;
    expect(watcher.events.filter((e) => e.type === 'completed')).toHaveLength(1);

    expect(await repairIfRedisLost(app.deps)).toBe(true);
    expect(await runningCount(app.deps, user.id)).toBe(0);
    const next = (await claim(app))!;
    expect(next.job.id).toBe(waiting.jobId);
    expect(await claim(app)).toBeNull();
    await completeClaimed(app, next);
    expect(await imagesOf(jobId)).toBe(1);
  });

  it("a watcher whose job's end was never published (the publishing process died) still gets it by re-reading", async () => {
    const user = await fundedUser(app, 'pro', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    const watcher = watch(jobId, user.id, 300);
    await vi.waitFor(() => expect(watcher.events[0]).toMatchObject({ type: 'snapshot', status: 'in_progress' }));

    // Another replica completes the job but its PUBLISH reaches a different Redis: the event is
    // lost exactly as if that replica had died between its commit and its PUBLISH.
    const elsewhere = await startRedisServer();
    const replica = createAppDeps(
      loadApiConfig({ ...envOf(app), REDIS_URL: elsewhere.url }),
      pino({ level: 'silent' }),
    );
    try {
      await uploadResult(app, claimed);
      await completeJob(replica, {
        jobId,
        leaseToken: claimed.lease.token,
        engineSeconds: 2,
        images: [{ width: 512, height: 512, bytes: pngOf(512, 512).length }],
        engine: 'reference',
      });
    } finally {
      await closeAppDeps(replica);
      await elsewhere.stop();
    }
    await vi.waitFor(() => expect(watcher.events.at(-1)).toMatchObject({ type: 'completed', jobId }), {
      timeout: 10_000,
    });
    await watcher.done;
  });
});

/** The test app's environment as variables, for a second process-like set of deps. */
function envOf(testApp: TestApp): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: testApp.database.runtimeUrl,
    REDIS_PREFIX: testApp.redis.prefix,
    S3_ENDPOINT: testApp.s3.endpoint,
    S3_BUCKET: testApp.s3.bucket,
    LOG_LEVEL: 'silent',
  };
}
