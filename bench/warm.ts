/**
 * Warm engines and model-aware dispatch, against the real API (fastify on loopback with the
 * embedded S3 server), PostgreSQL and Redis: 4 workers (in this process, each with its own
 * engine), 200 jobs (60% SDXL, 40% SD 1.5; pro and starter users), in three modes:
 *
 *   (a) cli       one engine process per job: every job loads its model first;
 *   (b) warm      one sd-server per warm model (a GPU holds one model), plain queue order;
 *   (c) affinity  the same servers, and claims that prefer a job whose model is warm;
 *   (d) prewarmed (c) on a fleet that pre-warmed at start (ENGINE_PREWARM: two workers SDXL, two
 *                 SD 1.5, as an operator splits a fleet by demand), i.e. (c) without the first loads
 *                 that a real worker pays once in its lifetime but this 1-minute run pays 4 times.
 *
 * Load and sampling times are scaled down from a real GPU in the same proportions (SDXL load
 * ≈ 2× its sampling time, SD 1.5 ≈ 2.5×) and are sleeps (REFENGINE_LOAD_MS, REFENGINE_STEP_MS)
 * on tiny images, so that the machine's cores are not what is measured.
 * Reported per mode: the share of the workers' wall time spent sampling (first to last
 * denoising step of each job, summed, over 4 × the mode's wall time), jobs per minute, and the
 * p50/p95 wait (create → claim) per tier. Goals: (c) sampling share ≥ 90% and ≥ 2.5× the jobs
 * per minute of (a); pro p95 wait ≤ starter p95 wait in every mode. (d) is reported beside (c).
 *
 *   npm run bench:warm          (BENCH_WARM_JOBS=200 to change the count; BENCH_WARM_MODES=affinity
 *                               runs only the modes named, without the RESULT line)
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { withSystem } from '@pingvas/db';
import type { EngineJob } from '@pingvas/core';
import { createTestApp, type TestApp } from '../apps/api/src/test/harness.js';
import { buildServer } from '../apps/api/src/server.js';
import { grant } from '../apps/api/src/modules/credits/ledger.js';
import type { SessionUser } from '../apps/api/src/context.js';
import { createWorkerApi } from '../apps/gpu-worker/src/api-client.js';
import {
  REFERENCE_ENGINE_BIN,
  REFERENCE_MODEL_FILE,
  REFERENCE_SERVER_BIN,
  type ModelRegistry,
} from '../apps/gpu-worker/src/config.js';
import { CliEngine } from '../apps/gpu-worker/src/engines/cli-engine.js';
import type { Engine, EngineJobFiles, EngineOutcome, EngineRunOptions } from '../apps/gpu-worker/src/engines/engine.js';
import { ServerEngine } from '../apps/gpu-worker/src/engines/server-engine.js';
import { Worker } from '../apps/gpu-worker/src/worker.js';
import { benchCounts, benchList } from './settings.js';

const { BENCH_WARM_JOBS: JOBS } = benchCounts({ BENCH_WARM_JOBS: 200 });
const WORKERS = 4;
const STEPS = 20;
/** Per step and per load (ms): SDXL samples 20 × 60 ms = 1.2 s, loads 2.4 s (2×); SD 1.5 0.8 s and 2.0 s (2.5×). */
const TIMES = { sdxl: { stepMs: 60, loadMs: 2400 }, sd15: { stepMs: 40, loadMs: 2000 } } as const;
/** One model at a time fits: 7000 + 2500 MB > 8000 MB. */
const GPU_MEMORY_MB = 8000;
/** The affinity bound, scaled like the times (15 s on a GPU where SDXL samples in about 5 s). */
const MAX_DELAY_SECONDS = 3;

type Mode = 'cli' | 'warm' | 'affinity' | 'prewarmed';
/** (d)'s fleet: what each worker loads at start. */
const PREWARM = [['sdxl'], ['sdxl'], ['sd15'], ['sd15']] as const;

/** The reference engine reads both times from its environment, which the registry sets per model. */
const timesEnv = (id: keyof typeof TIMES) => ({
  REFENGINE_LOAD_MS: String(TIMES[id].loadMs),
  REFENGINE_STEP_MS: String(TIMES[id].stepMs),
});
const registry: ModelRegistry = {
  sdxl: { args: ['-m', REFERENCE_MODEL_FILE], memoryMb: 7000, env: timesEnv('sdxl') },
  sd15: { args: ['-m', REFERENCE_MODEL_FILE], memoryMb: 2500, env: timesEnv('sd15') },
};

/** Records each job's sampling span (first to last step) and, for mode (b), hides the warm models from the claim. */
class MeasuredEngine implements Engine {
  samplingSeconds = 0;
  /** Jobs that waited for a model load (server modes; the CLI loads for every job). */
  loads = 0;

