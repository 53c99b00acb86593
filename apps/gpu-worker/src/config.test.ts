import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnWorker } from './test/worker-process.js';
import { ConfigError, describeConfig, loadWorkerConfig, REFERENCE_ENGINE_BIN, WORKER_ENV_VARIABLES } from './config.js';

describe('worker config', () => {
  it('.env.example documents every variable the worker reads', () => {
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    expect(WORKER_ENV_VARIABLES.length).toBeGreaterThan(10);
    expect(WORKER_ENV_VARIABLES.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('has working development defaults: the reference engine for every model, the dev token', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({
      apiUrl: 'http://127.0.0.1:3000',
      workerToken: 'dev-only-worker-token',
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
        loadWorkerConfig(env);
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
    expect(message({ NODE_ENV: 'production', ENGINE_MODELS: '{}' })).toBe('config: WORKER_TOKEN is required in production');
    expect(message({ NODE_ENV: 'production', WORKER_TOKEN: 't' })).toBe('config: ENGINE_MODELS is required in production');
  });

  it('never logs the token', () => {
    expect(JSON.stringify(describeConfig(loadWorkerConfig({ WORKER_TOKEN: 'secret-token-123' })))).not.toContain('secret-token-123');
  });

  it('stops the process with one line naming the variable', async () => {
    const worker = spawnWorker({ WORKER_CONCURRENCY: '0' });
    expect(await worker.exited).toMatchObject({ code: 1 });
    const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config: WORKER_CONCURRENCY /)]);
  });

  it('stops with one line when the engine cannot run', async () => {
    const worker = spawnWorker({ ENGINE_BIN: '/nonexistent/sd-cli' });
    expect(await worker.exited).toMatchObject({ code: 1 });
    const stderr = worker.logs.find((l) => l.msg === 'stderr')?.stderr as string;
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^config: ENGINE_BIN \/nonexistent\/sd-cli cannot run/)]);
  });
});
