import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineJob, EngineParams } from '@pingvas/core';
import { groupExists, processesMentioning, referenceEngine } from '../test/reference-engine.js';
import { REFERENCE_REGISTRY } from '../config.js';
import { classifyFailure, CliEngine } from './cli-engine.js';
import type { EngineOutcome, EngineProgress } from './engine.js';

let bin: string;
let dir: string;
let n = 0;
/** A fresh job folder, as the worker makes one per job. */
const output = () => {
  const jobDir = join(dir, `job-${++n}`);
  mkdirSync(jobDir);
  return join(jobDir, 'original.png');
};

beforeAll(() => {
  bin = referenceEngine();
  dir = mkdtempSync(join(tmpdir(), 'cli-engine-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const txt2img = (p: EngineParams, count = 1): EngineJob => ({ kind: 'txt2img', params: p, count });
const files = (path: string) => ({ inputs: {}, output: path });

const params = (over: Partial<EngineParams> = {}): EngineParams => ({
  prompt: 'a small red house by a lake',
  model: 'sd15',
  width: 256,
  height: 256,
  steps: 8,
  cfgScale: 7,
  seed: 99,
  sampler: 'euler_a',
  ...over,
});

function engine(
  env: Record<string, string> = {},
  options: { bin?: string; progressIntervalMs?: number; models?: Record<string, { args: string[] }> } = {},
) {
  return new CliEngine({
    bin: options.bin ?? bin,
    name: 'reference',
    models: options.models ?? REFERENCE_REGISTRY,
    env,
    progressIntervalMs: options.progressIntervalMs,
  });
}

async function run(
  e: CliEngine,
  p: EngineParams,
  extra: {
    signal?: AbortSignal;
    timeoutMs?: number;
    onProgress?: (p: EngineProgress) => void;
    onModelLoading?: () => void;
  } = {},
): Promise<{ outcome: EngineOutcome; path: string }> {
  const path = output();
  const outcome = await e.run(txt2img(p), files(path), {
    timeoutMs: extra.timeoutMs ?? 30_000,
    signal: extra.signal,
    onProgress: extra.onProgress,
    onModelLoading: extra.onModelLoading,
  });
  return { outcome, path };
}

/** Finds the engine by its unique output path while it runs: its pid is its process group. */
async function engineGroup(path: string): Promise<number> {
  let pids: number[] = [];
  await expect.poll(() => (pids = processesMentioning(path)).length, { timeout: 10_000 }).toBeGreaterThan(0);
  return Math.min(...pids);
}

describe('CliEngine against the reference engine', () => {
  it('reports the engine version', async () => {
    expect(await engine().version()).toMatch(
      /^stable-diffusion\.cpp version refengine-\S+, commit reference \(reference engine — no model\)$/,
    );
  });

  it('maps the job to sd-cli flags after the model registry entry', () => {
    const e = new CliEngine({
      bin,
      name: 'sd-cli',
      models: { sdxl: { args: ['-m', '/models/sdxl/main.safetensors'] } },
    });
    expect(
      e.commandFor(txt2img(params({ model: 'sdxl', negativePrompt: 'blur', sampler: 'dpm++2m', cfgScale: 4.5 })), {
        inputs: {},
        output: '/tmp/o.png',
      }),
    ).toHaveProperty('args', [
      '-m',
      '/models/sdxl/main.safetensors',
      '-p',
      'a small red house by a lake',
      '-n',
      'blur',
      '-W',
      '256',
      '-H',
      '256',
      '--steps',
      '8',
      '--cfg-scale',
      '4.5',
      '-s',
      '99',
      '--sampling-method',
      'dpm++2m',
      '-o',
      '/tmp/o.png',
    ]);
    expect(e.commandFor(txt2img(params({ model: 'sd15' })), files('/tmp/o.png'))).toEqual({
      refused: 'model sd15 is not installed on this worker (it has: sdxl)',
    });
  });

  it('produces the image with its size and engine seconds, and progress in order ending at 100%', async () => {
    const events: EngineProgress[] = [];
    const { outcome, path } = await run(engine({ REFENGINE_STEP_MS: '40' }), params({ steps: 12 }), {
      onProgress: (p) => events.push(p),
    });
    expect(outcome).toMatchObject({ ok: true, images: [{ path, width: 256, height: 256 }] });
    if (!outcome.ok) return;
    expect(outcome.images[0]!.bytes).toBeGreaterThan(100);
    expect(outcome.engineSeconds).toBeGreaterThanOrEqual(12 * 0.04);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(12);
    const steps = events.map((e) => e.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
    expect(events.at(-1)).toMatchObject({ percent: 100, step: 12, totalSteps: 12 });
    expect(events.every((e) => e.totalSteps === 12 && e.secondsPerStep! > 0)).toBe(true);
  });

  it('says the model is loading once, before the first step (sd-cli loads its weights on every run)', async () => {
    const events: string[] = [];
    await run(engine({ REFENGINE_LOAD_MS: '200' }, { progressIntervalMs: 0 }), params({ steps: 3 }), {
      onModelLoading: () => events.push('loading'),
      onProgress: (p) => events.push(`step ${p.step}`),
    });
    expect(events).toEqual(['loading', 'step 1', 'step 2', 'step 3']);
  });

  it('passes every step on when they are slower than the throttle', async () => {
    const events: EngineProgress[] = [];
    await run(engine({}, { progressIntervalMs: 0 }), params({ steps: 5 }), { onProgress: (p) => events.push(p) });
    expect(events.map((e) => [e.step, e.percent])).toEqual([
      [1, 20],
      [2, 40],
      [3, 60],
      [4, 80],
      [5, 100],
    ]);
  });

  it('classifies an out-of-memory exit as OOM, retryable', async () => {
    const { outcome } = await run(engine({ REFENGINE_OOM_AT_STEP: '3' }), params());
    expect(outcome).toMatchObject({ ok: false, code: 'OOM', retryable: true });
    if (!outcome.ok) expect(outcome.detail).toMatch(/out of memory|compute buffer/);
  });

  it('classifies SIGABRT as a crash, retryable', async () => {
    const { outcome } = await run(engine({ REFENGINE_ABORT_AT_STEP: '2' }), params());
    expect(outcome).toMatchObject({ ok: false, code: 'CRASH', retryable: true });
    if (!outcome.ok) expect(outcome.detail).toContain('SIGABRT');
  });

  it('kills a hung engine at the timeout, with its whole process group', async () => {
    const e = engine({ REFENGINE_HANG_AT_STEP: '3' });
    const path = output();
    const running = e.run(txt2img(params()), files(path), { timeoutMs: 2_000 });
    const pgid = await engineGroup(path);
    const outcome = await running;
    expect(outcome).toMatchObject({ ok: false, code: 'TIMEOUT', retryable: true });
    expect(outcome.engineSeconds).toBeGreaterThanOrEqual(1.9);
    expect(() => process.kill(-pgid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('kills what the engine started too (a wrapper with a background child)', async () => {
    const wrapper = join(dir, 'wrapper.sh');
    // A stand-in for an engine that leaves a helper process running beside it.
    writeFileSync(wrapper, `#!/bin/sh\nsleep 300 &\nexec "${bin}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    const e = engine({ REFENGINE_HANG_AT_STEP: '2' }, { bin: wrapper });
    const path = output();
    const running = e.run(txt2img(params()), files(path), { timeoutMs: 1_500 });
    const pgid = await engineGroup(path);
    expect((await running).ok).toBe(false);
    // The orphaned `sleep` is reaped by init; the group is gone once it has been.
    await expect.poll(() => groupExists(pgid), { timeout: 10_000 }).toBe(false);
  });

  it('does not wait on a helper the engine left running after it exited', async () => {
    const wrapper = join(dir, 'leaves-helper.sh');
    // The helper keeps the engine's stdout open; without killing the group, 'close' would wait for it.
    writeFileSync(wrapper, `#!/bin/sh\nsleep 300 &\n"${bin}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    const { outcome, path } = await run(engine({}, { bin: wrapper }), params(), { timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ ok: true, images: [{ path }] });
    expect(outcome.engineSeconds).toBeLessThan(20);
  });

  it('stops on cancel mid-run and reports the engine seconds used', async () => {
    const controller = new AbortController();
    const e = engine({ REFENGINE_STEP_MS: '200' });
    const path = output();
    const running = e.run(txt2img(params({ steps: 50 })), files(path), {
      timeoutMs: 60_000,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step >= 2) controller.abort('cancel');
      },
    });
    const pgid = await engineGroup(path);
    const outcome = await running;
    expect(outcome).toMatchObject({ ok: false, code: 'CANCELLED', retryable: false });
    expect(outcome.engineSeconds).toBeGreaterThanOrEqual(0.4);
    expect(outcome.engineSeconds).toBeLessThan(50 * 0.2);
    expect(groupExists(pgid)).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  it('does not start when already cancelled', async () => {
    const { outcome } = await run(engine(), params(), { signal: AbortSignal.abort('cancel') });
    expect(outcome).toMatchObject({ ok: false, code: 'CANCELLED', engineSeconds: 0 });
  });

  it('treats exit 0 without an image, or exit 1 with a failed save (as sd-cli: INFO lines only), as bad output', async () => {
    const missing = await run(engine({ REFENGINE_NO_OUTPUT: '1' }), params());
    expect(missing.outcome).toMatchObject({ ok: false, code: 'BAD_OUTPUT', retryable: true });
    const failedSave = await run(engine({ REFENGINE_PRINT_FAILURE: '1' }), params());
    expect(failedSave.outcome).toMatchObject({
      ok: false,
      code: 'BAD_OUTPUT',
      detail: 'the engine could not save the image (exit 1)',
    });
  });

  it('counts a successful run as a success even when its output mentions running out of memory', async () => {
    const wrapper = join(dir, 'recovers-from-oom.sh');
    // What --auto-fit prints when it retries a VAE decode with tiling, and what -v adds; the run still succeeds.
    writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        'echo "[ERROR] ggml_extend.hpp:73   - ggml_backend_cuda_buffer_type_alloc_buffer: allocating 9000.00 MiB on device 0: cudaMalloc failed: out of memory" >&2',
        'echo "[DEBUG] stable-diffusion.cpp:4100 - vae decode out of memory, retrying with tiling"',
        `exec "${bin}" "$@"`,
      ].join('\n'),
    );
    chmodSync(wrapper, 0o755);
    const { outcome, path } = await run(engine({}, { bin: wrapper }), params());
    expect(outcome).toMatchObject({ ok: true, images: [{ path, width: 256, height: 256 }] });
  });

  it('takes the cause of an engine error from its [ERROR] line, also when --color wraps the tag in ANSI codes', async () => {
    const absent = join(dir, 'absent-coloured.safetensors');
    const { outcome } = await run(engine({}, { models: { sd15: { args: ['-m', absent, '--color'] } } }), params());
    expect(outcome).toMatchObject({
      ok: false,
      code: 'ENGINE_ERROR',
      detail: `engine exited with 1: [ERROR] stable-diffusion.cpp:715  - init model loader from file failed: '${absent}'`,
    });
  });

  it('decides a failure by its exit first and its text second', () => {
    const oom =
      '[ERROR] ggml_extend.hpp:73   - ggml_backend_cuda_buffer_type_alloc_buffer: cudaMalloc failed: out of memory';
    expect(classifyFailure(null, 'SIGABRT', '', 'CUDA error: out of memory\n', 3)).toMatchObject({
      code: 'OOM',
      engineSeconds: 3,
    });
    expect(classifyFailure(1, null, '', oom, 1)).toMatchObject({ code: 'OOM' });
    expect(classifyFailure(null, 'SIGSEGV', '', '', 1)).toMatchObject({
      code: 'CRASH',
      detail: 'engine crashed (SIGSEGV)',
    });
    expect(classifyFailure(null, 'SIGKILL', '', '', 1)).toMatchObject({
      code: 'CRASH',
      detail: 'engine was killed (SIGKILL)',
    });
    const saveFailed =
      "[INFO ] main.cpp:490  - save result image 0 to '/x/o.png' (failure)\n[INFO ] main.cpp:562  - 0/1 images saved\n";
    expect(classifyFailure(1, null, saveFailed, '', 1)).toMatchObject({ code: 'BAD_OUTPUT' });
    expect(classifyFailure(1, null, '', '', 1)).toMatchObject({
      code: 'ENGINE_ERROR',
      detail: 'engine exited with 1: no message',
    });
    expect(
      classifyFailure(1, null, '', '[ERROR] common.cpp:325  - error: unknown argument: --fa\n[ERROR] other\n', 1),
    ).toMatchObject({
      code: 'ENGINE_ERROR',
      detail: 'engine exited with 1: [ERROR] common.cpp:325  - error: unknown argument: --fa',
    });
  });

  it('treats a file that is not a PNG, or of the wrong size, as bad output', async () => {
    const fake = join(dir, 'fake-engine.sh');
    // Honours the contract's exit status and save line, but writes what it is told to the -o path.
    writeFileSync(
      fake,
      [
        '#!/bin/sh',
        'while [ "$1" != "-o" ]; do shift; done',
        'if [ -n "$FAKE_FILE" ]; then cp "$FAKE_FILE" "$2"; else printf "GIF89a, not a PNG at all" > "$2"; fi',
        `echo "[INFO ] main.cpp:1 - save result image 0 to '$2' (success)"`,
      ].join('\n'),
    );
    chmodSync(fake, 0o755);
    const notPng = await run(engine({}, { bin: fake }), params());
    expect(notPng.outcome).toMatchObject({ ok: false, code: 'BAD_OUTPUT' });

    const real = await run(engine(), params());
    expect(real.outcome.ok).toBe(true);
    const wrongSize = await run(engine({ FAKE_FILE: real.path }, { bin: fake }), params({ width: 320 }));
    expect(wrongSize.outcome).toMatchObject({ ok: false, code: 'BAD_OUTPUT' });
    if (!wrongSize.outcome.ok) expect(wrongSize.outcome.detail).toContain('256×256');
  });

  it('fails a model the registry lacks, or whose files are missing, as an engine error', async () => {
    const { outcome: unknown } = await run(
      engine({}, { models: { sdxl: REFERENCE_REGISTRY.sdxl! } }),
      params({ model: 'sd15' }),
    );
    expect(unknown).toMatchObject({ ok: false, code: 'ENGINE_ERROR' });
    if (!unknown.ok) expect(unknown.detail).toContain('sd15 is not installed');
    const { outcome: missing } = await run(
      engine({}, { models: { sd15: { args: ['-m', join(dir, 'absent.safetensors')] } } }),
      params(),
    );
    expect(missing).toMatchObject({ ok: false, code: 'ENGINE_ERROR' });
    if (!missing.ok) expect(missing.detail).toMatch(/exited with 1/);
  });

  it('takes its engines along when the worker process exits unexpectedly', async () => {
    const marker = join(dir, 'orphan-check', 'original.png');
    const script = fileURLToPath(new URL('../test/exit-mid-run.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, bin, marker], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toContain('uncaught on purpose');
    expect(code).toBe(1);
    expect(processesMentioning(marker)).toEqual([]);
  });
});