  constructor(
    private readonly inner: Engine,
    private readonly reportWarm: boolean,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  version(): Promise<string> {
    return this.inner.version();
  }

  models() {
    const models = this.inner.models();
    return this.reportWarm ? models : { warm: [], loadable: models.loadable };
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async prewarm(models: readonly string[]): Promise<void> {
    if (this.inner instanceof ServerEngine) await this.inner.prewarm([...models]);
  }

  async run(job: EngineJob, files: EngineJobFiles, options: EngineRunOptions): Promise<EngineOutcome> {
    let first: number | null = null;
    let last = 0;
    const outcome = await this.inner.run(job, files, {
      ...options,
      onModelLoading: () => {
        this.loads += 1;
        options.onModelLoading?.();
      },
      onProgress: (progress) => {
        const now = performance.now();
        // The first event ends the first step: the span starts one step earlier.
        first ??= now - (progress.secondsPerStep ?? 0) * 1000 * progress.step;
        last = now;
        options.onProgress?.(progress);
      },
    });
    if (first !== null) this.samplingSeconds += (last - first) / 1000;
    return outcome;
  }
}

function percentile(samples: number[], q: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function user(app: TestApp, tier: 'pro' | 'starter'): Promise<SessionUser> {
  const created = await app.createUser({ tier });
  await withSystem(app.deps.db, (tx) =>
    grant(tx, {
      userId: created.id,
      key: `bench:${randomUUID()}`,
      type: 'purchase',
      bucket: 'purchased',
      amount: 1_000_000,
    }),
  );
  return created;
}

interface ModeResult {
  mode: Mode;
  wallSeconds: number;
  samplingShare: number;
  jobsPerMin: number;
  loads: number;
  wait: Record<'pro' | 'starter', { p50: number; p95: number }>;
}

async function runMode(app: TestApp, apiUrl: string, mode: Mode): Promise<ModeResult> {
  const engines = Array.from({ length: WORKERS }, () => {
    const cli = new CliEngine({
      bin: REFERENCE_ENGINE_BIN,
      name: 'reference',
      models: registry,
      progressIntervalMs: 0,
    });
    const inner: Engine =
      mode === 'cli'
        ? cli
        : new ServerEngine({
            bin: REFERENCE_SERVER_BIN,
            name: 'reference',
            models: registry,
            gpuMemoryMb: GPU_MEMORY_MB,
            fallback: cli,
            progressIntervalMs: 0,
          });
    return new MeasuredEngine(inner, mode === 'affinity' || mode === 'prewarmed');
  });
  const workers = await Promise.all(
    engines.map(
      async (engine, i) =>
        new Worker({
          api: createWorkerApi({ apiUrl, workerToken: app.config.WORKER_TOKEN }),
          engine,
          engineVersion: await engine.version(),
          workerId: `bench-${mode}-${i}`,
          concurrency: 1,
          engineTimeoutMs: 600_000,
          claimWaitMs: 2_000,
          logger: pino({ level: 'silent' }),
        }),
    ),
  );

  if (mode === 'prewarmed') await Promise.all(engines.map((engine, i) => engine.prewarm(PREWARM[i]!)));

  // 40% of the jobs are pro, spread over users so that no plan's concurrency limit is what waits.
  const pros = await Promise.all(Array.from({ length: 10 }, () => user(app, 'pro')));
  const starters = await Promise.all(Array.from({ length: 20 }, () => user(app, 'starter')));
  // A fixed interleaving: 3 of every 5 jobs SDXL, 2 of every 5 pro.
  const plan = Array.from({ length: JOBS }, (_, i) => ({
    model: i % 5 < 3 ? ('sdxl' as const) : ('sd15' as const),
    owner: (i * 3) % 5 < 2 ? pros[i % pros.length]! : starters[i % starters.length]!,
  }));

  // The whole burst is queued first: the workers' time is then theirs, not the job creation's.
  const jobIds: string[] = [];
  for (const { model, owner } of plan) {
    // The smallest size the API takes: the engine's own work stays well inside each step's sleep.
    jobIds.push(
      (
        await app.callerFor(owner).generation.create({
          prompt: `bench ${mode} ${randomUUID()}`,
          model,
          width: 256,
          height: 256,
          steps: STEPS,
          cfgScale: 7,
        })
      ).jobId,
    );
  }
  const startedAt = performance.now();
  for (const worker of workers) worker.start();
  for (;;) {
    const [row] = await app.database.admin<{ open: number; failed: number }[]>`
      select count(*) filter (where status in ('pending', 'in_progress'))::int as open,
             count(*) filter (where status = 'failed')::int as failed
      from generation_jobs where id = any(${jobIds})`;
    if (row!.open === 0) {
      if (row!.failed > 0) console.warn(`  ${row!.failed} jobs failed in mode ${mode}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const wallSeconds = (performance.now() - startedAt) / 1000;
  await Promise.all(workers.map((w) => w.stop(0)));
  await Promise.all(engines.map((e) => e.close()));

  const rows = await app.database.admin<{ tier: 'pro' | 'starter'; wait: number }[]>`
    select u.tier, extract(epoch from (j.started_at - j.created_at))::float8 as wait
    from generation_jobs j join users u on u.id = j.user_id where j.id = any(${jobIds})`;
  const waits = (tier: 'pro' | 'starter') => rows.filter((r) => r.tier === tier).map((r) => r.wait);
  const sampling = engines.reduce((sum, e) => sum + e.samplingSeconds, 0);
  return {
    mode,
    wallSeconds,
    samplingShare: sampling / (WORKERS * wallSeconds),
    jobsPerMin: (JOBS / wallSeconds) * 60,
    loads: mode === 'cli' ? JOBS : engines.reduce((sum, e) => sum + e.loads, 0),
    wait: {
      pro: { p50: percentile(waits('pro'), 0.5), p95: percentile(waits('pro'), 0.95) },
      starter: { p50: percentile(waits('starter'), 0.5), p95: percentile(waits('starter'), 0.95) },
    },
  };
}

async function main() {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../apps/gpu-worker/reference-engine/build.mjs', import.meta.url)), '--quiet'],
    { stdio: 'inherit' },
  );
  const app = await createTestApp({
    GENERATION_RATE_LIMIT: '100000',
    DISPATCH_AFFINITY_MAX_DELAY_SECONDS: String(MAX_DELAY_SECONDS),
    DISPATCH_AFFINITY_WINDOW: '50',
  });
  const server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const apiUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `${JOBS} jobs, ${WORKERS} workers; SDXL ${STEPS}×${TIMES.sdxl.stepMs} ms + load ${TIMES.sdxl.loadMs} ms, ` +
      `SD 1.5 ${STEPS}×${TIMES.sd15.stepMs} ms + load ${TIMES.sd15.loadMs} ms; affinity bound ${MAX_DELAY_SECONDS} s`,
  );
  const results: ModeResult[] = [];
  try {
    const modes = benchList('BENCH_WARM_MODES', ['cli', 'warm', 'affinity', 'prewarmed']) as Mode[];
    for (const mode of modes) {
      const result = await runMode(app, apiUrl, mode);
      results.push(result);
      const w = result.wait;
      console.log(
        `(${mode}) ${result.wallSeconds.toFixed(1)} s: sampling share ${(result.samplingShare * 100).toFixed(1)}%, ` +
          `${result.jobsPerMin.toFixed(1)} jobs/min, ${result.loads} model loads; ` +
          `wait p50/p95 pro ${w.pro.p50.toFixed(1)}/${w.pro.p95.toFixed(1)} s, ` +
          `starter ${w.starter.p50.toFixed(1)}/${w.starter.p95.toFixed(1)} s`,
      );
    }
  } finally {
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
    await app.close();
  }
  if (results.length < 4) return;
  const [cli, warm, affinity, prewarmed] = results as [ModeResult, ModeResult, ModeResult, ModeResult];
  const round = (n: number, d = 3) => Number(n.toFixed(d));
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `goals: affinity share ≥ 0.90 (${round(affinity.samplingShare)}; pre-warmed ${round(prewarmed.samplingShare)}), ` +
      `affinity ≥ 2.5× cli jobs/min ` +
      `(${round(affinity.jobsPerMin / cli.jobsPerMin, 2)}×), pro p95 ≤ starter p95 in every mode ` +
      `(${results.every((r) => r.wait.pro.p95 <= r.wait.starter.p95)})`,
  );
  console.log(
    `RESULT ${JSON.stringify({
      cliShare: round(cli.samplingShare),
      warmShare: round(warm.samplingShare),
      affinityShare: round(affinity.samplingShare),
      cliJobsPerMin: round(cli.jobsPerMin, 1),
      warmJobsPerMin: round(warm.jobsPerMin, 1),
      affinityJobsPerMin: round(affinity.jobsPerMin, 1),
      prewarmedShare: round(prewarmed.samplingShare),
      prewarmedJobsPerMin: round(prewarmed.jobsPerMin, 1),
      proP95WaitS: Object.fromEntries(results.map((r) => [r.mode, round(r.wait.pro.p95, 2)])),
      starterP95WaitS: Object.fromEntries(results.map((r) => [r.mode, round(r.wait.starter.p95, 2)])),
    })}`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
