/**
 * Load on the live-event path, against one API process (apps/api/src/main.ts, as production
 * runs it) on its own redis-server, a fresh database and the embedded S3:
 *
 * 1. BENCH_WATCHERS (1,000) jobs are running (LEASE_SECONDS=600: setup is slow), each
 *    watched by its own WebSocket client (tRPC `generation.onJob`, Bearer session); simulated workers (this process, over HTTP)
 *    send a heartbeat with progress for every job each BENCH_HEARTBEAT_MS (5 s). Fan-out
 *    latency = the client receiving a progress event − its heartbeat being sent.
 *    The progress stream first runs BENCH_QUIET_SECONDS (10) alone: the live path's baseline.
 * 2. Then, with it, a steady BENCH_CREATES_PER_SECOND (100) `generation.create` calls for
 *    BENCH_SECONDS (60), sent on a fixed schedule (open loop, not waiting for answers).
 * 3. Then BENCH_IDLE_SOCKETS (10,000) authenticated WebSockets open on a fresh API process
 *    and stay idle; memory per idle socket = growth of its resident set from the first
 *    1,000 sockets to all of them ÷ 9,000.
 *
 * Goals: ≤ 30 KB per idle socket, fan-out p99 ≤ 50 ms, create p99 ≤ 150 ms. Ends with
 * `RESULT {"bytesPerSocket":…,"fanoutP99Ms":…,"createP99Ms":…}`.
 * Needs ~BENCH_IDLE_SOCKETS + 2,000 open files in this process and in the API: when the soft
 * limit (ulimit -n) is lower, the script restarts itself with it raised to the hard limit.
 *
 *   npm run bench:load
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createTRPCClient, createWSClient, httpLink, wsLink } from '@trpc/client';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { ClaimedJob, JobEvent } from '@pingvas/core';
import { freePort } from '@pingvas/local-services';
import { startRedisServer } from '@pingvas/testkit';
import type { SessionUser } from '../apps/api/src/context.js';
import type { AppRouter } from '../apps/api/src/app.router.js';
import type { WorkerRouter } from '../apps/api/src/modules/worker/worker.router.js';
import { signSession } from '../apps/api/src/modules/auth/session.js';
import { createTestApp, type TestApp } from '../apps/api/src/test/harness.js';
import { fundedUser, smallParams } from '../apps/api/src/test/factories.js';
import { benchCounts, benchFlag, childEnv } from './settings.js';

/** BENCH_QUIET_SECONDS: seconds of progress streaming without creates first, the live path's own baseline. */
const {
  BENCH_WATCHERS: WATCHERS,
  BENCH_HEARTBEAT_MS: HEARTBEAT_MS,
  BENCH_CREATES_PER_SECOND: CREATES_PER_SECOND,
  BENCH_SECONDS: SECONDS,
  BENCH_QUIET_SECONDS: QUIET_SECONDS,
  BENCH_IDLE_SOCKETS: IDLE_SOCKETS,
} = benchCounts({
  BENCH_WATCHERS: 1000,
  BENCH_HEARTBEAT_MS: 5000,
  BENCH_CREATES_PER_SECOND: 100,
  BENCH_SECONDS: 60,
  BENCH_QUIET_SECONDS: 10,
  BENCH_IDLE_SOCKETS: 10_000,
});
/** Pro users run 4 jobs at a time; the watched jobs are spread over this many. */
const JOBS_PER_WATCHED_USER = 4;
/** Idle sockets per user: a few tabs and devices each, under the API's per-user cap (WS_MAX_SOCKETS_PER_USER). */
const IDLE_SOCKETS_PER_USER = 8;
/** Pro users may have 100 jobs pending; the create stream is spread so nobody hits it. */
const CREATES_PER_USER = 90;

