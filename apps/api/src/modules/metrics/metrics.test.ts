import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import superjson from 'superjson';
import WebSocket from 'ws';
import { withSystem } from '@pingvas/db';
import { buildServer } from '../../server.js';
import { signSession } from '../auth/session.js';
import { grant } from '../credits/ledger.js';
import { fundedUser, smallParams } from '../../test/factories.js';
import { claim, completeClaimed, settleAll } from '../generation/generation.test-support.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { createMetrics } from './metrics.js';
import { tierScoreBands } from './collectors.js';

let app: TestApp;
let server: FastifyInstance;

beforeAll(async () => {
  // Finished-job counts re-read on every scrape, so figures can be checked exactly; the cache has its own test.
  app = await createTestApp({ GENERATION_RATE_LIMIT: '1000', METRICS_FINISHED_JOBS_TTL_SECONDS: '0' });
  server = await buildServer(app.deps);
});
afterAll(async () => {
  await server.close();
  await app.close();
});
afterEach(async () => {
  // Checked while leftover jobs are live too: settling first would hide a live job that lost its hold.
  await expectLedgerInvariants(app.database.admin);
  await settleAll(app);
  await expectLedgerInvariants(app.database.admin);
});

/** The Prometheus text of one scrape, read as `name{labels}` → value. */
async function scrape(target = server, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await target.inject({ method: 'GET', url: '/metrics', headers });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    const match = line.match(/^([a-z_:][\w:]*(?:\{.*\})?) (\S+)$/i);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

const ledger = (s: Map<string, number>, operation: string, outcome: string) =>
  s.get(`pingvas_ledger_operations_total{operation="${operation}",outcome="${outcome}"}`) ?? 0;

async function jobsInDb(): Promise<Record<string, number>> {
  const rows = await app.database.admin`select status, count(*)::int as n from generation_jobs group by status`;
  return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
}

describe('/metrics', () => {
  it('reports queue depth per tier, jobs by state, durations and ledger operations as they are', async () => {
    const before = await scrape();
    const pro = await fundedUser(app, 'pro', 1000);
    const starter = await fundedUser(app, 'starter', 1000);
    const free = await fundedUser(app, 'free', 1000);
    const broke = await app.createUser({ tier: 'free' });
    for (let i = 0; i < 2; i++) await app.callerFor(pro).generation.create(smallParams());
    await app.callerFor(starter).generation.create(smallParams());
    const freeJobs = [];
    for (let i = 0; i < 3; i++) freeJobs.push(await app.callerFor(free).generation.create(smallParams()));
    await expect(app.callerFor(broke).generation.create(smallParams())).rejects.toMatchObject({
      code: 'PAYMENT_REQUIRED',
    });
    await app.callerFor(free).generation.cancel({ jobId: freeJobs[0]!.jobId });
    // A replayed grant: same key twice.
    for (let i = 0; i < 2; i++) {
      await withSystem(app.deps.db, (tx) =>
        grant(tx, {
          userId: free.id,
          key: `metrics-test:${free.id}`,
          type: 'adjustment',
          bucket: 'purchased',
          amount: 5,
        }),
      );
    }
    const claimed = (await claim(app))!;
    expect(claimed.job.userId).toBe(pro.id);
    await completeClaimed(app, claimed, 6);
    await claim(app); // the other pro job is now running

    const after = await scrape();
    // Queue: pro 2 − 2 claimed, starter 1, free 3 − 1 cancelled; and the bands cover the whole queue.
    expect(after.get('pingvas_queue_depth{tier="pro"}')).toBe(0);
    expect(after.get('pingvas_queue_depth{tier="starter"}')).toBe(1);
    expect(after.get('pingvas_queue_depth{tier="free"}')).toBe(2);
    expect(await app.deps.redis.zcard(app.deps.keys.queue)).toBe(3);

    const db = await jobsInDb();
    expect(db).toEqual({ pending: 3, in_progress: 1, completed: 1, cancelled: 1 });
    for (const state of ['pending', 'in_progress', 'completed', 'failed', 'cancelled']) {
      expect(after.get(`pingvas_jobs{state="${state}"}`), state).toBe(db[state] ?? 0);
    }
    expect(after.get('pingvas_metrics_collector_up{collector="queue"}')).toBe(1);
    expect(after.get('pingvas_metrics_collector_up{collector="jobs"}')).toBe(1);

    expect(after.get('pingvas_engine_duration_seconds_count')).toBe(1);
    expect(after.get('pingvas_engine_duration_seconds_sum')).toBe(6);
    expect(after.get('pingvas_job_duration_seconds_count')).toBe(1);
    const [row] = await app.database.admin`
      select extract(epoch from finished_at - created_at)::float8 as seconds from generation_jobs where id = ${claimed.job.id}`;
    // Observed once the completion committed, so never less than finished_at − created_at (ms precision).
    expect(after.get('pingvas_job_duration_seconds_sum')).toBeGreaterThanOrEqual(Number(row!.seconds) - 0.001);

    const moved = (operation: string, outcome: string) =>
      ledger(after, operation, outcome) - ledger(before, operation, outcome);
    expect(moved('hold', 'applied')).toBe(6);
    expect(moved('hold', 'refused')).toBe(1);
    expect(moved('capture', 'applied')).toBe(1);
    expect(moved('release', 'applied')).toBe(1);
    expect(moved('grant', 'applied')).toBe(4); // three fundings and the first adjustment
    expect(moved('grant', 'replayed')).toBe(1);
  });

  it('re-reads finished-job counts only once they are older than METRICS_FINISHED_JOBS_TTL_SECONDS', async () => {
    const caching = await buildServer({
      ...app.deps,
      config: { ...app.config, METRICS_FINISHED_JOBS_TTL_SECONDS: 300 },
    });
    try {
      const user = await fundedUser(app, 'pro', 1000);
      await app.callerFor(user).generation.create(smallParams());
      const completedBefore = (await scrape(caching)).get('pingvas_jobs{state="completed"}')!;
      expect(completedBefore).toBe((await jobsInDb()).completed ?? 0);
      await completeClaimed(app, (await claim(app))!, 3);

      const cached = await scrape(caching);
      expect(cached.get('pingvas_jobs{state="completed"}')).toBe(completedBefore);
      expect(cached.get('pingvas_jobs{state="pending"}')).toBe(0); // live states are always exact
      expect((await scrape()).get('pingvas_jobs{state="completed"}')).toBe(completedBefore + 1);
    } finally {
      await caching.close();
    }
  });

  it('counts finished jobs once per period for all replicas: the others report the shared count', async () => {
    const { redis, keys } = app.deps;
    await redis.del(keys.metricsFinishedJobs, keys.lock('metrics:finished_jobs'));
    const replica = () =>
      buildServer({
        ...app.deps,
        metrics: createMetrics(),
        config: { ...app.config, METRICS_FINISHED_JOBS_TTL_SECONDS: 300 },
      });
    const [a, b] = await Promise.all([replica(), replica()]);
    try {
      const user = await fundedUser(app, 'pro', 1000);
      await app.callerFor(user).generation.create(smallParams());
      const counted = (await scrape(a)).get('pingvas_jobs{state="completed"}')!;
      expect(counted).toBe((await jobsInDb()).completed ?? 0);
      await completeClaimed(app, (await claim(app))!, 3);
      // B never counted for itself (its own registry is new): it reports A's count of this period.
      expect((await scrape(b)).get('pingvas_jobs{state="completed"}')).toBe(counted);

      // The period is over but another replica holds its lock (is recounting): report the last count, do not scan.
      await redis.set(keys.metricsFinishedJobs, JSON.stringify({ readAt: 0, counts: [['completed', 999]] }));
      await redis.set(keys.lock('metrics:finished_jobs'), 'elsewhere', 'PX', 60_000);
      expect((await scrape(b)).get('pingvas_jobs{state="completed"}')).toBe(999);
      // Once the lock lapses, the next scrape recounts and shares the result.
      await redis.del(keys.lock('metrics:finished_jobs'));
      expect((await scrape(a)).get('pingvas_jobs{state="completed"}')).toBe(counted + 1);
      expect((await scrape(b)).get('pingvas_jobs{state="completed"}')).toBe(counted + 1);
      expect(await redis.pttl(keys.lock('metrics:finished_jobs'))).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('leaves a gauge empty and says so when its source is down, still answering the rest', async () => {
    const offline = await buildServer({
      ...app.deps,
      keys: { ...app.deps.keys, queue: app.deps.keys.runningCounts },
      metrics: createMetrics(),
    });
    await app.deps.redis.hset(app.deps.keys.runningCounts, 'x', 1); // a hash: ZCOUNT on it fails (WRONGTYPE)
    try {
      const s = await scrape(offline);
      expect(s.get('pingvas_metrics_collector_up{collector="queue"}')).toBe(0);
      expect([...s.keys()].some((k) => k.startsWith('pingvas_queue_depth'))).toBe(false);
      expect(s.get('pingvas_metrics_collector_up{collector="jobs"}')).toBe(1);
    } finally {
      await offline.close();
    }
  });

  it('times HTTP requests by route pattern and status, and exposes the process metrics', async () => {
    await server.inject({ method: 'GET', url: '/healthz' });
    await server.inject({ method: 'GET', url: '/no/such/thing/123' });
    const s = await scrape();
    expect(
      s.get('pingvas_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      s.get('pingvas_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}'),
    ).toBeGreaterThanOrEqual(1);
    expect([...s.keys()].some((k) => k.includes('/no/such'))).toBe(false);
    expect(s.has('process_cpu_user_seconds_total')).toBe(true);
    expect(s.has('nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('counts open live-event WebSockets', async () => {
    await server.listen({ port: 0, host: '127.0.0.1' });
    const user = await app.createUser();
    const cookie = `pingvas_session=${await signSession(app.config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, 3600)}`;
    const socket = new WebSocket(`ws://127.0.0.1:${(server.server.address() as AddressInfo).port}/trpc`, {
      headers: { cookie, origin: new URL(app.config.PUBLIC_URL).origin },
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    expect((await scrape()).get('pingvas_open_websockets')).toBe(1);
    socket.close();
    await vi.waitFor(async () => expect((await scrape()).get('pingvas_open_websockets')).toBe(0));
  });

  it('asks for the bearer token when METRICS_TOKEN is set', async () => {
    const guarded = await buildServer({ ...app.deps, config: { ...app.config, METRICS_TOKEN: 'scrape-secret' } });
    try {
      const get = (headers: Record<string, string>) => guarded.inject({ method: 'GET', url: '/metrics', headers });
      const refused = await get({});
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(refused.body).not.toContain('pingvas_');
      expect((await get({ authorization: 'Bearer wrong-secret' })).statusCode).toBe(401);
      expect((await scrape(guarded, { authorization: 'Bearer scrape-secret' })).has('pingvas_open_websockets')).toBe(
        true,
      );
    } finally {
      await guarded.close();
    }
  });
});

describe('request and job ids', () => {
  it("echoes the caller's x-request-id, or the one it made up", async () => {
    const given = await server.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'lb-7f3a' } });
    expect(given.headers['x-request-id']).toBe('lb-7f3a');
    const made = await server.inject({ method: 'GET', url: '/healthz' });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs JSON lines carrying the request id, and the job id on claim and fail', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'info' },
      {
        write: (line: string) => {
          lines.push(JSON.parse(line));
        },
      },
    );
    const logged = await buildServer({ ...app.deps, logger });
    try {
      const user = await fundedUser(app, 'free', 100);
      const { jobId } = await app.callerFor(user).generation.create(smallParams());
      const call = (procedure: string, input: unknown) =>
        logged.inject({
          method: 'POST',
          url: `/internal/trpc/${procedure}`,
          payload: superjson.serialize(input),
          headers: { authorization: `Bearer ${app.config.WORKER_TOKEN}`, 'x-request-id': `req-${procedure}` },
        });
      const claimed = (await call('claim', { workerId: 'log-worker', engineVersion: 'test', waitMs: 0 })).json();
      const leaseToken = superjson.deserialize<{ lease: { token: string } }>(claimed.result.data).lease.token;
      await call('fail', { jobId, leaseToken, code: 'CRASH', message: 'boom' });

      expect(lines).toContainEqual(expect.objectContaining({ reqId: 'req-claim', msg: 'incoming request' }));
      expect(lines).toContainEqual(
        expect.objectContaining({ reqId: 'req-claim', msg: 'request completed', res: { statusCode: 200 } }),
      );
      expect(lines).toContainEqual(expect.objectContaining({ jobId, workerId: 'log-worker', msg: 'job claimed' }));
      expect(lines).toContainEqual(
        expect.objectContaining({ jobId, code: 'CRASH', outcome: 'retrying', msg: 'job run failed' }),
      );
    } finally {
      await logged.close();
    }
  });
});

describe('tierScoreBands', () => {
  it("puts every tier's scores, early or late, in its own band only", async () => {
    const { PLANS, queueScore, TIERS } = await import('@pingvas/core');
    const bands = tierScoreBands();
    const inBand = (score: number, band: (typeof bands)[number]) =>
      (band.min === '-inf' || score >= Number(band.min)) && (band.max === '+inf' || score < Number(band.max.slice(1)));
    for (const tier of TIERS) {
      for (const at of [Date.UTC(2025, 0, 1), Date.UTC(2026, 10, 26), Date.UTC(2100, 0, 1)]) {
        const score = queueScore(PLANS[tier].queuePriority, at);
        expect(bands.filter((b) => inBand(score, b)).map((b) => b.tier)).toEqual([tier]);
      }
    }
  });
});
