import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_MODEL_FILE, REFERENCE_SERVER_BIN } from '../config.js';
import { referenceEngine } from '../test/reference-engine.js';
import { ProgressParser } from './progress.js';

/**
 * The reference engine's server mode on its own, over HTTP: the subset of sd-server's native
 * async API the worker and the benchmarks rely on (README "Server mode"), and its fault
 * switches. server-engine.test.ts drives the same server through the worker's adapter.
 */

interface Started {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const servers: Started[] = [];

beforeAll(() => {
  referenceEngine();
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts the server and resolves once it says it listens (after its model load). */
async function startServer(env: Record<string, string> = {}): Promise<Started> {
  const port = await freePort();
  const child = spawn(
    REFERENCE_SERVER_BIN,
    ['-m', REFERENCE_MODEL_FILE, '--listen-ip', '127.0.0.1', '--listen-port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REFENGINE_LOAD_MS: '50', ...env } },
  );
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const server = { child, url: `http://127.0.0.1:${port}`, stdout: () => stdout, exited };
  servers.push(server);
  await expect.poll(() => stdout, { timeout: 15_000 }).toMatch(/ - listening on: 127\.0\.0\.1:\d+$/m);
  return server;
}

interface JobStatus {
  id: string;
  status: 'queued' | 'generating' | 'completed' | 'failed' | 'cancelled';
  queue_position: number;
  result: { output_format: string; images: { index: number; b64_json: string }[] } | null;
  error: { code: string; message: string } | null;
}

async function call(
  server: Started,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          headers: { 'content-type': 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

const request = (over: Record<string, unknown> = {}) => ({
  prompt: 'a lighthouse at dusk',
  width: 64,
  height: 64,
  seed: 3,
  sample_params: { sample_method: 'euler_a', sample_steps: 2 },
  ...over,
});

async function submit(server: Started, body: unknown): Promise<string> {
  const { status, json } = await call(server, 'POST', '/sdcpp/v1/img_gen', body);
  expect(status, JSON.stringify(json)).toBe(202);
  expect(json).toMatchObject({ status: 'queued', poll_url: `/sdcpp/v1/jobs/${json.id as string}` });
  return json.id as string;
}

const job = async (server: Started, id: string) =>
  (await call(server, 'GET', `/sdcpp/v1/jobs/${id}`)).json as unknown as JobStatus;

async function until(server: Started, id: string, status: JobStatus['status']): Promise<JobStatus> {
  let last: JobStatus | undefined;
  await expect
    .poll(
      async () => {
        last = await job(server, id);
        return last.status;
      },
      { timeout: 30_000, interval: 20 },
    )
    .toBe(status);
  return last!;
}

describe('reference engine: server mode (sd-server native API)', () => {
  it('loads its model (the # bar) once before it listens, then serves jobs without loading again', async () => {
    const server = await startServer({ REFENGINE_LOAD_MS: '300' });
    const beforeListening = server.stdout().slice(0, server.stdout().indexOf('listening on:'));
    expect(beforeListening).toMatch(/\| 1130\/1130 - [\d.]+[MG]B\/s\x1b\[K\n/);
    expect(beforeListening).toMatch(/ - loading model completed, taking [\d.]+s$/m);
    const capabilities = await call(server, 'GET', '/sdcpp/v1/capabilities');
    expect(capabilities).toMatchObject({ status: 200, json: { supported_modes: ['img_gen'] } });

    for (const seed of [1, 2]) await until(server, await submit(server, request({ seed })), 'completed');
    expect(server.stdout().match(/loading model completed/g)).toHaveLength(1);
    // Each job draws its own denoising bar on stdout, as sd-cli does: the adapter's only progress source.
    expect(new ProgressParser().push(server.stdout()).map((p) => p.step)).toEqual([1, 2, 1, 2]);
  });

  it('returns a batch as base64 PNGs with their index, each at the size asked', async () => {
    const server = await startServer();
    const done = await until(
      server,
      await submit(server, request({ width: 96, height: 64, batch_count: 2 })),
      'completed',
    );
    expect(done).toMatchObject({ queue_position: 0, error: null, result: { output_format: 'png' } });
    expect(done.result!.images.map((image) => image.index)).toEqual([0, 1]);
    const decoded = done.result!.images.map((image) => Buffer.from(image.b64_json, 'base64'));
    for (const png of decoded)
      expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 96, height: 64 });
    expect(decoded[0]!.equals(decoded[1]!)).toBe(false);
  });

  it('runs jobs in order with honest queue positions; cancels a queued job at once and a running one at its next step', async () => {
    const server = await startServer({ REFENGINE_STEP_MS: '50' });
    const first = await submit(server, request({ sample_params: { sample_steps: 400 } }));
    await until(server, first, 'generating');
    const second = await submit(server, request({ seed: 4 }));
    const third = await submit(server, request({ seed: 5 }));
    expect(await job(server, second)).toMatchObject({ status: 'queued', queue_position: 1 });
    expect(await job(server, third)).toMatchObject({ status: 'queued', queue_position: 2 });

    const cancelled = await call(server, 'POST', `/sdcpp/v1/jobs/${second}/cancel`);
    expect(cancelled).toMatchObject({ status: 200, json: { status: 'cancelled', error: { code: 'cancelled' } } });
    expect(await job(server, third)).toMatchObject({ status: 'queued', queue_position: 1 });

    expect((await call(server, 'POST', `/sdcpp/v1/jobs/${first}/cancel`)).status).toBe(200);
    expect(await until(server, first, 'cancelled')).toMatchObject({ result: null, error: { code: 'cancelled' } });
    const done = await until(server, third, 'completed');
    expect(done.result!.images).toHaveLength(1);
    // A finished job cannot be cancelled; a cancelled one answers as it is.
    expect(await call(server, 'POST', `/sdcpp/v1/jobs/${third}/cancel`)).toMatchObject({
      status: 409,
      json: { error: { code: 'invalid_state' } },
    });
    expect((await call(server, 'POST', `/sdcpp/v1/jobs/${second}/cancel`)).status).toBe(200);
  });

  it('answers bad requests with its error codes', async () => {
    const server = await startServer();
    const invalid = { status: 400, json: { error: { code: 'invalid_request' } } };
    expect(await call(server, 'POST', '/sdcpp/v1/img_gen', { width: 64 })).toMatchObject(invalid);
    expect(await call(server, 'POST', '/sdcpp/v1/img_gen', 'not json')).toMatchObject(invalid);
    expect(await call(server, 'POST', '/sdcpp/v1/img_gen', request({ width: 'wide' }))).toMatchObject(invalid);
    expect(await call(server, 'POST', '/sdcpp/v1/img_gen', request({ width: 500 }))).toMatchObject(invalid);
    expect(await call(server, 'GET', '/sdcpp/v1/img_gen')).toMatchObject({ status: 405 });
    expect(await call(server, 'GET', '/sdcpp/v1/jobs/job_999999')).toMatchObject({
      status: 404,
      json: { error: { code: 'not_found' } },
    });
    expect(await call(server, 'GET', '/sdcpp/v1/nothing-here')).toMatchObject({ status: 404 });
  });

  it('fault switches: an out-of-memory fails the job and the server goes on; an abort ends the server', async () => {
    const oom = await startServer({ REFENGINE_OOM_AT_STEP: '2' });
    const failed = await until(oom, await submit(oom, request({ sample_params: { sample_steps: 4 } })), 'failed');
    expect(failed).toMatchObject({ result: null, error: { code: 'generation_failed' } });
    expect(failed.error!.message).toMatch(/out of memory/);
    expect((await call(oom, 'GET', '/sdcpp/v1/capabilities')).status).toBe(200);
    expect(oom.child.exitCode).toBeNull();

    const abort = await startServer({ REFENGINE_ABORT_AT_STEP: '2' });
    await submit(abort, request({ sample_params: { sample_steps: 4 } }));
    expect(await abort.exited).toEqual({ code: null, signal: 'SIGABRT' });
  });
});