function ensureOpenFiles(): void {
  const needed = IDLE_SOCKETS + 2000;
  const soft = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (Number.isNaN(soft) || soft >= needed || benchFlag('BENCH_LOAD_REEXEC')) return;
  const hard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  if (hard !== 'unlimited' && Number(hard) < needed) {
    console.error(
      `bench:load needs ${needed} open files (ulimit -n); the hard limit is ${hard}: raise it, or set BENCH_IDLE_SOCKETS lower`,
    );
    process.exit(1);
  }
  console.log(`raising ulimit -n from ${soft} to ${hard} and restarting`);
  const args = [...process.execArgv, ...process.argv.slice(1)].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawnSync('sh', ['-c', `ulimit -n ${hard} && exec '${process.execPath}' ${args}`], {
    stdio: 'inherit',
    env: childEnv({ BENCH_LOAD_REEXEC: '1' }),
  });
  process.exit(child.status ?? 1);
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function note(reasons: Map<string, number>, error: unknown): void {
  const cause = (error as { cause?: { message?: string; code?: string } }).cause;
  const reason = `${(error as Error).message}${cause ? ` (${cause.code ?? cause.message ?? ''})` : ''}`.slice(0, 120);
  reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function residentBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

async function startApi(app: TestApp, redisUrl: string) {
  const port = await freePort();
  const { PATH, HOME } = childEnv();
  const env = {
    PATH,
    HOME,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    API_PORT: String(port),
    API_HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DISABLE_BACKGROUND: 'true',
    DATABASE_URL: app.database.runtimeUrl,
    REDIS_URL: redisUrl,
    S3_ENDPOINT: app.s3.endpoint,
    S3_BUCKET: app.s3.bucket,
    GENERATION_RATE_LIMIT: '1000000',
    // Setting up 1,000 running jobs takes a while on a busy machine; no lease may run out meanwhile.
    LEASE_SECONDS: '600',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}`);
    if (
      await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 600) throw new Error('the API did not start');
    await sleep(100);
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { base, pid: child.pid!, stop };
}

async function tokenFor(app: TestApp, user: SessionUser): Promise<string> {
  return signSession(app.config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, 3600);
}

function httpClient(base: string, token: string) {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${base}/trpc`, transformer: superjson, headers: { authorization: `Bearer ${token}` } })],
  });
}

function bearerSocket(token: string) {
  return class BearerWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { authorization: `Bearer ${token}` } });
    }
  };
}

/** Runs `task` over `items` with at most `concurrency` in flight. */
async function pool<T, R>(items: T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i]!, i);
      }
    }),
  );
  return results;
}

