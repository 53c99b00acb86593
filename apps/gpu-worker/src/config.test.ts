import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnWorker } from './test/worker-process.js';
import { DEV_WORKER_TOKEN } from '@pingvas/core';
import { ConfigError, describeConfig, loadWorkerConfig, REFERENCE_ENGINE_BIN, WORKER_ENV_VARIABLES } from './config.js';

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
      engineModels: { sdxl: { args: [] }, sd15: { args: [] } },
      engineTimeoutMs: 300_000,
      concurrency: 1,
      statusPort: 9090,
    });
    expect(config.workerId).toMatch(new RegExp(`-${process.pid}$`));
  });

  it('reads the model registry: files become sd-cli flags, args follow as given', () => {
    const config = loadWorkerConfig({
      ...DEV,
      ENGINE_BIN: '/opt/sd/sd-cli',
      ENGINE_MODELS: JSON.stringify({
        sdxl: { files: { model: '/models/sdxl/main.safetensors', vae: '/models/sdxl/vae.safetensors' }, args: ['--vae-tiling'] },
        sd15: { args: ['-m', '/models/sd15.safetensors'] },
      }),
    });
    expect(config.engineName).toBe('sd-cli');
    expect(config.engineModels).toEqual({
      sdxl: { args: ['-m', '/models/sdxl/main.safetensors', '--vae', '/models/sdxl/vae.safetensors', '--vae-tiling'] },
      sd15: { args: ['-m', '/models/sd15.safetensors'] },
    });
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
    expect(message({ ENGINE_MODELS: '{"sdxl":{"files":{"checkpoint":"/x"}}}' })).toMatch(/^config: ENGINE_MODELS .*sdxl/);
    expect(message({ NODE_ENV: 'production', ENGINE_MODELS: '{}' })).toMatch(/^config: WORKER_TOKEN is unset: /);
    expect(message({ NODE_ENV: 'production', WORKER_TOKEN: 't'.repeat(32) })).toMatch(/^config: ENGINE_MODELS is unset: /);
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
    expect(lines({})).toEqual([expect.stringMatching(/^config: WORKER_TOKEN is unset/), expect.stringMatching(/^config: ENGINE_MODELS is unset/)]);
    expect(lines({ NODE_ENV: 'development', API_URL: 'https://api.example.com' })).toHaveLength(2);
    expect(lines({ WORKER_TOKEN: 'short', ENGINE_MODELS: '{}', API_URL: 'http://127.0.0.1:3000' }))
      .toEqual(['config: WORKER_TOKEN must be at least 32 characters']);
    expect(lines({ WORKER_TOKEN: 'w'.repeat(32), ENGINE_MODELS: '{}' })).toEqual([]);
    expect(lines({ NODE_ENV: 'development', API_URL: 'http://localhost:3000' })).toEqual([]);
  });

  it('never logs the token', () => {
    expect(JSON.stringify(describeConfig(loadWorkerConfig({ ...DEV, WORKER_TOKEN: 'secret-token-123' })))).not.toContain('secret-token-123');
  });

  it('stops the process with one line naming the variable', async () => {
    const worker = spawnWorker({ WORKER_CONCURRENCY: '0' });
    expect(await worker.exited).toMatchObject({ code: 1 });
    const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config: WORKER_CONCURRENCY /)]);
  });

  describe('refuses to start outside explicit development (NODE_ENV unset, a public API_URL)', () => {
    const production = { NODE_ENV: undefined as unknown as string, API_URL: 'https://studio.example.com', WORKER_TOKEN: 'w'.repeat(32), ENGINE_MODELS: '{}' };
    it.each([
      ['WORKER_TOKEN unset', { WORKER_TOKEN: '' }, /^config: WORKER_TOKEN is unset: /],
      ['a short WORKER_TOKEN', { WORKER_TOKEN: 'w'.repeat(31) }, /^config: WORKER_TOKEN must be at least 32 characters$/],
      ['ENGINE_MODELS unset (the reference engine)', { ENGINE_MODELS: '' }, /^config: ENGINE_MODELS is unset: /],
    ])('%s → exit 1 with its line', async (_name, env, line) => {
      const worker = spawnWorker({ ...production, ...env });
      expect(await worker.exited).toMatchObject({ code: 1 });
      const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(line)]);
    });
  });

  it('stops with one line when the engine cannot run', async () => {
    const worker = spawnWorker({ ENGINE_BIN: '/nonexistent/sd-cli' });
    expect(await worker.exited).toMatchObject({ code: 1 });
    const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config: ENGINE_BIN \/nonexistent\/sd-cli cannot run/)]);
  });
});
