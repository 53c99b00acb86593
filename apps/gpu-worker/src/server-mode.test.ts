import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { createTestApp, type TestApp } from '../../api/src/test/harness.js';
import { expectLedgerInvariants } from '../../api/src/test/invariants.js';
import { buildServer } from '../../api/src/server.js';
import { grant } from '../../api/src/modules/credits/ledger.js';
import type { SessionUser } from '../../api/src/context.js';
import { createWorkerApi } from './api-client.js';
import { REFERENCE_ENGINE_BIN, REFERENCE_MODEL_FILE, REFERENCE_SERVER_BIN, type ModelRegistry } from './config.js';
import { CliEngine } from './engines/cli-engine.js';
import { ServerEngine } from './engines/server-engine.js';
import { groupExists, processesMentioning, referenceEngine } from './test/reference-engine.js';
import { spawnWorker, type WorkerProcess } from './test/worker-process.js';
import { Worker, type JobRecord } from './worker.js';

/** The worker in server mode (one sd-server per warm model) against the real API, PostgreSQL, Redis and S3. */

let app: TestApp;
let server: Awaited<ReturnType<typeof buildServer>>;
let apiUrl: string;
let modelDir: string;
const stops: (() => Promise<void>)[] = [];
const children: WorkerProcess[] = [];

