import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '@pingvas/db';
import { chargeCredits, type CreateJobInput, type JobEvent } from '@pingvas/core';
import { createTestApp, type TestApp } from '../../api/src/test/harness.js';
import { expectLedgerInvariants } from '../../api/src/test/invariants.js';
import { buildServer } from '../../api/src/server.js';
import { grant, getBalance } from '../../api/src/modules/credits/ledger.js';
import { reconcileOnce } from '../../api/src/modules/generation/reconciler.task.js';
import { jobEvents } from '../../api/src/modules/generation/job-events.js';
import { putUpload } from '../../api/src/modules/uploads/uploads.test-support.js';
import type { SessionUser } from '../../api/src/context.js';
import { freePort } from '@pingvas/local-services';
import { createWorkerApi, type WorkerApi } from './api-client.js';
import { REFERENCE_MODEL_FILE, REFERENCE_REGISTRY } from './config.js';
import { CliEngine } from './engines/cli-engine.js';
import { startStatusServer } from './status-server.js';
import { processesMentioning, referenceEngine } from './test/reference-engine.js';
import { spawnWorker, type WorkerProcess } from './test/worker-process.js';
import { Worker, type JobRecord, type WorkerStatus } from './worker.js';

/**
 * The worker against the real API (fastify on a loopback port), PostgreSQL, Redis and the
 * embedded S3 server. The reconciler's background loop is off in the harness; tests that
 * need a lease to expire run its pass themselves.
 */

const LEASE_SECONDS = 6;
const CREDITS = 1000;

let app: TestApp;
let server: Awaited<ReturnType<typeof buildServer>>;
let apiUrl: string;
let engineBin: string;
const children: WorkerProcess[] = [];
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  engineBin = referenceEngine();
  app = await createTestApp({ LEASE_SECONDS: String(LEASE_SECONDS), GENERATION_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const worker of children.splice(0)) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  for (const stop of stops.splice(0)) await stop();
  await expectLedgerInvariants(app.database.admin);
});

/** The in-process workers' job folders: this file's own, so other test files' jobs never show up in it. */
const scratchDir = mkdtempSync(join(tmpdir(), 'worker-test-scratch-'));

afterAll(async () => {
  rmSync(scratchDir, { recursive: true, force: true });
  if (server) {
    // Long-poll claims that stopped workers hung up on must not hold the test's teardown.
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
  }
  await app?.close();
});

async function payingUser(): Promise<SessionUser> {
  const user = await app.createUser({ tier: 'pro' });
  await withSystem(app.deps.db, (tx) =>
    grant(tx, { userId: user.id, key: `test:${randomUUID()}`, type: 'purchase', bucket: 'purchased', amount: CREDITS }),
  );
  return user;
}

async function createJob(
  user: SessionUser,
  over: Partial<CreateJobInput> = {},
): Promise<{ jobId: string; prompt: string }> {
  // A unique prompt finds the job's engine among the machine's processes.
  const prompt = over.prompt ?? `a lighthouse ${randomUUID()}`;
  const { jobId } = await app.callerFor(user).generation.create({
    prompt,
    model: 'sd15',
    width: 256,
    height: 256,
    steps: 10,
    cfgScale: 7,
    seed: 42,
    ...over,
  });
  return { jobId, prompt };
}

interface JobRow {
  status: string;
  retry_count: number;
  progress: number;
  engine_seconds: number | null;
  estimated_credits: number;
  charged_credits: number | null;
  failure_code: string | null;
  worker_id: string | null;
}

async function job(jobId: string): Promise<JobRow> {
  const [row] = await app.database.admin<JobRow[]>`
    select status, retry_count, progress, engine_seconds, estimated_credits, charged_credits, failure_code, worker_id
    from generation_jobs where id = ${jobId}`;
  return row!;
}

const untilJob = (jobId: string, timeout = 45_000) => expect.poll(() => job(jobId), { timeout, interval: 200 });

async function balance(user: SessionUser) {
  return withSystem(app.deps.db, (tx) => getBalance(tx, user.id));
}

async function countRows(table: 'images' | 'captures', user: SessionUser, jobId: string): Promise<number> {
  const [row] =
    table === 'images'
      ? await app.database.admin<{ n: number }[]>`select count(*)::int as n from images where job_id = ${jobId}`
      : await app.database.admin<
          { n: number }[]
        >`select count(*)::int as n from credit_transactions where user_id = ${user.id} and type = 'capture'`;
  return row!.n;
}

