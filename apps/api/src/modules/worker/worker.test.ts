import { describe, expect, it } from 'vitest';
import { MAX_JOB_ATTEMPTS } from '@pingvas/core';
import type { TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { fundedUser, smallParams, uploadResult } from '../../test/factories.js';
import {
  balanceOf,
  claim,
  completeClaimed,
  jobRow,
  reportComplete,
  settleAll,
  useGenerationTestApp,
} from '../generation/generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

const worker = () => app.workerCaller();

describe('worker protocol', () => {
  it('claim → heartbeat → complete: one image, charged for engine seconds, the rest refunded', async () => {
    const user = await fundedUser(app, 'starter', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams({ seed: 42, sampler: 'euler' }));
    const claimed = (await claim(app))!;
    expect(claimed.job).toMatchObject({
      id: jobId,
      userId: user.id,
      attempt: 1,
      params: { seed: 42, sampler: 'euler', width: 512 },
    });
    expect(claimed.lease.heartbeatIntervalMs).toBe(10_000);
    expect(await jobRow(app, jobId)).toMatchObject({
      status: 'in_progress',
      worker_id: 'test-worker',
      lease_token: claimed.lease.token,
      attempt_prefix: expect.stringMatching(/^images\/[0-9a-f]{32}$/),
    });

    const beat = await worker().heartbeat({
      jobId,
      leaseToken: claimed.lease.token,
      progress: { percent: 40, step: 8, totalSteps: 20 },
    });
    expect(beat.cancel).toBe(false);
    expect(beat.leaseExpiresAt.getTime()).toBeGreaterThan(Date.now());
    expect((await jobRow(app, jobId)).progress).toBe(40);

    expect(await completeClaimed(app, claimed, 4.2)).toEqual({ creditsCharged: 5, replayed: false });
    expect(await balanceOf(app, user.id)).toEqual({ available: 95, held: 0 });
    const view = await app.callerFor(user).generation.get({ jobId });
    expect(view).toMatchObject({
      status: 'completed',
      chargedCredits: 5,
      progress: 100,
      image: { width: 512, height: 512 },
    });
    const [image] = await app.database.admin`select * from images where job_id = ${jobId}`;
    expect(image).toMatchObject({ engine: 'reference', seed: '42', sampler: 'euler', prompt: 'a lighthouse at dusk' });
    // The keys are the attempt's, and say nothing about the user.
    const { attempt_prefix: prefix } = await jobRow(app, jobId);
    expect(image).toMatchObject({ original_key: `${prefix}/original.png`, thumb_key: `${prefix}/thumb.webp` });
    expect(`${image!.original_key}${image!.thumb_key}`).not.toContain(user.id);
  });

  it('refuses complete before the files are uploaded, and a heartbeat with a wrong lease', async () => {
    const user = await fundedUser(app);
    await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    await expect(
      worker().complete({
        jobId: claimed.job.id,
        leaseToken: claimed.lease.token,
        engineSeconds: 1,
        images: [{ width: 512, height: 512, bytes: 4 }],
        engine: 'reference',
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(worker().heartbeat({ jobId: claimed.job.id, leaseToken: crypto.randomUUID() })).rejects.toMatchObject({
      code: 'CONFLICT',
      cause: { code: 'LEASE_LOST' },
    });
  });

  it('a replayed complete gives the same answer: one image, one charge', async () => {
    const user = await fundedUser(app, 'free', 50);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    await uploadResult(app, claimed);
    const [a, b] = await Promise.all([reportComplete(app, claimed, 3), reportComplete(app, claimed, 3)]);
    const c = await reportComplete(app, claimed, 3);
    expect([a, b].map((r) => r.creditsCharged)).toEqual([3, 3]);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect(c).toEqual({ creditsCharged: 3, replayed: true });
    const [images] = await app.database.admin`select count(*)::int as count from images where job_id = ${jobId}`;
    expect(images!.count).toBe(1);
    const captures = await app.database
      .admin`select * from credit_transactions where user_id = ${user.id} and type = 'capture'`;
    expect(captures).toHaveLength(1);
    expect(await balanceOf(app, user.id)).toEqual({ available: 47, held: 0 });
  });

  it('fail and complete racing on one lease: exactly one wins', async () => {
    for (let round = 0; round < 5; round += 1) {
      const user = await fundedUser(app, 'free', 50);
      const { jobId } = await app.callerFor(user).generation.create(smallParams());
      const claimed = (await claim(app))!;
      await uploadResult(app, claimed);
      const results = await Promise.allSettled([
        completeClaimed(app, claimed, 2),
        worker().fail({ jobId, leaseToken: claimed.lease.token, code: 'CRASH', message: 'segfault' }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { cause: { code: 'LEASE_LOST' } } });
      const row = await jobRow(app, jobId);
      if (results[0].status === 'fulfilled') expect(row).toMatchObject({ status: 'completed', charged_credits: 2 });
      else expect(row).toMatchObject({ status: 'pending', retry_count: 1 });
      await expectLedgerInvariants(app.database.admin);
      await settleAll(app);
    }
  });

  it('a failed run is retried with the same seed; after three attempts it fails and the hold is released', async () => {
    const user = await fundedUser(app, 'free', 50);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const seeds = new Set<number>();
    for (let attempt = 1; attempt <= MAX_JOB_ATTEMPTS; attempt += 1) {
      const claimed = (await claim(app))!;
      expect(claimed.job).toMatchObject({ id: jobId, attempt });
      seeds.add(claimed.job.params.seed);
      const result = await worker().fail({
        jobId,
        leaseToken: claimed.lease.token,
        code: 'OOM',
        message: 'CUDA out of memory',
      });
      expect(result.outcome).toBe(attempt < MAX_JOB_ATTEMPTS ? 'retrying' : 'failed');
      // A replay by the same lease gets the same answer and changes nothing.
      expect(
        (await worker().fail({ jobId, leaseToken: claimed.lease.token, code: 'OOM', message: 'again' })).outcome,
      ).toBe(result.outcome);
    }
    expect(seeds.size).toBe(1);
    expect(await claim(app)).toBeNull();
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'failed', retry_count: 3, failure_code: 'OOM' });
    expect(await balanceOf(app, user.id)).toEqual({ available: 50, held: 0 });
    const view = await app.callerFor(user).generation.get({ jobId });
    expect(view.failure).toEqual({ code: 'OOM', message: 'The GPU ran out of memory. Try a smaller size.' });
  });

  it('release hands the job back at its old place without counting an attempt', async () => {
    const user = await fundedUser(app, 'pro', 100);
    const first = await app.callerFor(user).generation.create(smallParams());
    const second = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    expect(claimed.job.id).toBe(first.jobId);
    expect(await worker().release({ jobId: first.jobId, leaseToken: claimed.lease.token })).toEqual({
      outcome: 'requeued',
    });
    expect(await jobRow(app, first.jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    const again = (await claim(app))!;
    expect(again.job).toMatchObject({ id: first.jobId, attempt: 1 });
    expect((await claim(app))!.job.id).toBe(second.jobId);
    await expect(worker().release({ jobId: first.jobId, leaseToken: claimed.lease.token })).rejects.toMatchObject({
      cause: { code: 'LEASE_LOST' },
    });
  });

  it('cancelling a running job: the heartbeat says stop, and the charge is for the seconds used', async () => {
    const user = await fundedUser(app, 'free', 50);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    expect(await app.callerFor(user).generation.cancel({ jobId })).toMatchObject({
      status: 'in_progress',
      cancelRequested: true,
    });
    expect((await worker().heartbeat({ jobId, leaseToken: claimed.lease.token })).cancel).toBe(true);
    const result = await worker().fail({
      jobId,
      leaseToken: claimed.lease.token,
      code: 'CANCELLED',
      message: 'killed',
      engineSeconds: 2.5,
    });
    expect(result.outcome).toBe('cancelled');
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'cancelled', charged_credits: 3 });
    expect(await balanceOf(app, user.id)).toEqual({ available: 47, held: 0 });
    expect(await claim(app)).toBeNull();
  });

  it('a long-polling claim is woken by a new job at once, without waiting out its poll', async () => {
    const user = await fundedUser(app);
    const waiting = worker().claim({ workerId: 'poller', engineVersion: 'test', waitMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    expect((await waiting)!.job.id).toBe(jobId);
  }, 10_000); // well below the 20 s poll: only the wake-up can deliver the job in time

  it('a long poll ends empty when the caller goes away', async () => {
    const controller = new AbortController();
    const { createCallerFactory } = await import('../../trpc.js');
    const { workerRouter } = await import('./worker.router.js');
    const caller = createCallerFactory(workerRouter)(
      { deps: app.deps, user: null, isWorker: true },
      { signal: controller.signal },
    );
    const waiting = caller.claim({ workerId: 'leaver', engineVersion: 'test', waitMs: 20_000 });
    setTimeout(() => controller.abort(), 100);
    expect(await waiting).toBeNull();
  });

  it('a job claimed for a worker that already hung up goes straight back, not counted as an attempt', async () => {
    const user = await fundedUser(app);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const { createCallerFactory } = await import('../../trpc.js');
    const { workerRouter } = await import('./worker.router.js');
    const gone = new AbortController();
    gone.abort();
    const caller = createCallerFactory(workerRouter)(
      { deps: app.deps, user: null, isWorker: true },
      { signal: gone.signal },
    );
    expect(await caller.claim({ workerId: 'gone', engineVersion: 'test' })).toBeNull();
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    expect((await claim(app))!.job).toMatchObject({ id: jobId, attempt: 1 });
  });

  it('only holders of the worker token may call it', async () => {
    const { createCallerFactory } = await import('../../trpc.js');
    const { workerRouter } = await import('./worker.router.js');
    const caller = createCallerFactory(workerRouter)({ deps: app.deps, user: null, isWorker: false });
    await expect(caller.claim({ workerId: 'x', engineVersion: 'test' })).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
  });
});