beforeAll(async () => {
  referenceEngine();
  app = await createTestApp({ LEASE_SECONDS: '6', GENERATION_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  // The servers' command lines name this folder: the test finds (and counts) them by it.
  modelDir = mkdtempSync(join(tmpdir(), 'server-mode-models-'));
  copyFileSync(REFERENCE_MODEL_FILE, join(modelDir, 'model.txt'));
});

afterEach(async () => {
  for (const worker of children.splice(0)) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  for (const stop of stops.splice(0)) await stop();
  await expectLedgerInvariants(app.database.admin);
});

afterAll(async () => {
  if (server) {
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
  }
  await app?.close();
  rmSync(modelDir, { recursive: true, force: true });
});

const registry = (): ModelRegistry => ({
  sdxl: { args: ['-m', join(modelDir, 'model.txt')], memoryMb: 7000, env: { REFENGINE_LOAD_MS: '600' } },
  sd15: { args: ['-m', join(modelDir, 'model.txt')], memoryMb: 2500, env: { REFENGINE_LOAD_MS: '300' } },
});

async function payingUser(): Promise<SessionUser> {
  const user = await app.createUser({ tier: 'pro' });
  await withSystem(app.deps.db, (tx) =>
    grant(tx, { userId: user.id, key: `test:${randomUUID()}`, type: 'purchase', bucket: 'purchased', amount: 1000 }),
  );
  return user;
}

async function createJob(user: SessionUser, steps = 10): Promise<string> {
  const { jobId } = await app.callerFor(user).generation.create({
    prompt: `a lighthouse ${randomUUID()}`,
    model: 'sd15',
    width: 256,
    height: 256,
    steps,
    cfgScale: 7,
    seed: 42,
  });
  return jobId;
}

const row = async (jobId: string) =>
  (
    await app.database.admin`
  select status, retry_count, failure_code, loading_model, worker_id from generation_jobs where id = ${jobId}`
  )[0]!;

async function serverModeWorker(env: Record<string, string> = {}) {
  const engine = new ServerEngine({
    bin: REFERENCE_SERVER_BIN,
    name: 'reference',
    models: registry(),
    gpuMemoryMb: 8000,
    fallback: new CliEngine({ bin: REFERENCE_ENGINE_BIN, name: 'reference', models: registry() }),
    env,
  });
  const records: JobRecord[] = [];
  const worker = new Worker({
    api: createWorkerApi({ apiUrl, workerToken: app.config.WORKER_TOKEN }),
    engine,
    engineVersion: await engine.version(),
    workerId: `server-worker-${randomUUID()}`,
    concurrency: 1,
    engineTimeoutMs: 60_000,
    claimWaitMs: 1_000,
    logger: pino({ level: 'silent' }),
    onJobSettled: (record) => records.push(record),
  });
  worker.start();
  stops.push(async () => {
    await worker.stop(0);
    await engine.close();
  });
  return { engine, records };
}

describe('GPU worker in server mode', () => {
  it('completes jobs on a warm server: both objects stored, one model load, shown while it loads', async () => {
    const user = await payingUser();
    const { engine, records } = await serverModeWorker({ REFENGINE_STEP_MS: '30' });
    const first = await createJob(user);
    await expect.poll(async () => (await row(first)).loading_model, { timeout: 20_000, interval: 50 }).toBe(true);
    await expect.poll(async () => (await row(first)).status, { timeout: 30_000 }).toBe('completed');
    expect(await row(first)).toMatchObject({ loading_model: false, retry_count: 0 });
    const [keys] = await app.database.admin<{ original: string; thumb: string }[]>`
      select original_key as original, thumb_key as thumb from images where job_id = ${first}`;
    expect(await sharp(Buffer.from(await app.deps.store.getBytes(keys!.original))).metadata()).toMatchObject({
      format: 'png',
      width: 256,
    });
    expect(await sharp(Buffer.from(await app.deps.store.getBytes(keys!.thumb))).metadata()).toMatchObject({
      format: 'webp',
    });

    const [pid] = engine.processGroups();
    const second = await createJob(user);
    await expect.poll(async () => (await row(second)).status, { timeout: 30_000 }).toBe('completed');
    expect(engine.processGroups()).toEqual([pid]);
    // The API records the completion before the worker has had its reply and settled the job.
    await expect.poll(() => records.map((r) => r.result)).toEqual(['completed', 'completed']);
  });

  it('a server killed mid-job: the job is retried on the restarted server and completes once', async () => {
    const user = await payingUser();
    const { engine } = await serverModeWorker({ REFENGINE_STEP_MS: '200' });
    const jobId = await createJob(user, 20);
    await expect.poll(() => engine.models().warm, { timeout: 20_000 }).toEqual(['sd15']);
    await expect.poll(async () => (await row(jobId)).status, { timeout: 20_000 }).toBe('in_progress');
    const [pid] = engine.processGroups();
    await new Promise((resolve) => setTimeout(resolve, 800));
    process.kill(-pid!, 'SIGKILL');
    await expect.poll(async () => (await row(jobId)).status, { timeout: 45_000 }).toBe('completed');
    expect(await row(jobId)).toMatchObject({ retry_count: 1, failure_code: 'CRASH' });
    expect(engine.processGroups()).not.toContain(pid);
    const [images] = await app.database.admin`select count(*)::int as n from images where job_id = ${jobId}`;
    expect(images!.n).toBe(1);
  });

  it('the worker process (ENGINE_MODE=server) pre-warms, and takes its servers along on SIGTERM', async () => {
    const worker = spawnWorker({
      API_URL: apiUrl,
      WORKER_TOKEN: app.config.WORKER_TOKEN,
      WORKER_ID: 'server-mode-process',
      WORKER_CLAIM_WAIT_MS: '1000',
      ENGINE_MODE: 'server',
      WORKER_GPU_MEMORY_MB: '10000',
      ENGINE_PREWARM: 'sdxl,sd15',
      ENGINE_MODELS: JSON.stringify({
        sdxl: { files: { model: join(modelDir, 'model.txt') }, memoryMb: 7000 },
        sd15: { files: { model: join(modelDir, 'model.txt') }, memoryMb: 2500 },
      }),
    });
    children.push(worker);
    await expect.poll(() => worker.logs.filter((l) => l.msg === 'model loaded').length, { timeout: 30_000 }).toBe(2);
    const servers = processesMentioning(modelDir);
    expect(servers.length).toBeGreaterThanOrEqual(2);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    for (const pid of servers) await expect.poll(() => groupExists(pid), { timeout: 10_000 }).toBe(false);
    expect(processesMentioning(modelDir)).toEqual([]);
  });
});
