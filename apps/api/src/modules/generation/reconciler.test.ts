import { describe, expect, it, vi } from 'vitest';
import { createAppDeps, closeAppDeps, type AppDeps } from '../../deps.js';
import type { TestApp } from '../../test/harness.js';
import pino from 'pino';
import { jobDeadline } from '@pingvas/core';
import type { JobEnvelope } from './bus.js';
import { createJob } from './generation.service.js';
import { popEligible, runningCount } from './queue.js';
import { reconcileOnce } from './reconciler.task.js';
import { fundedUser, SMALL_ESTIMATE, smallParams, uploadResult } from '../../test/factories.js';
import {
  balanceOf,
  claim,
  completeClaimed,
  expireLease,
  jobRow,
  useGenerationTestApp,
} from './generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

/** Collects what is published on a job's channel, through a connection of its own. */
async function listenTo(jobId: string): Promise<{ events: JobEnvelope['e'][]; stop: () => void }> {
  const sub = app.deps.redis.duplicate();
  const events: JobEnvelope['e'][] = [];
  sub.on('message', (_channel: string, message: string) => events.push((JSON.parse(message) as JobEnvelope).e));
  await sub.subscribe(app.deps.keys.jobChannel(jobId));
  return { events, stop: () => sub.disconnect() };
}