async function main() {
  ensureOpenFiles();
  const redis = await startRedisServer();
  const app = await createTestApp({ REDIS_URL: redis.url, GENERATION_RATE_LIMIT: '1000000', LOG_LEVEL: 'silent' });
  const api = await startApi(app, redis.url);
  const wsUrl = `${api.base.replace('http', 'ws')}/trpc`;
  const closers: (() => void)[] = [];
  try {
    const worker = createTRPCClient<WorkerRouter>({
      links: [
        httpLink({
          url: `${api.base}/internal/trpc`,
          transformer: superjson,
          headers: { authorization: `Bearer ${app.config.WORKER_TOKEN}` },
        }),
      ],
    });

    // 1. The watched jobs: created, claimed (running), each followed by its own WebSocket client.
    console.log(`setting up ${WATCHERS} running, watched jobs…`);
    const watchedUsers = await pool(Array.from({ length: Math.ceil(WATCHERS / JOBS_PER_WATCHED_USER) }), 8, () =>
      fundedUser(app, 'pro', 1_000_000),
    );
    const tokens = new Map<string, string>();
    for (const user of watchedUsers) tokens.set(user.id, await tokenFor(app, user));
    const created = await pool(Array.from({ length: WATCHERS }), 16, async (_, i) => {
      const user = watchedUsers[Math.floor(i / JOBS_PER_WATCHED_USER)]!;
      const { jobId } = await httpClient(api.base, tokens.get(user.id)!).generation.create.mutate(
        smallParams({ steps: 100 }),
      );
      return { jobId, user };
    });
    const sentAt = new Map<string, number>();
    const fanout: number[] = [];
    let subscribed = 0;
    for (const { jobId, user } of created) {
      const wsClient = createWSClient({
        url: wsUrl,
        WebSocket: bearerSocket(tokens.get(user.id)!) as unknown as typeof globalThis.WebSocket,
      });
      closers.push(() => wsClient.close());
      const client = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
      client.generation.onJob.subscribe(
        { jobId },
        {
          onData: (data) => {
            const event = data as JobEvent;
            if (event.type === 'snapshot') subscribed += 1;
            if (event.type !== 'progress') return;
            const at = sentAt.get(`${jobId}:${event.step}`);
            if (at !== undefined) fanout.push(performance.now() - at);
          },
        },
      );
    }
    while (subscribed < WATCHERS) await sleep(100);
    const claims: ClaimedJob[] = [];
    while (claims.length < WATCHERS) {
      const claimed = await pool(Array.from({ length: WATCHERS - claims.length }), 16, (_, i) =>
        worker.claim.mutate({ workerId: `load-${claims.length + i}`, engineVersion: 'bench', waitMs: 0 }),
      );
      const got = claimed.filter((c): c is ClaimedJob => c !== null);
      if (got.length === 0) throw new Error('claims returned nothing: the watched jobs did not all start');
      claims.push(...got);
    }

    console.log(
      `${WATCHERS} watchers subscribed; ${SECONDS} s of progress every ${HEARTBEAT_MS} ms per job and ${CREATES_PER_SECOND} creates/s`,
    );

    // 2. Progress heartbeats, spread evenly over the period, and the create stream.
    const creators = await pool(
      Array.from({ length: Math.ceil((CREATES_PER_SECOND * SECONDS) / CREATES_PER_USER) }),
      8,
      () => fundedUser(app, 'pro', 1_000_000),
    );
    const creatorClients = await Promise.all(
      creators.map(async (user) => httpClient(api.base, await tokenFor(app, user))),
    );
    let heartbeatErrors = 0;
    const heartbeatErrorReasons = new Map<string, number>();
    let step = 0;
    /** Every job sends one progress heartbeat per HEARTBEAT_MS, spread evenly, until `stop`. */
    const streamProgress = async (stop: number) => {
      while (Date.now() < stop) {
        step += 1;
        const round = Date.now();
        const roundStep = step;
        await Promise.all(
          claims.map(async (claimed, i) => {
            await sleep((i * HEARTBEAT_MS) / claims.length - (Date.now() - round));
            if (Date.now() >= stop) return;
            sentAt.set(`${claimed.job.id}:${roundStep}`, performance.now());
            await worker.heartbeat
              .mutate({
                jobId: claimed.job.id,
                leaseToken: claimed.lease.token,
                progress: { percent: roundStep % 100, step: roundStep, totalSteps: 100 },
              })
              .catch((error: unknown) => {
                heartbeatErrors += 1;
                note(heartbeatErrorReasons, error);
              });
          }),
        );
        await sleep(round + HEARTBEAT_MS - Date.now());
      }
    };

    // First the progress stream alone, for a baseline of the live path without create load.
    const cpu = (pid: number) => ({ wall: performance.now(), api: cpuSeconds(pid), bench: process.cpuUsage() });
    const share = (from: ReturnType<typeof cpu>, pid: number) => {
      const wall = (performance.now() - from.wall) / 1000;
      const bench = process.cpuUsage(from.bench);
      const pct = (seconds: number) => `${((seconds / wall) * 100).toFixed(0)} %`;
      return `API ${pct(cpuSeconds(pid) - from.api)} of a core, this process ${pct((bench.user + bench.system) / 1e6)}`;
    };
    const quietFrom = cpu(api.pid);
    await streamProgress(Date.now() + QUIET_SECONDS * 1000);
    const quietShare = share(quietFrom, api.pid);
    await sleep(1000);
    const quietFanout = fanout.splice(0);
    const loadFrom = cpu(api.pid);
    const heartbeats = streamProgress(Date.now() + SECONDS * 1000);

    const createLatencies: number[] = [];
    let createErrors = 0;
    const createErrorReasons = new Map<string, number>();
    const inFlight: Promise<void>[] = [];
    const start = performance.now();
    let answeredBy = 0;
    for (let i = 0; i < CREATES_PER_SECOND * SECONDS; i += 1) {
      await sleep(start + (i * 1000) / CREATES_PER_SECOND - performance.now());
      const client = creatorClients[i % creatorClients.length]!;
      const t = performance.now();
      inFlight.push(
        client.generation.create.mutate(smallParams()).then(
          () => {
            createLatencies.push(performance.now() - t);
            answeredBy = performance.now();
          },
          (error: unknown) => {
            createErrors += 1;
            note(createErrorReasons, error);
          },
        ),
      );
    }
    await Promise.all(inFlight);
    await heartbeats;
    const loadShare = share(loadFrom, api.pid);
    await sleep(500);

    // 3. Idle sockets, on a fresh API process: the loaded one's heap still holds the load's
    // garbage, which a collection would free in the middle of the measurement. The cost per
    // socket is the slope between a warm-up batch and the full count, not the total over a
    // baseline, so lazily built structures do not count against the sockets.
    for (const close of closers.splice(0)) close();
    await api.stop();
    const idleApi = await startApi(app, redis.url);
    const idleUrl = `${idleApi.base.replace('http', 'ws')}/trpc`;
    const idleUsers = await pool(Array.from({ length: Math.ceil(IDLE_SOCKETS / IDLE_SOCKETS_PER_USER) }), 8, () =>
      app.createUser({ tier: 'free' }),
    );
    const idleTokens = await Promise.all(idleUsers.map((user) => tokenFor(app, user)));
    const idle: WebSocket[] = [];
    let started = 0;
    const open = (count: number) =>
      pool(
        Array.from({ length: count }),
        64,
        () =>
          new Promise<void>((resolve, reject) => {
            const token = idleTokens[Math.floor(started++ / IDLE_SOCKETS_PER_USER)]!;
            const socket = new WebSocket(idleUrl, { headers: { authorization: `Bearer ${token}` } });
            socket.once('open', () => {
              idle.push(socket);
              resolve();
            });
            socket.once('error', reject);
          }),
      );
    const warmUp = Math.min(1000, Math.floor(IDLE_SOCKETS / 10));
    console.log(`opening ${IDLE_SOCKETS} idle WebSockets on a fresh API process…`);
    await open(warmUp);
    await sleep(5000);
    const before = residentBytes(idleApi.pid);
    await open(IDLE_SOCKETS - warmUp);
    await sleep(5000);
    const after = residentBytes(idleApi.pid);
    for (const socket of idle) socket.terminate();
    await idleApi.stop();

    for (const [reason, n] of heartbeatErrorReasons) console.log(`  ${n} heartbeats failed: ${reason}`);
    for (const [reason, n] of createErrorReasons) console.log(`  ${n} creates failed: ${reason}`);
    const q = stats(quietFanout);
    const f = stats(fanout);
    const ms = (x: { p50: number; p99: number; max: number }) =>
      `p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms, max ${x.max.toFixed(1)} ms`;
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const c = stats(createLatencies);
    const bytesPerSocket = Math.round((after - before) / (IDLE_SOCKETS - warmUp));
    console.log(`fan-out (heartbeat sent → client receives progress), without creates, ${q.n} events: ${ms(q)}`);
    console.log(
      `fan-out with ${CREATES_PER_SECOND} creates/s, ${f.n} events (${heartbeatErrors} heartbeats failed): ${ms(f)}`,
    );
    console.log('  (goal p99 ≤ 50 ms)');
    console.log(
      `CPU used: without creates ${quietShare}; with creates ${loadShare} (load average ${loadavg()[0]!.toFixed(1)})`,
    );
    const lastAnswer = ((answeredBy - start) / 1000).toFixed(0);
    console.log(
      `creates answered: ${c.n} of ${CREATES_PER_SECOND * SECONDS}, the last ${lastAnswer} s after the first was sent`,
    );
    console.log(`create under load, ${c.n} creates (${createErrors} errors): ${ms(c)}  (goal p99 ≤ 150 ms)`);
    console.log(
      `idle sockets: API resident set ${mib(before)} with ${warmUp} → ${mib(after)} with ${IDLE_SOCKETS} sockets:`,
    );
    console.log(`  ${(bytesPerSocket / 1024).toFixed(1)} KB per socket  (goal ≤ 30 KB)`);
    const result = { bytesPerSocket, fanoutP99Ms: Number(f.p99.toFixed(1)), createP99Ms: Number(c.p99.toFixed(1)) };
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    for (const close of closers) close();
    await api.stop().catch(() => undefined);
    await app.close();
    await redis.stop();
  }
}

await main();
