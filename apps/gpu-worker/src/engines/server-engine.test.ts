import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UPSCALE_MODEL_ID, type EngineJob, type EngineParams } from '@pingvas/core';
import {
  REFERENCE_ENGINE_BIN,
  REFERENCE_MODEL_FILE,
  REFERENCE_REGISTRY,
  REFERENCE_SERVER_BIN,
  type ModelRegistry,
} from '../config.js';
import { groupExists, processesMentioning, referenceEngine } from '../test/reference-engine.js';
import { CliEngine } from './cli-engine.js';
import type { Engine, EngineJobFiles, EngineOutcome, EngineProgress } from './engine.js';
import { ServerEngine } from './server-engine.js';

let dir: string;
let n = 0;
const output = () => {
  const jobDir = join(dir, `job-${++n}`);
  mkdirSync(jobDir);
  return join(jobDir, 'original.png');
};
const engines: ServerEngine[] = [];

beforeAll(() => {
  referenceEngine();
  dir = mkdtempSync(join(tmpdir(), 'server-engine-test-'));
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const params = (over: Partial<EngineParams> = {}): EngineParams => ({
  prompt: 'a small red house by a lake',
  model: 'sd15',
  width: 128,
  height: 128,
  steps: 8,
  cfgScale: 7,
  seed: 99,
  sampler: 'euler_a',
  ...over,
});

/** Per-model load times, as the registry gives them to the reference engine. */
const registry = (loadMs = 300): ModelRegistry =>
  Object.fromEntries(
    Object.entries(REFERENCE_REGISTRY).map(([id, entry]) => [
      id,
      { ...entry, env: { REFENGINE_LOAD_MS: String(loadMs) } },
    ]),
  );

const cliEngine = () => new CliEngine({ bin: REFERENCE_ENGINE_BIN, name: 'reference', models: REFERENCE_REGISTRY });

function engine(
  env: Record<string, string> = {},
  options: { gpuMemoryMb?: number; models?: ModelRegistry; fallback?: Engine } = {},
): ServerEngine {
  const e = new ServerEngine({
    bin: REFERENCE_SERVER_BIN,
    name: 'reference',
    models: options.models ?? registry(),
    gpuMemoryMb: options.gpuMemoryMb ?? 0,
    fallback: options.fallback ?? cliEngine(),
    env,
    pollIntervalMs: 20,
    progressIntervalMs: 0,
  });
  engines.push(e);
  return e;
}

interface Run {
  outcome: EngineOutcome;
  path: string;
  events: EngineProgress[];
  loading: boolean;
}

async function run(
  e: ServerEngine,
  p: EngineParams,
  extra: { signal?: AbortSignal; timeoutMs?: number; count?: number } = {},
): Promise<Run> {
  const path = output();
  const events: EngineProgress[] = [];
  let loading = false;
  const job: EngineJob = { kind: 'txt2img', params: p, count: extra.count ?? 1 };
  const outcome = await e.run(
    job,
    { inputs: {}, output: path },
    {
      timeoutMs: extra.timeoutMs ?? 30_000,
      signal: extra.signal,
      onProgress: (progress) => events.push(progress),
      onModelLoading: () => (loading = true),
    },
  );
  return { outcome, path, events, loading };
}

/** The pid of the one server the engine runs (its process group). */
async function serverPid(e: ServerEngine): Promise<number> {
  await expect.poll(() => e.processGroups().length, { timeout: 10_000 }).toBe(1);
  return e.processGroups()[0]!;
}

describe('ServerEngine against the reference sd-server', () => {
  it('loads the model once (the first job waits, the next starts at once); progress in order; valid PNGs', async () => {
    const e = engine({ REFENGINE_STEP_MS: '20' });
    expect(e.models()).toEqual({ warm: [], loadable: ['sdxl', 'sd15'] });

    const first = await run(e, params());
    expect(first.loading).toBe(true);
    expect(first.outcome).toMatchObject({ ok: true, images: [{ path: first.path, width: 128, height: 128 }] });
    expect(readFileSync(first.path).subarray(1, 4).toString()).toBe('PNG');
    expect(first.events.map((ev) => ev.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(first.events.at(-1)).toMatchObject({ percent: 100, totalSteps: 8 });
    expect(e.models().warm).toEqual(['sd15']);
    const pid = await serverPid(e);

    const second = await run(e, params({ seed: 7, width: 64, height: 96 }));
    expect(second.loading).toBe(false);
    expect(second.outcome).toMatchObject({ ok: true, images: [{ width: 64, height: 96 }] });
    expect(second.events.at(-1)).toMatchObject({ step: 8, percent: 100 });
    // The load is not the job's: the engine seconds cover the job on the warm server only.
    if (first.outcome.ok) expect(first.outcome.engineSeconds).toBeLessThan(0.3 + 8 * 0.02 + 2);
    expect(e.processGroups()).toEqual([pid]);
  });

  it('runs a batch on the warm server: one image per index, named and made as the CLI names and makes them', async () => {
    const served = await run(engine(), params({ seed: 11 }), { count: 3 });
    const cliPath = output();
    const cli = await cliEngine().run(
      { kind: 'txt2img', params: params({ seed: 11 }), count: 3 },
      { inputs: {}, output: cliPath },
      { timeoutMs: 30_000 },
    );
    const stem = served.path.replace(/\.png$/, '');
    expect(served.outcome).toMatchObject({
      ok: true,
      images: [0, 1, 2].map((i) => ({ path: `${stem}_${i}.png`, width: 128, height: 128 })),
    });
    if (!served.outcome.ok || !cli.ok) throw new Error('both runs should succeed');
    const bytes = (o: typeof cli) => (o.ok ? o.images.map((image) => readFileSync(image.path)) : []);
    const [servedBytes, cliBytes] = [bytes(served.outcome), bytes(cli)];
    servedBytes.forEach((image, i) => expect(image.equals(cliBytes[i]!)).toBe(true));
    // seed + index: every image of the batch differs.
    expect(servedBytes[0]!.equals(servedBytes[1]!)).toBe(false);
  });

  it('hands image-to-image, inpainting and upscaling to the CLI engine beside it, untouched', async () => {
    const calls: { job: EngineJob; files: EngineJobFiles }[] = [];
    const fallback: Engine = {
      name: 'fallback',
      version: async () => 'fallback',
      models: () => ({ warm: [], loadable: ['sdxl', UPSCALE_MODEL_ID] }),
      close: async () => {},
      run: async (job, files) => {
        calls.push({ job, files });
        return { ok: true, images: [], engineSeconds: 0 };
      },
    };
    const e = engine({}, { fallback });
    // The upscaler the CLI engine has is claimable through this engine too; its models are not repeated.
    expect(e.models().loadable).toEqual(['sdxl', 'sd15', UPSCALE_MODEL_ID]);
    const files = { inputs: { initImage: '/j/init.png', mask: '/j/mask.png' }, output: '/j/original.png' };
    const jobs: EngineJob[] = [
      { kind: 'img2img', params: params(), count: 2, strength: 0.5 },
      { kind: 'inpaint', params: params(), count: 1, strength: 0.8 },
      { kind: 'upscale', scale: 2, source: { width: 64, height: 64 } },
    ];
    for (const job of jobs) await e.run(job, files, { timeoutMs: 1_000 });
    expect(calls).toEqual(jobs.map((job) => ({ job, files })));
    // None of them started a model server.
    expect(e.processGroups()).toEqual([]);
  });

  it('makes byte for byte the image the CLI makes for the same job', async () => {
    const served = await run(engine(), params({ seed: 5, negativePrompt: 'fog' }));
    const cliPath = output();
    const cli = await cliEngine().run(
      { kind: 'txt2img', params: params({ seed: 5, negativePrompt: 'fog' }), count: 1 },
      { inputs: {}, output: cliPath },
      { timeoutMs: 30_000 },
    );
    expect(served.outcome.ok && cli.ok).toBe(true);
    expect(readFileSync(served.path).equals(readFileSync(cliPath))).toBe(true);
  });

  it('cancels a job mid-run through the API; the server stays warm', async () => {
    const e = engine({ REFENGINE_STEP_MS: '100' });
    await run(e, params({ steps: 1 }));
    const pid = await serverPid(e);
    const stopper = new AbortController();
    const running = run(e, params({ steps: 40 }), { signal: stopper.signal });
    await expect.poll(() => e.models().warm.length).toBe(1);
    setTimeout(() => stopper.abort(), 600);
    const { outcome, events } = await running;
    expect(outcome).toMatchObject({ ok: false, code: 'CANCELLED', retryable: false });
    expect(events.at(-1)!.step).toBeLessThan(40);
    expect(e.processGroups()).toEqual([pid]);
    expect(groupExists(pid)).toBe(true);
    expect((await run(e, params({ steps: 2 }))).outcome.ok).toBe(true);
  });

  it('a server killed mid-job: the job fails as a retryable crash and the server is restarted', async () => {
    const e = engine({ REFENGINE_STEP_MS: '100' });
    await run(e, params({ steps: 1 }));
    const pid = await serverPid(e);
    const running = run(e, params({ steps: 40 }));
    setTimeout(() => process.kill(-pid, 'SIGKILL'), 500);
    const { outcome } = await running;
    expect(outcome).toMatchObject({ ok: false, code: 'CRASH', retryable: true });
    if (!outcome.ok) expect(outcome.detail).toContain('SIGKILL');
    await expect.poll(() => e.models().warm, { timeout: 15_000 }).toEqual(['sd15']);
    expect(e.processGroups()).not.toContain(pid);
    expect((await run(e, params({ steps: 2 }))).outcome.ok).toBe(true);
  });

  it('restarts an idle warm server that died, never one that cannot load its model', async () => {
    const e = engine();
    await e.prewarm(['sd15']);
    const pid = await serverPid(e);
    process.kill(-pid, 'SIGKILL');
    await expect.poll(() => e.processGroups().filter((p) => p !== pid).length, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => e.models().warm, { timeout: 15_000 }).toEqual(['sd15']);

    const broken = engine({}, { models: { sd15: { args: ['-m', join(dir, 'missing-model.safetensors')] } } });
    const { outcome } = await run(broken, params());
    expect(outcome).toMatchObject({ ok: false, code: 'ENGINE_ERROR' });
    if (!outcome.ok) expect(outcome.detail).toMatch(/while loading sd15: .*missing-model/);
    expect(broken.processGroups()).toEqual([]);
  });

  it('an out-of-memory fails the job as OOM and replaces the server', async () => {
    const e = engine({ REFENGINE_OOM_AT_STEP: '3' });
    const { outcome } = await run(e, params());
    expect(outcome).toMatchObject({ ok: false, code: 'OOM', retryable: true });
    if (!outcome.ok) expect(outcome.detail).toMatch(/out of memory|compute buffer/);
    await expect.poll(() => e.models().warm, { timeout: 15_000 }).toEqual(['sd15']);
  });

  it('a server that aborts (SIGABRT) fails the job as a crash', async () => {
    const { outcome } = await run(engine({ REFENGINE_ABORT_AT_STEP: '2' }), params());
    expect(outcome).toMatchObject({ ok: false, code: 'CRASH' });
    if (!outcome.ok) expect(outcome.detail).toContain('SIGABRT');
  });

  it('a hung server is killed at the job deadline (TIMEOUT) and replaced', async () => {
    const e = engine({ REFENGINE_HANG_AT_STEP: '3' });
    await run(e, params({ steps: 2 }));
    const pid = await serverPid(e);
    const { outcome } = await run(e, params(), { timeoutMs: 2_000 });
    expect(outcome).toMatchObject({ ok: false, code: 'TIMEOUT', retryable: true });
    await expect.poll(() => groupExists(pid), { timeout: 10_000 }).toBe(false);
    await expect.poll(() => e.models().warm, { timeout: 15_000 }).toEqual(['sd15']);
  });

  it('a model that loads past the deadline times the job out', async () => {
    const { outcome, loading } = await run(engine({}, { models: registry(5_000) }), params(), { timeoutMs: 1_000 });
    expect(loading).toBe(true);
    expect(outcome).toMatchObject({ ok: false, code: 'TIMEOUT' });
    if (!outcome.ok) expect(outcome.detail).toContain('model was loading');
  });

  it('keeps models within the GPU memory budget, unloading the least recently used', async () => {
    // 7000 + 2500 MB do not fit in 8000: each switch unloads the other.
    const e = engine({}, { gpuMemoryMb: 8000 });
    expect((await run(e, params({ model: 'sdxl', steps: 2 }))).loading).toBe(true);
    const sdxl = await serverPid(e);
    expect((await run(e, params({ model: 'sd15', steps: 2 }))).loading).toBe(true);
    expect(e.models().warm).toEqual(['sd15']);
    await expect.poll(() => groupExists(sdxl), { timeout: 10_000 }).toBe(false);

    // 10000 MB hold both.
    const roomy = engine({}, { gpuMemoryMb: 10_000 });
    await roomy.prewarm(['sdxl', 'sd15']);
    expect(roomy.models().warm.sort()).toEqual(['sd15', 'sdxl']);
    expect((await run(roomy, params({ model: 'sdxl', steps: 2 }))).loading).toBe(false);
  });

  it('evicts the least recently used model, not the first loaded, when a third does not fit', async () => {
    // Three models of 2500 MB in 5000 MB: two stay warm. The registry is the worker's own, so a
    // third id is as good as the product's two (the core type only knows those).
    const models: ModelRegistry = { ...registry(), extra: { ...registry().sd15!, memoryMb: 2500 } };
    models.sdxl = { ...models.sdxl!, memoryMb: 2500 };
    const e = engine({}, { gpuMemoryMb: 5000, models });
    const use = async (model: string) =>
      (await run(e, params({ model: model as EngineParams['model'], steps: 1 }))).loading;
    expect(await use('sdxl')).toBe(true);
    expect(await use('sd15')).toBe(true);
    // sdxl, loaded first, is used again: sd15 is now the least recently used.
    expect(await use('sdxl')).toBe(false);
    expect(await use('extra')).toBe(true);
    expect(e.models().warm.sort()).toEqual(['extra', 'sdxl']);
    expect(e.processGroups()).toHaveLength(2);
    expect(await use('sdxl')).toBe(false);
    // And now extra is the older of the two: sd15 coming back unloads it.
    expect(await use('sd15')).toBe(true);
    expect(e.models().warm.sort()).toEqual(['sd15', 'sdxl']);
  });

  it('a model larger than the GPU budget is not loadable; a job for it fails, starting nothing', async () => {
    const e = engine({}, { gpuMemoryMb: 4000 });
    expect(e.models().loadable).toEqual(['sd15']);
    const { outcome } = await run(e, params({ model: 'sdxl' }));
    expect(outcome).toMatchObject({ ok: false, code: 'ENGINE_ERROR' });
    expect(e.processGroups()).toEqual([]);
  });

  it('close() takes every server along', async () => {
    const e = engine({}, { gpuMemoryMb: 10_000 });
    await e.prewarm(['sdxl', 'sd15']);
    const pids = e.processGroups();
    expect(pids).toHaveLength(2);
    await e.close();
    for (const pid of pids) await expect.poll(() => groupExists(pid), { timeout: 10_000 }).toBe(false);
    expect(e.processGroups()).toEqual([]);
  });

  it('close() while a crashed server is being replaced leaves no server behind', async () => {
    // A model file of its own: any server still running for it afterwards is this test's leak.
    const model = join(dir, `replaced-${randomUUID()}.txt`);
    copyFileSync(REFERENCE_MODEL_FILE, model);
    const e = engine({ REFENGINE_ABORT_AT_STEP: '2' }, { models: { sd15: { args: ['-m', model] } } });
    const { outcome } = await run(e, params());
    expect(outcome).toMatchObject({ ok: false, code: 'CRASH' });
    // The replacement is on its way (finding a port) as the worker shuts down.
    await e.close();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(processesMentioning(model)).toEqual([]);
    expect(e.processGroups()).toEqual([]);
  });
});