describe('reconciler', () => {
  it('retries a run whose worker vanished; three vanishings fail it with the hold released and the user told', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const listener = await listenTo(jobId);
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const claimed = (await claim(app))!;
      expect(claimed.job).toMatchObject({ id: jobId, attempt });
      // The worker vanishes: no heartbeat, no complete. Its lease runs out.
      await expireLease(app, jobId);
      const report = await reconcileOnce(app.deps);
      expect(report).toMatchObject(attempt < 3 ? { retried: 1, failed: 0 } : { retried: 0, failed: 1 });
    }
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'failed', retry_count: 3, failure_code: 'LEASE_EXPIRED' });
    expect(await balanceOf(app, user.id)).toEqual({ available: 100, held: 0 });
    expect(await claim(app)).toBeNull();
    expect(await runningCount(app.deps, user.id)).toBe(0);
    await vi.waitFor(() => expect(listener.events.at(-1)?.type).toBe('failed'));
    listener.stop();
    expect(listener.events.at(-1)).toEqual({
      type: 'failed',
      jobId,
      code: 'LEASE_EXPIRED',
      message: 'The worker running this job stopped answering.',
      refunded: SMALL_ESTIMATE,
    });
    expect(listener.events.map((e) => e.type)).toEqual(['started', 'queued', 'started', 'queued', 'started', 'failed']);
  });

  it('refuses the vanished worker when it comes back after its run was taken over', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const stale = (await claim(app))!;
    await expireLease(app, jobId);
    await reconcileOnce(app.deps);
    const fresh = (await claim(app))!;
    expect(fresh.job.attempt).toBe(2);
    // It can no longer get an upload URL, nor complete.
    await expect(uploadResult(app, stale)).rejects.toMatchObject({ cause: { code: 'LEASE_LOST' } });
    await expect(completeClaimed(app, stale, 3)).rejects.toMatchObject({ cause: { code: 'LEASE_LOST' } });
    await expect(app.workerCaller().heartbeat({ jobId, leaseToken: stale.lease.token })).rejects.toMatchObject({
      cause: { code: 'LEASE_LOST' },
    });
    expect(await completeClaimed(app, fresh, 3)).toEqual({ creditsCharged: 3, replayed: false });
    expect(await balanceOf(app, user.id)).toEqual({ available: 97, held: 0 });
  });

  it('gives each run a deadline from its own hold at claim, and tells the worker its engine share', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    const { config } = app.deps;
    const rule = jobDeadline(SMALL_ESTIMATE, {
      secondsPerCredit: config.JOB_SECONDS_PER_CREDIT,
      loadAllowanceSeconds: config.JOB_LOAD_ALLOWANCE_SECONDS,
      uploadAllowanceSeconds: config.JOB_UPLOAD_ALLOWANCE_SECONDS,
      ceilingSeconds: config.JOB_MAX_RUN_SECONDS,
    });
    const [row] = await app.database.admin`
      select extract(epoch from run_deadline_at - started_at)::float8 as seconds, run_deadline_at from generation_jobs where id = ${jobId}`;
    expect(row!.seconds).toBeCloseTo(rule.runSeconds, 3);
    expect(claimed.deadline.expiresAt.getTime()).toBe((row!.run_deadline_at as Date).getTime());
    expect(claimed.deadline.engineSeconds).toBe(rule.engineSeconds);
  });

  it('leaves a heartbeating run alone while it is inside its deadline, however long it has run', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    // A large job: started 20 minutes ago (four times the old fixed 300 s), its deadline still ahead.
    await app.database.admin`
      update generation_jobs set started_at = now() - interval '20 minutes', run_deadline_at = now() + interval '10 minutes'
      where id = ${jobId}`;
    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token });
    expect(await reconcileOnce(app.deps)).toMatchObject({ retried: 0, failed: 0 });
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'in_progress', retry_count: 0 });
    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token });
  });

  it('stops a run past its own deadline even while it heartbeats', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    await app.database
      .admin`update generation_jobs set run_deadline_at = now() - interval '1 second' where id = ${jobId}`;
    // The lease is fresh: only the deadline is past.
    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token });
    expect(await reconcileOnce(app.deps)).toMatchObject({ retried: 1 });
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'pending', retry_count: 1, failure_code: 'TIMEOUT' });
    await expect(app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token })).rejects.toMatchObject({
      cause: { code: 'LEASE_LOST' },
    });
  });

  it('holds a run claimed without a deadline (before the column existed) to the ceiling from its start', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    const ceiling = app.deps.config.JOB_MAX_RUN_SECONDS;
    await app.database.admin`
      update generation_jobs set run_deadline_at = null, started_at = now() - make_interval(secs => ${ceiling - 60}) where id = ${jobId}`;
    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token });
    expect(await reconcileOnce(app.deps)).toMatchObject({ retried: 0 });
    await app.database
      .admin`update generation_jobs set started_at = now() - make_interval(secs => ${ceiling + 1}) where id = ${jobId}`;
    expect(await reconcileOnce(app.deps)).toMatchObject({ retried: 1 });
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'pending', failure_code: 'TIMEOUT' });
  });

  it('queues a job whose create died between the commit and the ZADD', async () => {
    const user = await fundedUser(app, 'starter', 100);
    // createJob is the committed part of generation.create; the enqueue step never runs.
    const { job } = await createJob(app.deps, user, smallParams());
    expect(await app.deps.redis.zscore(app.deps.keys.queue, job.id)).toBeNull();
    expect(await claim(app)).toBeNull();
    expect(await reconcileOnce(app.deps)).toMatchObject({ requeued: 1 });
    expect(await reconcileOnce(app.deps)).toMatchObject({ requeued: 0 });
    expect((await claim(app))!.job.id).toBe(job.id);
  });

  it('re-queues a job whose claim died between the pop and its DB commit', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    // The Lua pop happened, then the process died: the job sits in `claiming` and counts as running.
    expect((await popEligible(app.deps))!.jobId).toBe(jobId);
    expect(await runningCount(app.deps, user.id)).toBe(1);
    // A fresh claim is still in flight as far as the reconciler can tell.
    expect(await reconcileOnce(app.deps)).toMatchObject({ requeued: 0 });
    await app.deps.redis.zadd(app.deps.keys.queueClaiming, Date.now() - 60_000, jobId);
    expect(await reconcileOnce(app.deps)).toMatchObject({ requeued: 1, running: 0 });
    expect(await runningCount(app.deps, user.id)).toBe(0);
    expect((await claim(app))!.job.id).toBe(jobId);
  });

  it('repairs the running counts in Redis from the in_progress jobs in PostgreSQL', async () => {
    const user = await fundedUser(app, 'starter', 100);
    await app.callerFor(user).generation.create(smallParams());
    await app.callerFor(user).generation.create(smallParams());
    await app.callerFor(user).generation.create(smallParams());
    await claim(app);
    await claim(app);
    expect(await claim(app)).toBeNull();
    // Redis forgets everything about running jobs (a flush, a failover)…
    await app.deps.redis.del(app.deps.keys.runningJobs, app.deps.keys.runningCounts);
    expect(await reconcileOnce(app.deps)).toMatchObject({ running: 2 });
    // …and the starter limit of 2 still holds afterwards.
    expect(await runningCount(app.deps, user.id)).toBe(2);
    expect(await claim(app)).toBeNull();
    // A phantom running entry for a job PostgreSQL does not run is dropped.
    await app.deps.redis.hset(app.deps.keys.runningJobs, crypto.randomUUID(), user.id);
    await app.deps.redis.hincrby(app.deps.keys.runningCounts, user.id, 1);
    expect(await reconcileOnce(app.deps)).toMatchObject({ running: 2 });
    expect(await runningCount(app.deps, user.id)).toBe(2);
  });

  it('three reconcilers at once act on each abandoned run exactly once', async () => {
    const extra: AppDeps[] = [
      createAppDeps(app.config, pino({ level: 'silent' })),
      createAppDeps(app.config, pino({ level: 'silent' })),
    ];
    try {
      const users = await Promise.all(Array.from({ length: 8 }, () => fundedUser(app, 'pro', 100)));
      const jobIds: string[] = [];
      for (const user of users)
        for (let i = 0; i < 2; i += 1) jobIds.push((await app.callerFor(user).generation.create(smallParams())).jobId);
      for (const _ of jobIds) await claim(app);
      await app.database
        .admin`update generation_jobs set lease_expires_at = now() - interval '1 minute' where status = 'in_progress'`;
      // And two pending jobs lost from Redis.
      const lost = await createJob(app.deps, users[0]!, smallParams());
      const lost2 = await createJob(app.deps, users[1]!, smallParams());

      const reports = await Promise.all([reconcileOnce(app.deps), reconcileOnce(extra[0]!), reconcileOnce(extra[1]!)]);
      expect(reports.reduce((n, r) => n + r.retried, 0)).toBe(jobIds.length);
      expect(reports.reduce((n, r) => n + r.failed + r.cancelled, 0)).toBe(0);
      const rows = await app.database
        .admin`select id, status, retry_count from generation_jobs where id = any(${jobIds})`;
      expect(rows.every((r) => r.status === 'pending' && r.retry_count === 1)).toBe(true);
      const queued = await app.deps.redis.zrange(app.deps.keys.queue, 0, -1);
      expect(queued.sort()).toEqual([...jobIds, lost.job.id, lost2.job.id].sort());
      expect(await app.deps.redis.hlen(app.deps.keys.runningJobs)).toBe(0);
      const retries = await app.database.admin`
        select count(*)::int as count from credit_transactions where type in ('release', 'capture') and user_id = any(${users.map((u) => u.id)})`;
      expect(retries[0]!.count).toBe(0);
    } finally {
      await Promise.all(extra.map((d) => closeAppDeps(d)));
    }
  });
});
