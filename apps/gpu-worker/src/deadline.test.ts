import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { chargeCredits, estimateCredits, jobDeadline, type DeadlinePolicy } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../api/src/test/harness.js';
import { expectLedgerInvariants } from '../../api/src/test/invariants.js';
import { buildServer } from '../../api/src/server.js';
import { grant, getBalance } from '../../api/src/modules/credits/ledger.js';
import { reconcileOnce } from '../../api/src/modules/generation/reconciler.task.js';
import type { SessionUser } from '../../api/src/context.js';
import { referenceEngine } from './test/reference-engine.js';
import { spawnWorker, type WorkerProcess } from './test/worker-process.js';

/**
 * Per-job deadlines end to end: the real API (its claim sets the deadline from the job's hold),
 * a worker process on the reference engine, PostgreSQL, Redis and S3. Time is compressed: one
 * held credit buys 0.5 s here instead of 1 s, with a 1 s load and a 2 s upload allowance, so a
 * run's length is set by its own size rather than by a fixed limit, and the test stays short.
 */

const POLICY: DeadlinePolicy = {
  secondsPerCredit: 0.5,
  loadAllowanceSeconds: 1,
  uploadAllowanceSeconds: 2,
  ceilingSeconds: 120,
};
const CREDITS = 1000;
/** A fixed limit as every job had before (300 s), on this test's time scale. */
const OLD_FIXED_LIMIT_SECONDS = 3;

let app: TestApp;
let server: Awaited<ReturnType<typeof buildServer>>;
let apiUrl: string;
const children: WorkerProcess[] = [];

beforeAll(async () => {
  referenceEngine();
  app = await createTestApp({
    LEASE_SECONDS: '3',
    GENERATION_RATE_LIMIT: '1000',
    JOB_SECONDS_PER_CREDIT: String(POLICY.secondsPerCredit),
    JOB_LOAD_ALLOWANCE_SECONDS: String(POLICY.loadAllowanceSeconds),
    JOB_UPLOAD_ALLOWANCE_SECONDS: String(POLICY.uploadAllowanceSeconds),
    JOB_MAX_RUN_SECONDS: String(POLICY.ceilingSeconds),
  });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const worker of children.splice(0)) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  await expectLedgerInvariants(app.database.admin);
});

afterAll(async () => {
  if (server) {
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
  }
  await app?.close();
});

function worker(env: Record<string, string>): WorkerProcess {
  const child = spawnWorker({
    API_URL: apiUrl,
    WORKER_TOKEN: app.config.WORKER_TOKEN,
    WORKER_ID: `deadline-${randomUUID()}`,
    WORKER_CLAIM_WAIT_MS: '1000',
    ...env,
  });
  children.push(child);
  return child;
}

async function payingUser(): Promise<SessionUser> {
  const user = await app.createUser({ tier: 'pro' });
  await withSystem(app.deps.db, (tx) =>
    grant(tx, { userId: user.id, key: `test:${randomUUID()}`, type: 'purchase', bucket: 'purchased', amount: CREDITS }),
  );
  return user;
}

interface Row {
  status: string;
  retry_count: number;
  failure_code: string | null;
  engine_seconds: number | null;
  estimated_credits: number;
  charged_credits: number | null;
}

async function row(jobId: string): Promise<Row> {
  const [found] = await app.database.admin<Row[]>`
    select status, retry_count, failure_code, engine_seconds, estimated_credits, charged_credits from generation_jobs where id = ${jobId}`;
  return found!;
}

describe('per-job deadlines, worker and API together', () => {
  it('completes a job that runs longer than a fixed limit would allow but inside its own deadline, while the reconciler runs', async () => {
    const user = await payingUser();
    // 96 steps at 256×256: 12 credits → 7 s of engine time; the engine needs about 4 s.
    const params = {
      prompt: 'a long lighthouse night',
      model: 'sd15' as const,
      width: 256,
      height: 256,
      steps: 96,
      cfgScale: 7,
      seed: 1,
    };
    const held = estimateCredits(params);
    expect(jobDeadline(held, POLICY).engineSeconds).toBeGreaterThan(2 * OLD_FIXED_LIMIT_SECONDS);
    worker({ REFENGINE_STEP_MS: '40' });
    const { jobId } = await app.callerFor(user).generation.create(params);

    // The reconciler looks at the heartbeating run over and over: it must leave it alone.
    await expect
      .poll(
        async () => {
          await reconcileOnce(app.deps);
          return (await row(jobId)).status;
        },
        { timeout: 60_000, interval: 300 },
      )
      .toBe('completed');
    const done = await row(jobId);
    expect(done).toMatchObject({ retry_count: 0, failure_code: null });
    expect(done.engine_seconds).toBeGreaterThan(OLD_FIXED_LIMIT_SECONDS);
    expect(done.charged_credits).toBe(chargeCredits(done.engine_seconds!, held));
    expect(await withSystem(app.deps.db, (tx) => getBalance(tx, user.id))).toMatchObject({
      available: CREDITS - done.charged_credits!,
      held: 0,
    });
  });

  it('kills a job past its deadline, retries it, and after the last attempt fails it with the whole hold released', async () => {
    const user = await payingUser();
    // 32 steps: 4 credits → 3 s of engine time; at 200 ms a step the engine would need 6.4 s.
    const params = {
      prompt: 'a slow harbour',
      model: 'sd15' as const,
      width: 256,
      height: 256,
      steps: 32,
      cfgScale: 7,
      seed: 2,
    };
    const { engineSeconds } = jobDeadline(estimateCredits(params), POLICY);
    const slow = worker({ REFENGINE_STEP_MS: '200' });
    const { jobId } = await app.callerFor(user).generation.create(params);

    await expect
      .poll(
        async () => {
          await reconcileOnce(app.deps);
          return (await row(jobId)).status;
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe('failed');
    expect(await row(jobId)).toMatchObject({ retry_count: 3, failure_code: 'TIMEOUT', charged_credits: 0 });
    expect(await withSystem(app.deps.db, (tx) => getBalance(tx, user.id))).toMatchObject({
      available: CREDITS,
      held: 0,
    });
    const timeouts = slow.logs.filter((l) => l.msg === 'engine failed' && l.jobId === jobId && l.code === 'TIMEOUT');
    expect(timeouts).toHaveLength(3);
    // Each attempt ran at least to the job's own engine deadline and was stopped before the run
    // could have finished by itself (32 steps × 200 ms); no fixed limit would fall in between.
    for (const attempt of timeouts) {
      expect(attempt.engineSeconds as number).toBeGreaterThanOrEqual(engineSeconds - 0.05);
      expect(attempt.engineSeconds as number).toBeLessThan(params.steps * 0.2);
    }
  });
});