/** A worker in this process, to watch its records, status and log. */
async function inProcessWorker(
  engineEnv: Record<string, string> = {},
  options: { concurrency?: number; apiUrl?: string; api?: (api: WorkerApi) => WorkerApi } = {},
) {
  const engine = new CliEngine({
    bin: engineBin,
    name: 'reference',
    models: REFERENCE_REGISTRY,
    upscaleModel: REFERENCE_MODEL_FILE,
    env: engineEnv,
  });
  const records: JobRecord[] = [];
  const logs: Record<string, unknown>[] = [];
  const workerId = `test-worker-${randomUUID()}`;
  const worker = new Worker({
    api: (options.api ?? ((api) => api))(
      createWorkerApi({ apiUrl: options.apiUrl ?? apiUrl, workerToken: app.config.WORKER_TOKEN }),
    ),
    engine,
    engineVersion: await engine.version(),
    workerId,
    concurrency: options.concurrency ?? 1,
    engineTimeoutMs: 60_000,
    claimWaitMs: 1_000,
    logger: pino(
      { level: 'info' },
      { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
    ),
    scratchDir,
    onJobSettled: (record) => records.push(record),
  });
  worker.start();
  stops.push(() => worker.stop(0));
  return { worker, records, logs, workerId };
}

type UploadUrlCall = Parameters<WorkerApi['uploadUrl']['mutate']>;
type ClaimCall = Parameters<WorkerApi['claim']['mutate']>;
type Claimed = NonNullable<Awaited<ReturnType<WorkerApi['claim']['mutate']>>>;

/** The worker's API with some procedures wrapped (a wrapper may call the real one). */
function wrapWorkerApi(
  api: WorkerApi,
  wrap: {
    uploadUrl?: (
      call: UploadUrlCall,
      real: WorkerApi['uploadUrl'],
    ) => Promise<Awaited<ReturnType<WorkerApi['uploadUrl']['mutate']>>>;
    claim?: (call: ClaimCall, real: WorkerApi['claim']) => Promise<Claimed | null>;
  },
): WorkerApi {
  return new Proxy(api, {
    get(target, key, receiver) {
      if (key === 'uploadUrl' && wrap.uploadUrl)
        return { mutate: (...call: UploadUrlCall) => wrap.uploadUrl!(call, target.uploadUrl) };
      if (key === 'claim' && wrap.claim) return { mutate: (...call: ClaimCall) => wrap.claim!(call, target.claim) };
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

/** The worker's API with a hook that runs before each upload URL request (and may hold it). */
function beforeUploadUrl(api: WorkerApi, hook: (...call: UploadUrlCall) => Promise<void>): WorkerApi {
  return wrapWorkerApi(api, {
    uploadUrl: async (call, real) => {
      await hook(...call);
      return real.mutate(...call);
    },
  });
}

/** A loopback HTTP server that accepts requests and never answers them. */
async function silentServer(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const held = new Set<ServerResponse>();
  const server = createServer((_request, response) => {
    requests += 1;
    held.add(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/held.png`,
    requests: () => requests,
    close: async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function childWorker(id: string, env: Record<string, string> = {}): WorkerProcess {
  const worker = spawnWorker({
    API_URL: apiUrl,
    WORKER_TOKEN: app.config.WORKER_TOKEN,
    WORKER_ID: id,
    WORKER_CLAIM_WAIT_MS: '1000',
    ...env,
  });
  children.push(worker);
  return worker;
}

describe('GPU worker against the real API', () => {
  it('takes a job from create to completed: both objects stored, the image recorded, the engine seconds charged', async () => {
    const user = await payingUser();
    const { worker, records } = await inProcessWorker({ REFENGINE_STEP_MS: '150' });
    const status = await startStatusServer({ port: 0, host: '127.0.0.1', status: () => worker.status() });
    stops.push(async () => void status.server.close());
    const { jobId } = await createJob(user, { width: 512, height: 384 });

    const readStatus = async () =>
      (await (await fetch(`http://127.0.0.1:${status.port}/status`)).json()) as WorkerStatus;
    await expect
      .poll(async () => (await readStatus()).currentJobs.find((j) => j.jobId === jobId)?.step ?? 0, { timeout: 30_000 })
      .toBeGreaterThan(0);
    const during = await readStatus();
    expect(during.currentJobs[0]).toMatchObject({ jobId, totalSteps: 10 });
    expect(during.engineVersion).toMatch(/^stable-diffusion\.cpp version refengine-/);
    expect((await fetch(`http://127.0.0.1:${status.port}/healthz`)).status).toBe(200);

    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0 });
    const row = await job(jobId);
    const [keys] = await app.database.admin<{ original: string; thumb: string }[]>`
      select original_key as original, thumb_key as thumb from images where job_id = ${jobId}`;
    expect(keys!.original).toMatch(/^images\/[0-9a-f]{32}\/original\.png$/);
    const original = Buffer.from(await app.deps.store.getBytes(keys!.original));
    const thumb = Buffer.from(await app.deps.store.getBytes(keys!.thumb));
    expect(await sharp(original).metadata()).toMatchObject({ format: 'png', width: 512, height: 384 });
    expect(await sharp(thumb).metadata()).toMatchObject({ format: 'webp', width: 256, height: 192 });

    const [image] = await app.database.admin<{ width: number; height: number; bytes: number; engine: string }[]>`
      select width, height, bytes, engine from images where job_id = ${jobId}`;
    expect(image).toEqual({ width: 512, height: 384, bytes: original.length, engine: 'reference' });
    expect(row.engine_seconds).toBeGreaterThanOrEqual(10 * 0.15);
    expect(row.charged_credits).toBe(chargeCredits(row.engine_seconds!, row.estimated_credits));
    expect(await balance(user)).toMatchObject({ available: CREDITS - row.charged_credits!, held: 0 });
    expect(await countRows('captures', user, jobId)).toBe(1);

    await expect.poll(() => records.length).toBe(1);
    expect(records[0]).toMatchObject({ jobId, result: 'completed' });
    // The job's folder (the engine's PNG) is gone once the job is delivered.
    expect(readdirSync(scratchDir)).toEqual([]);
    expect(await readStatus()).toMatchObject({ currentJobs: [], jobsDone: 1, jobsFailed: 0 });
  });

  it('stops the engine when the user cancels a running job, and charges only the engine seconds used', async () => {
    const user = await payingUser();
    const { records } = await inProcessWorker({ REFENGINE_STEP_MS: '300' });
    const { jobId, prompt } = await createJob(user, { steps: 40 });
    await untilJob(jobId).toMatchObject({ status: 'in_progress', progress: expect.any(Number) });
    await expect.poll(async () => (await job(jobId)).progress, { timeout: 30_000 }).toBeGreaterThan(0);
    await app.callerFor(user).generation.cancel({ jobId });

    await untilJob(jobId).toMatchObject({ status: 'cancelled' });
    const row = await job(jobId);
    expect(row.engine_seconds).toBeGreaterThan(0);
    expect(row.engine_seconds).toBeLessThan(40 * 0.3);
    expect(row.charged_credits).toBe(chargeCredits(row.engine_seconds!, row.estimated_credits));
    expect(await balance(user)).toMatchObject({ available: CREDITS - row.charged_credits!, held: 0 });
    expect(processesMentioning(prompt)).toEqual([]);
    await expect.poll(() => records.map((r) => r.result)).toEqual(['cancelled']);
  });

  it('finishes a job whose worker was SIGKILLed mid-run on another worker after the lease expires: one image, one charge', async () => {
    const user = await payingUser();
    const doomed = childWorker('doomed', { REFENGINE_STEP_MS: '500' });
    const { jobId, prompt } = await createJob(user);
    await untilJob(jobId).toMatchObject({ status: 'in_progress', worker_id: 'doomed' });
    await expect.poll(async () => (await job(jobId)).progress, { timeout: 30_000 }).toBeGreaterThan(0);
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    const rescuer = childWorker('rescuer');
    // The reconciler (its loop is off here) retries the run once its lease has run out.
    await expect
      .poll(
        async () => {
          await reconcileOnce(app.deps);
          return (await job(jobId)).status;
        },
        { timeout: 45_000, interval: 500 },
      )
      .toBe('completed');
    const row = await job(jobId);
    expect(row).toMatchObject({ retry_count: 1, worker_id: 'rescuer' });
    expect(await countRows('images', user, jobId)).toBe(1);
    expect(await countRows('captures', user, jobId)).toBe(1);
    expect(await balance(user)).toMatchObject({ available: CREDITS - row.charged_credits!, held: 0 });
    // The dead worker's engine went with it: it dies of SIGPIPE on its next progress line.
    await expect.poll(() => processesMentioning(prompt), { timeout: 15_000 }).toEqual([]);
    await expect.poll(() => rescuer.logs.some((l) => l.msg === 'job completed' && l.jobId === jobId)).toBe(true);
  });

  it('fails a job whose engine runs out of memory three times, releasing every credit held', async () => {
    const user = await payingUser();
    const worker = childWorker('tiny-gpu', { REFENGINE_OOM_AT_STEP: '2' });
    const { jobId } = await createJob(user);
    await untilJob(jobId).toMatchObject({ status: 'failed', retry_count: 3, failure_code: 'OOM', charged_credits: 0 });
    expect(await balance(user)).toMatchObject({ available: CREDITS, held: 0 });
    expect(await countRows('images', user, jobId)).toBe(0);
    expect(worker.logs.filter((l) => l.msg === 'engine failed' && l.jobId === jobId && l.code === 'OOM')).toHaveLength(
      3,
    );
  });

  it('on SIGTERM hands back a job it cannot finish within the grace period, not counted as an attempt', async () => {
    const user = await payingUser();
    const leaving = childWorker('spot-instance', { REFENGINE_STEP_MS: '800', WORKER_GRACE_SECONDS: '1' });
    const { jobId, prompt } = await createJob(user);
    await untilJob(jobId).toMatchObject({ status: 'in_progress', worker_id: 'spot-instance' });
    await expect.poll(async () => (await job(jobId)).progress, { timeout: 30_000 }).toBeGreaterThan(0);
    leaving.child.kill('SIGTERM');
    expect(await leaving.exited).toEqual({ code: 0, signal: null });
    expect(processesMentioning(prompt)).toEqual([]);
    expect(await job(jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    expect(leaving.logs.some((l) => l.msg === 'job released' && l.jobId === jobId)).toBe(true);

    childWorker('next-one');
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0, worker_id: 'next-one' });
    expect(await countRows('images', user, jobId)).toBe(1);
    expect(await countRows('captures', user, jobId)).toBe(1);
  });

  it('on SIGTERM finishes the running job when it fits in the grace period, then exits', async () => {
    const user = await payingUser();
    const leaving = childWorker('graceful', { REFENGINE_STEP_MS: '200', WORKER_GRACE_SECONDS: '30' });
    const { jobId } = await createJob(user);
    const second = await createJob(user);
    await untilJob(jobId).toMatchObject({ status: 'in_progress', worker_id: 'graceful' });
    leaving.child.kill('SIGTERM');
    expect(await leaving.exited).toEqual({ code: 0, signal: null });
    expect(await job(jobId)).toMatchObject({ status: 'completed', retry_count: 0 });
    // Stopping means no new claims: the next job is still waiting.
    expect(await job(second.jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    await app.callerFor(user).generation.cancel({ jobId: second.jobId });
  });

  it('runs WORKER_CONCURRENCY jobs at once', async () => {
    const user = await payingUser();
    const { workerId, records } = await inProcessWorker({ REFENGINE_STEP_MS: '300' }, { concurrency: 2 });
    const a = await createJob(user);
    const b = await createJob(user);
    await expect
      .poll(async () => [(await job(a.jobId)).worker_id, (await job(b.jobId)).worker_id].join(), { timeout: 30_000 })
      .toBe(`${workerId},${workerId}`);
    expect((await job(a.jobId)).status).toBe('in_progress');
    expect((await job(b.jobId)).status).toBe('in_progress');
    await untilJob(a.jobId).toMatchObject({ status: 'completed' });
    await untilJob(b.jobId).toMatchObject({ status: 'completed' });
    await expect.poll(() => records.filter((r) => r.result === 'completed').length).toBe(2);
  });

  it('claims the next job while the engine ends the current one, and hands both back when stopped at once', async () => {
    const user = await payingUser();
    const { worker, workerId, records } = await inProcessWorker({ REFENGINE_STEP_MS: '300' });
    const first = await createJob(user);
    const second = await createJob(user);
    await untilJob(first.jobId).toMatchObject({ status: 'in_progress', worker_id: workerId });
    // Claimed ahead: in progress on this worker while the first job's engine is still running.
    await untilJob(second.jobId).toMatchObject({ status: 'in_progress', worker_id: workerId });
    // The row says claimed once the claim commits; the worker holds the job once the answer arrives.
    await expect.poll(() => worker.status().currentJobs.map((j) => j.jobId)).toContain(second.jobId);
    await worker.stop(0);
    expect(await job(first.jobId)).toMatchObject({ retry_count: 0 });
    expect(await job(second.jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    expect(records.find((r) => r.jobId === second.jobId)).toMatchObject({ result: 'released' });
    expect(processesMentioning(second.prompt)).toEqual([]);
    for (const { jobId } of [first, second]) {
      if ((await job(jobId)).status === 'pending') await app.callerFor(user).generation.cancel({ jobId });
    }
  });

  it('kills the engine and drops the job when a heartbeat finds the lease lost', async () => {
    const user = await payingUser();
    const { records, logs } = await inProcessWorker({ REFENGINE_STEP_MS: '400' });
    const { jobId } = await createJob(user);
    await expect.poll(async () => (await job(jobId)).progress, { timeout: 30_000 }).toBeGreaterThan(0);
    // As if the worker had gone quiet past its lease: the reconciler hands the run on.
    await app.database
      .admin`update generation_jobs set lease_expires_at = now() - interval '1 second' where id = ${jobId}`;
    await reconcileOnce(app.deps);
    expect(await job(jobId)).toMatchObject({ retry_count: 1 });

    await expect.poll(() => records[0]?.result, { timeout: 30_000 }).toBe('dropped');
    expect(records[0]!.engineSeconds).toBeLessThan(10 * 0.4);
    expect(logs.some((l) => l.msg === 'lease lost: dropping the job')).toBe(true);
    // The job went back to the queue; the worker takes it again under a new lease and finishes it.
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 1 });
    expect(await countRows('images', user, jobId)).toBe(1);
    expect(await countRows('captures', user, jobId)).toBe(1);
  });

  it('backs off while the API is unreachable, then picks up work when it answers', async () => {
    const port = await freePort();
    const { logs, records } = await inProcessWorker({}, { apiUrl: `http://127.0.0.1:${port}` });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const failures = logs.filter((l) => l.msg === 'claim failed');
    // Exponential backoff from 250 ms: a handful of tries in 3 s, not a spin.
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.length).toBeLessThanOrEqual(8);
    const delays = failures.map((l) => l.retryInMs as number);
    expect(Math.max(...delays)).toBeGreaterThan(delays[0]!);

    const late = await buildServer(app.deps);
    await late.listen({ port, host: '127.0.0.1' });
    stops.push(() => late.close());
    const user = await payingUser();
    const { jobId } = await createJob(user);
    await untilJob(jobId).toMatchObject({ status: 'completed' });
    await expect.poll(() => records.map((r) => r.result)).toEqual(['completed']);
  });
});

/** A checked upload of `png`, as the web makes one: create, PUT, complete. */
async function uploadPng(user: SessionUser, png: Buffer): Promise<string> {
  const uploadId = await putUpload(app, user, png);
  await app.callerFor(user).uploads.complete({ uploadId });
  return uploadId;
}

interface StoredImage {
  id: string;
  job_index: number;
  kind: string;
  width: number;
  height: number;
  parent_image_id: string | null;
  original: Buffer;
  thumb: Buffer;
}

/** The job's image rows in index order, with their stored objects. */
async function storedImages(jobId: string): Promise<StoredImage[]> {
  const rows = await app.database.admin<(Omit<StoredImage, 'original' | 'thumb'> & { ok: string; tk: string })[]>`
    select id, job_index, kind, width, height, parent_image_id, original_key as ok, thumb_key as tk
    from images where job_id = ${jobId} order by job_index`;
  return Promise.all(
    rows.map(async ({ ok, tk, ...row }) => ({
      ...row,
      original: Buffer.from(await app.deps.store.getBytes(ok)),
      thumb: Buffer.from(await app.deps.store.getBytes(tk)),
    })),
  );
}

/** Every live event of the job as a watcher gets it, from its snapshot to its end. */
function watchJob(user: SessionUser, jobId: string) {
  const events: JobEvent[] = [];
  const abort = new AbortController();
  const done = (async () => {
    for await (const event of jobEvents(app.deps, user.id, jobId, abort.signal)) events.push(event);
  })();
  stops.push(async () => {
    abort.abort();
    await done.catch(() => {});
  });
  return { events, done };
}

async function rgbAt(png: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + 3)];
}

const WHITE = { r: 255, g: 255, b: 255 };
const BLACK = { r: 0, g: 0, b: 0 };
const block = (width: number, height: number, background: { r: number; g: number; b: number }) =>
  sharp({ create: { width, height, channels: 3, background } });

describe('image tools through the worker', () => {
  it('inpaints a batch from uploads: the engine gets the cropped init image and the mask, every image is stored at its index', async () => {
    const user = await payingUser();
    // 400×200: green, then red from x 150 to 250, on white. The job's 256² crop keeps x 100…300.
    const init = await block(400, 200, WHITE)
      .composite([
        { input: await block(100, 200, { r: 0, g: 255, b: 0 }).png().toBuffer(), left: 0, top: 0 },
        { input: await block(100, 200, { r: 255, g: 0, b: 0 }).png().toBuffer(), left: 150, top: 0 },
      ])
      .png()
      .toBuffer();
    // White (repaint) on the right half only: the left half of every result is the init image.
    const mask = await block(400, 200, BLACK)
      .composite([{ input: await block(200, 200, WHITE).png().toBuffer(), left: 200, top: 0 }])
      .png()
      .toBuffer();
    const [initId, maskId] = [await uploadPng(user, init), await uploadPng(user, mask)];
    await inProcessWorker();
    const { jobId } = await createJob(user, {
      width: 256,
      height: 256,
      steps: 6,
      count: 2,
      strength: 1,
      initImage: { uploadId: initId },
      mask: { uploadId: maskId },
    });
    const { events, done } = watchJob(user, jobId);
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0 });

    const images = await storedImages(jobId);
    expect(images.map((i) => [i.job_index, i.kind, i.width, i.height])).toEqual([
      [0, 'inpaint', 256, 256],
      [1, 'inpaint', 256, 256],
    ]);
    for (const image of images) {
      // Kept: the crop's white margin, then red; no green (it was cropped away).
      const near = (actual: number[], expected: number[]) =>
        actual.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(24));
      near(await rgbAt(image.original, 8, 40), [255, 255, 255]);
      near(await rgbAt(image.original, 100, 40), [255, 0, 0]);
      expect(await sharp(image.thumb).metadata()).toMatchObject({ format: 'webp', width: 256, height: 256 });
    }
    // seed + index: two different pictures.
    expect(images[0]!.original.equals(images[1]!.original)).toBe(false);
    await done;
    const completed = events.find((e) => e.type === 'completed');
    expect(completed).toMatchObject({ images: images.map((i) => ({ id: i.id, width: 256, height: 256 })) });
  });

  it('runs image to image from a gallery image and upscales the result 2×: one 4× pass resized to the delivered size', async () => {
    const user = await payingUser();
    await inProcessWorker();
    const first = await createJob(user, { width: 256, height: 256, steps: 4 });
    await untilJob(first.jobId).toMatchObject({ status: 'completed' });
    const [source] = await storedImages(first.jobId);

    const varied = await createJob(user, {
      width: 320,
      height: 256,
      steps: 4,
      strength: 0.5,
      initImage: { imageId: source!.id },
    });
    await untilJob(varied.jobId).toMatchObject({ status: 'completed', retry_count: 0 });
    const [variation] = await storedImages(varied.jobId);
    expect(variation).toMatchObject({ kind: 'img2img', width: 320, height: 256, parent_image_id: source!.id });
    expect(await sharp(variation!.original).metadata()).toMatchObject({ width: 320, height: 256 });

    const { jobId } = await app.callerFor(user).generation.upscale({ imageId: variation!.id, scale: 2 });
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0 });
    const [upscaled] = await storedImages(jobId);
    expect(upscaled).toMatchObject({ kind: 'upscale', width: 640, height: 512, parent_image_id: variation!.id });
    expect(await sharp(upscaled!.original).metadata()).toMatchObject({ format: 'png', width: 640, height: 512 });
    expect(await sharp(upscaled!.thumb).metadata()).toMatchObject({ format: 'webp', width: 256, height: 205 });
  });

  it('stores a batch of four in index order, one original and one thumbnail each, completed as one job', async () => {
    const user = await payingUser();
    const { records } = await inProcessWorker();
    const { jobId } = await createJob(user, { width: 256, height: 320, steps: 4, count: 4 });
    const { events, done } = watchJob(user, jobId);
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0 });
    const images = await storedImages(jobId);
    expect(images.map((i) => [i.job_index, i.width, i.height])).toEqual([0, 1, 2, 3].map((i) => [i, 256, 320]));
    expect(new Set(images.map((i) => i.original.toString('base64'))).size).toBe(4);
    for (const image of images) {
      expect(await sharp(image.original).metadata()).toMatchObject({ format: 'png', width: 256, height: 320 });
      expect(await sharp(image.thumb).metadata()).toMatchObject({ format: 'webp' });
    }
    expect(await countRows('captures', user, jobId)).toBe(1);
    await done;
    expect(events.find((e) => e.type === 'completed')).toMatchObject({
      image: { id: images[0]!.id },
      images: images.map((i) => ({ id: i.id })),
    });
    await expect.poll(() => records.map((r) => r.result)).toEqual(['completed']);
  });

  it('drops an attempt whose lease is lost in the middle of its batch uploads; the retry stores the four images once', async () => {
    const user = await payingUser();
    let cut = false;
    const { records } = await inProcessWorker(
      {},
      {
        api: (api) =>
          beforeUploadUrl(api, async (input) => {
            if (cut || input.index !== 2) return;
            cut = true;
            // As if the worker had gone quiet past its lease while images 0 and 1 went up.
            await app.database.admin`
              update generation_jobs set lease_expires_at = now() - interval '1 second' where id = ${input.jobId}`;
            await reconcileOnce(app.deps);
          }),
      },
    );
    const { jobId } = await createJob(user, { steps: 4, count: 4 });
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 1 });
    expect(cut).toBe(true);
    const images = await storedImages(jobId);
    expect(images.map((i) => i.job_index)).toEqual([0, 1, 2, 3]);
    expect(new Set(images.map((i) => i.original.toString('base64'))).size).toBe(4);
    expect(await countRows('captures', user, jobId)).toBe(1);
    await expect.poll(() => records.map((r) => r.result).sort()).toEqual(['completed', 'dropped']);
  });

  it('hands back a job stopped in the middle of its batch uploads; the next worker stores the four images once', async () => {
    const user = await payingUser();
    let stopping: Promise<void> | null = null;
    const leaving = await inProcessWorker(
      {},
      {
        api: (api) =>
          beforeUploadUrl(api, (input, options) => {
            if (input.index !== 2 || stopping) return Promise.resolve();
            // Image 2's upload is held until the shutdown aborts it: the stop lands mid-batch.
            stopping = leaving.worker.stop(0);
            return new Promise((_, reject) => {
              const signal = options!.signal!;
              signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
            });
          }),
      },
    );
    const { jobId } = await createJob(user, { steps: 4, count: 4 });
    await expect.poll(() => stopping, { timeout: 30_000 }).not.toBeNull();
    await stopping;
    expect(leaving.records.map((r) => r.result)).toEqual(['released']);
    expect(await job(jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    expect(await countRows('images', user, jobId)).toBe(0);

    await inProcessWorker();
    await untilJob(jobId).toMatchObject({ status: 'completed', retry_count: 0 });
    expect((await storedImages(jobId)).map((i) => i.job_index)).toEqual([0, 1, 2, 3]);
    expect(await countRows('captures', user, jobId)).toBe(1);
  });

  it('hands back a job stopped while its init image downloads, and drops one whose lease is lost meanwhile', async () => {
    const user = await payingUser();
    const silent = await silentServer();
    stops.push(silent.close);
    const initId = await uploadPng(user, await block(256, 256, WHITE).png().toBuffer());
    // The first claim of each job is pointed at a server that never answers: the download hangs.
    const diverted = new Set<string>();
    const divert = (api: WorkerApi) =>
      wrapWorkerApi(api, {
        claim: async (call, real) => {
          const claimed = await real.mutate(...call);
          if (!claimed || diverted.has(claimed.job.id)) return claimed;
          diverted.add(claimed.job.id);
          const initImage = { ...claimed.job.inputs.initImage!, url: silent.url };
          return { ...claimed, job: { ...claimed.job, inputs: { ...claimed.job.inputs, initImage } } } as Claimed;
        },
      });

    const leaving = await inProcessWorker({}, { api: divert });
    const stopped = await createJob(user, { steps: 4, initImage: { uploadId: initId } });
    await expect.poll(() => silent.requests(), { timeout: 30_000 }).toBe(1);
    await leaving.worker.stop(0);
    expect(leaving.records.map((r) => r.result)).toEqual(['released']);
    expect(await job(stopped.jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    await app.callerFor(user).generation.cancel({ jobId: stopped.jobId });

    const quiet = await inProcessWorker({}, { api: divert });
    const lost = await createJob(user, { steps: 4, initImage: { uploadId: initId } });
    await expect.poll(() => silent.requests(), { timeout: 30_000 }).toBe(2);
    await app.database.admin`
      update generation_jobs set lease_expires_at = now() - interval '1 second' where id = ${lost.jobId}`;
    await reconcileOnce(app.deps);
    // The next heartbeat finds the lease gone and stops the download; the retry downloads the real image.
    await untilJob(lost.jobId).toMatchObject({ status: 'completed', retry_count: 1 });
    await expect.poll(() => quiet.records.map((r) => r.result).sort()).toEqual(['completed', 'dropped']);
    expect(await countRows('images', user, lost.jobId)).toBe(1);
  });

  it('fails every attempt of a job whose init image cannot be fetched, as an engine error, refunding the hold', async () => {
    const user = await payingUser();
    const initId = await uploadPng(user, await block(256, 256, WHITE).png().toBuffer());
    const { jobId } = await createJob(user, { steps: 4, initImage: { uploadId: initId } });
    // The stored PNG goes missing after the job was accepted: every presigned GET answers 404.
    const [upload] = await app.database.admin<
      { key: string }[]
    >`select image_key as key from uploads where id = ${initId}`;
    await app.deps.store.deleteKeys([upload!.key]);
    const { logs } = await inProcessWorker();
    await untilJob(jobId).toMatchObject({
      status: 'failed',
      retry_count: 3,
      failure_code: 'ENGINE_ERROR',
      charged_credits: 0,
    });
    expect(await balance(user)).toMatchObject({ available: CREDITS, held: 0 });
    expect(await countRows('images', user, jobId)).toBe(0);
    const refused = logs.filter((l) => l.msg === 'input refused' && l.jobId === jobId);
    expect(refused).toHaveLength(3);
    expect(JSON.stringify(refused[0]!.err)).toContain('the init image could not be downloaded: HTTP 404');
  });

  it('sends live previews while the engine samples: small WebP frames with their step', async () => {
    const user = await payingUser();
    await inProcessWorker({ REFENGINE_STEP_MS: '250' });
    const { jobId } = await createJob(user, { width: 512, height: 512, steps: 12 });
    const { events, done } = watchJob(user, jobId);
    await untilJob(jobId).toMatchObject({ status: 'completed' });
    await done;
    const previews = events.filter((e) => e.type === 'preview');
    expect(previews.length).toBeGreaterThan(0);
    for (const preview of previews) {
      expect(preview.step).toBeGreaterThanOrEqual(1);
      expect(preview.step).toBeLessThanOrEqual(12);
      expect(preview.dataUrl).toMatch(/^data:image\/webp;base64,/);
      const webp = Buffer.from(preview.dataUrl.split(',')[1]!, 'base64');
      expect(await sharp(webp).metadata()).toMatchObject({
        format: 'webp',
        width: preview.width,
        height: preview.height,
      });
      expect(Math.max(preview.width, preview.height)).toBeLessThanOrEqual(256);
    }
    // Every preview comes before the job's end.
    expect(events.findIndex((e) => e.type === 'completed')).toBeGreaterThan(events.lastIndexOf(previews.at(-1)!));
  });
});
