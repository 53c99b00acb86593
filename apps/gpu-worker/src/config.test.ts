import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_WORKER_TOKEN } from '@pingvas/core';
import { referenceEngine } from './test/reference-engine.js';
import { spawnWorker, type WorkerProcess } from './test/worker-process.js';
import {
  ConfigError,
  describeConfig,
  loadWorkerConfig,
  modelRegistryProblem,
  upscaleModelProblem,
  REFERENCE_ENGINE_BIN,
  REFERENCE_MODEL_FILE,
  REFERENCE_REGISTRY,
  REFERENCE_SERVER_BIN,
  WORKER_ENV_VARIABLES,
} from './config.js';

const scratch = mkdtempSync(join(tmpdir(), 'worker-config-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The one line a worker that refused to start printed on stderr. */
async function refusal(worker: WorkerProcess): Promise<string[]> {
  expect(await worker.exited).toMatchObject({ code: 1 });
  return (worker.logs.find((l) => l.msg === 'stderr')?.stderr as string).trim().split('\n');
}

/** Explicit development on loopback: the only environment that runs on development defaults. */
const DEV = { NODE_ENV: 'development', API_URL: 'http://127.0.0.1:3000' };

describe('worker config', () => {
  it('.env.example documents every variable the worker reads', () => {
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    expect(WORKER_ENV_VARIABLES.length).toBeGreaterThan(10);
    expect(WORKER_ENV_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('has working development defaults: the reference engine for every model, the dev token', () => {
    const config = loadWorkerConfig(DEV);
    expect(config).toMatchObject({
      apiUrl: 'http://127.0.0.1:3000',
      workerToken: DEV_WORKER_TOKEN,
      engineBin: REFERENCE_ENGINE_BIN,
      engineName: 'reference',
      engineModels: REFERENCE_REGISTRY,
      engineTimeoutMs: 3_600_000,
      concurrency: 1,
      statusPort: 9090,
    });
    expect(config.workerId).toMatch(new RegExp(`-${process.pid}$`));
    expect(config.engineModels.sdxl!.args).toEqual(['-m', REFERENCE_MODEL_FILE]);
    expect(modelRegistryProblem(config.engineModels)).toBeNull();
  });

  it('takes the upscale model from ENGINE_UPSCALE_MODEL, the stand-in only with the reference registry, and checks it', () => {
    expect(loadWorkerConfig(DEV).upscaleModel).toBe(REFERENCE_MODEL_FILE);
    const models = JSON.stringify({ sd15: { files: { model: REFERENCE_MODEL_FILE } } });
    expect(loadWorkerConfig({ ...DEV, ENGINE_MODELS: models }).upscaleModel).toBeUndefined();
    const esrgan = join(scratch, 'esrgan.pth');
    writeFileSync(esrgan, 'stand-in');
    expect(loadWorkerConfig({ ...DEV, ENGINE_MODELS: models, ENGINE_UPSCALE_MODEL: esrgan }).upscaleModel).toBe(esrgan);
    expect(upscaleModelProblem(esrgan)).toBeNull();
    expect(upscaleModelProblem(undefined)).toBeNull();
    expect(upscaleModelProblem(scratch)).toBe(
      `config: ENGINE_UPSCALE_MODEL ${scratch} does not exist or is not a file`,
    );
  });

  it('checks the registry against the disk: each model needs -m or --diffusion-model, every file must exist', () => {
    const vae = join(scratch, 'vae.safetensors');
    writeFileSync(vae, 'stand-in');
    expect(
      modelRegistryProblem({ sdxl: { args: ['--diffusion-model', REFERENCE_MODEL_FILE, '--vae', vae] } }),
    ).toBeNull();
    expect(modelRegistryProblem({ sdxl: { args: ['--vae', vae, '--vae-tiling'] } })).toBe(
      'config: ENGINE_MODELS sdxl has no model file (give files.model or files.diffusionModel, i.e. -m or --diffusion-model)',
    );
    expect(
      modelRegistryProblem({
        sd15: REFERENCE_REGISTRY.sd15!,
        sdxl: { args: ['-m', REFERENCE_MODEL_FILE, '--vae', join(scratch, 'gone.safetensors')] },
      }),
    ).toBe(`config: ENGINE_MODELS sdxl: --vae ${join(scratch, 'gone.safetensors')} does not exist or is not a file`);
    expect(modelRegistryProblem({ sdxl: { args: ['-m', scratch] } })).toMatch(/-m .* is not a file$/);
    expect(modelRegistryProblem({ sdxl: { args: ['-m'] } })).toBe('config: ENGINE_MODELS sdxl gives -m without a file');
  });

  it('reads the model registry: files become sd-cli flags, args follow as given', () => {
    const config = loadWorkerConfig({
      ...DEV,
      ENGINE_BIN: '/opt/sd/sd-cli',
      ENGINE_MODELS: JSON.stringify({
        sdxl: {
          files: { model: '/models/sdxl/main.safetensors', vae: '/models/sdxl/vae.safetensors' },
          args: ['--vae-tiling'],
        },
        sd15: { args: ['-m', '/models/sd15.safetensors'] },
      }),
    });
    expect(config.engineName).toBe('sd-cli');
    expect(config.engineModels).toEqual({
      sdxl: { args: ['-m', '/models/sdxl/main.safetensors', '--vae', '/models/sdxl/vae.safetensors', '--vae-tiling'] },
      sd15: { args: ['-m', '/models/sd15.safetensors'] },
    });
  });

  it('server mode: the server binary beside the engine, sizes and per-model env from the registry, a checked prewarm list', () => {
    expect(loadWorkerConfig(DEV)).toMatchObject({
      engineMode: 'cli',
      engineServerBin: REFERENCE_SERVER_BIN,
      gpuMemoryMb: 0,
      prewarm: [],
    });
    const config = loadWorkerConfig({
      ...DEV,
      ENGINE_MODE: 'server',
      ENGINE_BIN: '/opt/sd/sd-cli',
      WORKER_GPU_MEMORY_MB: '24000',
      ENGINE_PREWARM: 'sdxl, sd15',
      ENGINE_MODELS: JSON.stringify({
        sdxl: { files: { model: '/m/sdxl.safetensors' }, memoryMb: 7000, env: { GGML_CUDA_NO_VMM: '1' } },
        sd15: { files: { model: '/m/sd15.safetensors' } },
      }),
    });
    expect(config).toMatchObject({
      engineMode: 'server',
      engineServerBin: '/opt/sd/sd-cli-server',
      gpuMemoryMb: 24000,
      prewarm: ['sdxl', 'sd15'],
    });
    expect(config.engineModels).toEqual({
      sdxl: { args: ['-m', '/m/sdxl.safetensors'], memoryMb: 7000, env: { GGML_CUDA_NO_VMM: '1' } },
      sd15: { args: ['-m', '/m/sd15.safetensors'] },
    });
    expect(() => loadWorkerConfig({ ...DEV, ENGINE_PREWARM: 'sd3' })).toThrow(
      'config: ENGINE_PREWARM names sd3, which is not in ENGINE_MODELS',
    );
    expect(() => loadWorkerConfig({ ...DEV, ENGINE_MODE: 'daemon' })).toThrow(/^config: ENGINE_MODE /);
    const production = {
      NODE_ENV: 'production',
      WORKER_TOKEN: 'w'.repeat(64),
      ENGINE_MODELS: '{}',
      ENGINE_MODE: 'server',
    };
    expect(() => loadWorkerConfig(production)).toThrow(
      new ConfigError('config: ENGINE_SERVER_BIN is required in production with ENGINE_MODE=server'),
    );
  });

  it('names the variable in one line when one is bad', () => {
    const message = (env: NodeJS.ProcessEnv) => {
      try {
        loadWorkerConfig({ ...DEV, ...env });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('no error');
    };
    expect(message({ WORKER_CONCURRENCY: 'two' })).toMatch(/^config: WORKER_CONCURRENCY /);
    expect(message({ API_URL: 'not a url' })).toMatch(/^config: API_URL /);
    expect(message({ ENGINE_MODELS: '{sdxl' })).toMatch(/^config: ENGINE_MODELS must be JSON/);
    expect(message({ ENGINE_MODELS: '{"sdxl":{"files":{"checkpoint":"/x"}}}' })).toMatch(
      /^config: ENGINE_MODELS .*sdxl/,
    );
    expect(message({ NODE_ENV: 'production', ENGINE_MODELS: '{}' })).toMatch(/^config: WORKER_TOKEN is unset: /);
    expect(message({ NODE_ENV: 'production', WORKER_TOKEN: 't'.repeat(32) })).toMatch(
      /^config: ENGINE_MODELS is unset: /,
    );
  });

  it('refuses development defaults unless development is explicit and the API is on loopback, one line each', () => {
    const lines = (env: NodeJS.ProcessEnv) => {
      try {
        loadWorkerConfig(env);
        return [];
      } catch (error) {
        return (error as Error).message.split('\n');
      }
    };
    expect(lines({})).toEqual([
      expect.stringMatching(/^config: WORKER_TOKEN is unset/),
      expect.stringMatching(/^config: ENGINE_MODELS is unset/),
    ]);
    expect(lines({ NODE_ENV: 'development', API_URL: 'https://api.example.com' })).toHaveLength(2);
    expect(lines({ WORKER_TOKEN: 'short', ENGINE_MODELS: '{}', API_URL: 'http://127.0.0.1:3000' })).toEqual([
      'config: WORKER_TOKEN must be at least 32 characters',
    ]);
    expect(lines({ WORKER_TOKEN: 'w'.repeat(32), ENGINE_MODELS: '{}' })).toEqual([]);
    expect(lines({ NODE_ENV: 'development', API_URL: 'http://localhost:3000' })).toEqual([]);
  });

  it('never logs the token', () => {
    expect(
      JSON.stringify(describeConfig(loadWorkerConfig({ ...DEV, WORKER_TOKEN: 'secret-token-123' }))),
    ).not.toContain('secret-token-123');
  });

  it('stops the process with one line naming the variable', async () => {
    expect(await refusal(spawnWorker({ WORKER_CONCURRENCY: '0' }))).toEqual([
      expect.stringMatching(/^config: WORKER_CONCURRENCY /),
    ]);
  });

  it('stops at start, with one line naming it, when a registry file is missing (sd-cli would only warn about a VAE)', async () => {
    const missingVae = join(scratch, 'sdxl-vae-missing.safetensors');
    const worker = spawnWorker({
      ENGINE_MODELS: JSON.stringify({ sdxl: { files: { model: REFERENCE_MODEL_FILE, vae: missingVae } } }),
    });
    expect(await refusal(worker)).toEqual([
      `config: ENGINE_MODELS sdxl: --vae ${missingVae} does not exist or is not a file`,
    ]);
  });

  it('starts on a build without --version (before December 2025), naming it by the first line of --help', async () => {
    const oldSd = join(scratch, 'sd');
    // Such a build refuses --version as an unknown argument and prints its usage first on --help.
    writeFileSync(
      oldSd,
      [
        '#!/bin/sh',
        'if [ "$1" = "--help" ]; then echo "usage: sd [arguments] (stable-diffusion.cpp master-320)"; exit 0; fi',
        `echo "[ERROR] main.cpp:300  - error: unknown argument: $1" >&2; exit 1`,
      ].join('\n'),
    );
    chmodSync(oldSd, 0o755);
    const worker = spawnWorker({ ENGINE_BIN: oldSd, API_URL: 'http://127.0.0.1:9' });
    try {
      await expect.poll(() => worker.logs.find((l) => l.msg === 'worker started'), { timeout: 30_000 }).toBeDefined();
      expect(worker.logs.find((l) => l.msg === 'worker started')).toMatchObject({
        engineVersion: 'usage: sd [arguments] (stable-diffusion.cpp master-320)',
      });
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });

  it('reports the reference engine by its --version line', async () => {
    referenceEngine();
    const worker = spawnWorker({ API_URL: 'http://127.0.0.1:9' });
    try {
      await expect.poll(() => worker.logs.find((l) => l.msg === 'worker started'), { timeout: 30_000 }).toBeDefined();
      expect(worker.logs.find((l) => l.msg === 'worker started')?.engineVersion).toMatch(
        /^stable-diffusion\.cpp version refengine-\S+, commit reference \(reference engine — no model\)$/,
      );
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });

  describe('refuses to start outside explicit development (NODE_ENV unset, a public API_URL)', () => {
    const production = {
      NODE_ENV: undefined as unknown as string,
      API_URL: 'https://studio.example.com',
      WORKER_TOKEN: 'w'.repeat(32),
      ENGINE_MODELS: '{}',
    };
    it.each([
      ['WORKER_TOKEN unset', { WORKER_TOKEN: '' }, /^config: WORKER_TOKEN is unset: /],
      [
        'a short WORKER_TOKEN',
        { WORKER_TOKEN: 'w'.repeat(31) },
        /^config: WORKER_TOKEN must be at least 32 characters$/,
      ],
      [
        'WORKER_TOKEN set to the repository token',
        { WORKER_TOKEN: DEV_WORKER_TOKEN },
        /^config: WORKER_TOKEN is the development value from the repository$/,
      ],
      ['ENGINE_MODELS unset (the reference engine)', { ENGINE_MODELS: '' }, /^config: ENGINE_MODELS is unset: /],
    ])('%s → exit 1 with its line', async (_name, env, line) => {
      const worker = spawnWorker({ ...production, ...env });
      expect(await worker.exited).toMatchObject({ code: 1 });
      const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(line)]);
    });
  });

  it('stops with one line when the engine cannot run', async () => {
    expect(await refusal(spawnWorker({ ENGINE_BIN: '/nonexistent/sd-cli' }))).toEqual([
      expect.stringMatching(/^config: ENGINE_BIN \/nonexistent\/sd-cli cannot run/),
    ]);
  });
});
