/**
 * Dispatch latency: the time from `generation.create` returning to an idle worker's
 * `worker.claim` (a long poll) returning that job, over real HTTP against a real API
 * server (apps/api/src/main.ts in a child process), PostgreSQL, Redis and embedded S3 (the
 * testkit's own, thrown away after; S3 and the clients share this process).
 * N workers long-poll /internal/trpc; one user creates jobs one at a time through /trpc;
 * the worker that got a job uploads and completes it while the next create goes out, so
 * every create meets at least N−1 idle workers. A claim can return before the create's own response does
 * (the job is queued before the API answers); such samples count as 0 ms.
 * Then create throughput: C concurrent clients, several users, no workers.
 *
 *   npm run bench:dispatch     (BENCH_JOBS=1000, BENCH_WORKERS=4, BENCH_CREATES=1000, BENCH_CONCURRENCY=16)
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createTRPCClient, httpLink } from '@trpc/client';
import superjson from 'superjson';
import type { ClaimedJob } from '@pingvas/core';
import { freePort } from '@pingvas/local-services';
import type { SessionUser } from '../apps/api/src/context.js';
import type { AppRouter } from '../apps/api/src/app.router.js';
import { signSession } from '../apps/api/src/modules/auth/session.js';
import { createWorkerApi } from '../apps/gpu-worker/src/api-client.js';
import { createTestApp, type TestApp } from '../apps/api/src/test/harness.js';
import { fundedUser, pngOf, smallParams, uploadResult } from '../apps/api/src/test/factories.js';
import { benchCounts, childEnv } from './settings.js';

const {
  BENCH_JOBS: JOBS,
  BENCH_WORKERS: WORKERS,
  BENCH_CREATES: CREATES,
  BENCH_CONCURRENCY: CONCURRENCY,
} = benchCounts({ BENCH_JOBS: 1000, BENCH_WORKERS: 4, BENCH_CREATES: 1000, BENCH_CONCURRENCY: 16 });
const WARMUP = 20;

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted.at(-1)!,
    mean: samples.reduce((s, x) => s + x, 0) / samples.length,
  };
}

async function userClient(app: TestApp, base: string, user: SessionUser) {
  const token = await signSession(
    app.config.SESSION_SECRET,
    { userId: user.id, sessionVersion: user.sessionVersion },
    3600,
  );
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${base}/trpc`,
        transformer: superjson,
        headers: { cookie: `pingvas_session=${token}`, 'x-pingvas-csrf': '1' },
      }),
    ],
  });
}

/** The API as production runs it (main.ts), in its own process, on the test app's services. */
async function startApi(app: TestApp) {
  const port = await freePort();
  const env = {
    ...childEnv(),
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    API_PORT: String(port),
    API_HOST: '127.0.0.1',
    DISABLE_BACKGROUND: 'true',
    DATABASE_URL: app.database.runtimeUrl,
    REDIS_URL: app.redis.url,
    REDIS_PREFIX: app.redis.prefix,
    S3_ENDPOINT: app.s3.endpoint,
    S3_BUCKET: app.s3.bucket,
    GENERATION_RATE_LIMIT: '1000000',
    MUTATION_RATE_LIMIT: '1000000',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}`);
    const up = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (i > 300) throw new Error('the API did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    base,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function main() {
  const app = await createTestApp({ GENERATION_RATE_LIMIT: '1000000', LOG_LEVEL: 'silent' });
  const api = await startApi(app);
  const base = api.base;
  const stop = new AbortController();
  try {
    // The GPU worker's own client: one stop signal serves every claim without gathering listeners.
    const worker = createWorkerApi({ apiUrl: base, workerToken: app.config.WORKER_TOKEN });

    // jobId → when the claim returned it, or the callback waiting for that moment.
    const claimedAt = new Map<string, number>();
    const waiting = new Map<string, (at: number) => void>();
    const loops = Array.from({ length: WORKERS }, (_, n) =>
      (async () => {
        while (!stop.signal.aborted) {
          let claimed: ClaimedJob | null;
          try {
            claimed = await worker.claim.mutate(
              { workerId: `bench-${n}`, engineVersion: 'bench', waitMs: 20_000 },
              { signal: stop.signal },
            );
          } catch (err) {
            if (stop.signal.aborted) return;
            throw err;
          }
          if (!claimed) continue;
          const at = performance.now();
          const waiter = waiting.get(claimed.job.id);
          if (waiter) waiter(at);
          else claimedAt.set(claimed.job.id, at);
          await uploadResult(app, claimed);
          await worker.complete.mutate({
            jobId: claimed.job.id,
            leaseToken: claimed.lease.token,
            engineSeconds: 1,
            images: [{ width: 512, height: 512, bytes: pngOf(512, 512).length }],
            engine: 'bench',
          });
        }
      })(),
    );

    const user = await fundedUser(app, 'pro', (JOBS + WARMUP) * 10);
    const client = await userClient(app, base, user);
    const latencies: number[] = [];
    let early = 0;
    for (let i = 0; i < JOBS + WARMUP; i += 1) {
      const { jobId } = await client.generation.create.mutate(smallParams());
      const returned = performance.now();
      const claimed = claimedAt.get(jobId) ?? (await new Promise<number>((resolve) => waiting.set(jobId, resolve)));
      claimedAt.delete(jobId);
      waiting.delete(jobId);
      if (i < WARMUP) continue;
      if (claimed <= returned) early += 1;
      latencies.push(Math.max(0, claimed - returned));
    }
    const s = stats(latencies);
    console.log(`dispatch latency, ${JOBS} jobs, ${WORKERS} idle long-polling workers (HTTP both ways):`);
    console.log(
      `  p50 ${s.p50.toFixed(2)} ms   p90 ${s.p90.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms   max ${s.max.toFixed(2)} ms   mean ${s.mean.toFixed(2)} ms`,
    );
    console.log(`  claimed before create's response arrived: ${early} of ${JOBS} (counted as 0 ms)`);

    stop.abort();
    await Promise.allSettled(loops);

    const users = await Promise.all(Array.from({ length: 20 }, () => fundedUser(app, 'pro', 100_000)));
    const clients = await Promise.all(users.map((u) => userClient(app, base, u)));
    let next = 0;
    const createLatencies: number[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, c) => {
        while (next < CREATES) {
          const i = next++;
          const t = performance.now();
          await clients[(i + c) % clients.length]!.generation.create.mutate(smallParams());
          createLatencies.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const cs = stats(createLatencies);
    console.log(`create throughput, ${CREATES} creates, ${CONCURRENCY} concurrent clients over ${users.length} users:`);
    console.log(
      `  ${(CREATES / seconds).toFixed(0)} creates/s   latency p50 ${cs.p50.toFixed(2)} ms   p99 ${cs.p99.toFixed(2)} ms`,
    );
  } finally {
    stop.abort();
    await api.stop();
    await app.close();
  }
}

await main();
