/**
 * The GPU worker's own overhead, against the real API (fastify on loopback, with the
 * embedded S3 server in its process, as `npm start` runs them), PostgreSQL and Redis; the
 * worker is its own process (`tsx src/main.ts`), as in production, with the reference engine.
 * Figures come from the worker's JSON log (LOG_LEVEL=debug).
 *
 * (a) finish overhead: from the engine's exit to the API acknowledging `worker.complete`
 *     (read the PNG, make the 256 px WebP thumbnail, PUT both to their presigned URLs,
 *     complete) for a 1024×1024 image. Jobs are created one at a time, so nothing else runs
 *     beside the finish being measured. Goal: p50 ≤ 150 ms.
 * (b) busy ratio: a queue kept full of jobs whose engine takes about 2 s
 *     (REFENGINE_STEP_MS), one worker slot; the engine's own seconds over the wall time
 *     from the first engine start to the last engine exit. Claiming the next job while the
 *     engine finishes the last one is what keeps the gaps short. Goal: ≥ 97%.
 *
 *   npm run bench:worker        (BENCH_FINISH_JOBS=30, BENCH_BUSY_JOBS=15 to change)
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { withSystem } from '@pingvas/db';
import { createTestApp, type TestApp } from '../apps/api/src/test/harness.js';
import { buildServer } from '../apps/api/src/server.js';
import { grant } from '../apps/api/src/modules/credits/ledger.js';
import type { SessionUser } from '../apps/api/src/context.js';
import { spawnWorker, type WorkerProcess } from '../apps/gpu-worker/src/test/worker-process.js';
import { benchCounts } from './settings.js';

const { BENCH_FINISH_JOBS: FINISH_JOBS, BENCH_BUSY_JOBS: BUSY_JOBS } = benchCounts({
  BENCH_FINISH_JOBS: 30,
  BENCH_BUSY_JOBS: 15,
});
const WARMUP = 3;

type LogLine = Record<string, unknown> & { msg?: string; jobId?: string; time?: number };

function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function until(check: () => boolean, what: string, worker: WorkerProcess, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last log lines: ${JSON.stringify(worker.logs.slice(-5))}`);
    if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${JSON.stringify(worker.logs.slice(-5))}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function settledLine(worker: WorkerProcess, jobId: string): LogLine | undefined {
  return (worker.logs as LogLine[]).find(
    (l) => l.jobId === jobId && typeof l.msg === 'string' && l.msg.startsWith('job ') && 'finishMs' in l,
  );
}

async function payingUser(app: TestApp): Promise<SessionUser> {
  const user = await app.createUser({ tier: 'pro' });
  await withSystem(app.deps.db, (tx) =>
    grant(tx, {
      userId: user.id,
      key: `bench:${randomUUID()}`,
      type: 'purchase',
      bucket: 'purchased',
      amount: 1_000_000,
    }),
  );
  return user;
}

async function stop(worker: WorkerProcess): Promise<void> {
  worker.child.kill('SIGTERM');
  await worker.exited;
}

async function main() {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../apps/gpu-worker/reference-engine/build.mjs', import.meta.url)), '--quiet'],
    { stdio: 'inherit' },
  );
  const app = await createTestApp({ GENERATION_RATE_LIMIT: '100000' });
  const server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const env = {
    API_URL: `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    WORKER_TOKEN: app.config.WORKER_TOKEN,
    LOG_LEVEL: 'debug',
  };
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  try {
    // (a) finish overhead, 1024×1024
    {
      const user = await payingUser(app);
      const worker = spawnWorker({ ...env, WORKER_ID: 'bench-finish' });
      const finish: number[] = [];
      const store: number[] = [];
      const complete: number[] = [];
      for (let i = 0; i < WARMUP + FINISH_JOBS; i++) {
        const { jobId } = await app.callerFor(user).generation.create({
          prompt: `a harbour at dawn, number ${i}`,
          model: 'sd15',
          width: 1024,
          height: 1024,
          steps: 2,
          cfgScale: 7,
          seed: i,
        });
        await until(() => settledLine(worker, jobId) !== undefined, `job ${jobId}`, worker);
        const line = settledLine(worker, jobId)!;
        if (line.result !== 'completed') throw new Error(`job ${jobId} ended ${JSON.stringify(line)}`);
        if (i < WARMUP) continue;
        finish.push(line.finishMs as number);
        store.push(line.storeMs as number);
        complete.push(line.completeMs as number);
      }
      await stop(worker);
      console.log(
        `(a) finish overhead, 1024×1024, engine exit → complete acknowledged, ${FINISH_JOBS} jobs (goal p50 ≤ 150 ms):`,
      );
      console.log(
        `    p50 ${fmt(percentile(finish, 0.5))}   p99 ${fmt(percentile(finish, 0.99))}   min ${fmt(Math.min(...finish))}`,
      );
      console.log(
        `    thumbnail + both uploads p50 ${fmt(percentile(store, 0.5))}; worker.complete p50 ${fmt(percentile(complete, 0.5))}`,
      );
    }

    // (b) busy ratio, a full queue of ~2 s jobs
    {
      const user = await payingUser(app);
      const jobIds: string[] = [];
      for (let i = 0; i < BUSY_JOBS; i++) {
        const { jobId } = await app.callerFor(user).generation.create({
          prompt: `a quiet garden, number ${i}`,
          model: 'sd15',
          width: 256,
          height: 256,
          steps: 10,
          cfgScale: 7,
          seed: i,
        });
        jobIds.push(jobId);
      }
      const worker = spawnWorker({ ...env, WORKER_ID: 'bench-busy', REFENGINE_STEP_MS: '190' });
      await until(() => jobIds.every((id) => settledLine(worker, id) !== undefined), 'the busy jobs', worker);
      await stop(worker);
      const logs = worker.logs as LogLine[];
      const notDone = jobIds.map((id) => settledLine(worker, id)!).filter((l) => l.result !== 'completed');
      if (notDone.length) throw new Error(`${notDone.length} jobs did not complete: ${JSON.stringify(notDone[0])}`);
      const starts = logs.filter((l) => l.msg === 'engine starting').map((l) => l.time!);
      const exits = logs.filter((l) => l.msg === 'engine exited');
      const inside = exits.reduce((sum, l) => sum + (l.engineSeconds as number), 0);
      const wall = (exits.at(-1)!.time! - starts[0]!) / 1000;
      const gaps = starts.slice(1).map((start, i) => start - exits[i]!.time!);
      console.log(
        `(b) busy ratio, ${BUSY_JOBS} jobs of ${(inside / exits.length).toFixed(2)} s engine time each, 1 slot (goal ≥ 97%):`,
      );
      console.log(
        `    ${((inside / wall) * 100).toFixed(2)} % of ${wall.toFixed(2)} s inside the engine; engine exit → next engine start p50 ${percentile(gaps, 0.5)} ms, max ${Math.max(...gaps)} ms`,
      );
    }
    console.log(
      `load average at end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    const closing = server.close();
    server.server.closeAllConnections();
    await closing;
    await app.close();
  }
}

await main();
