import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { TestApp } from '../../test/harness.js';
import { jobEvents } from './job-events.js';
import { enqueue, popEligible, type AffinityBounds, type WorkerModels } from './queue.js';
import { fundedUser, smallParams } from '../../test/factories.js';
import { jobRow, useGenerationTestApp } from './generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

const BOTH = ['sdxl', 'sd15'];
const warmOn = (model: string, loadable = BOTH): WorkerModels => ({ warm: [model], loadable });
const claimFor = (workerId: string, models: WorkerModels) =>
  app.workerCaller().claim({ workerId, engineVersion: 'test', waitMs: 0, models });

/** A queue entry of its own owner (limit 1), so that only the models decide. */
async function queued(model: string, score: number): Promise<string> {
  const jobId = randomUUID();
  await enqueue(app.deps, { jobId, userId: randomUUID(), score, concurrency: 1, model });
  return jobId;
}

describe('model-aware dispatch', () => {
  it('never hands a worker a job for a model it cannot run, and burns no attempt on it', async () => {
    const user = await fundedUser(app, 'pro', 5000);
    const xl = await app.callerFor(user).generation.create(smallParams({ model: 'sdxl', width: 1024, height: 1024 }));
    const small = await app.callerFor(user).generation.create(smallParams());

    const onlySd15 = { warm: [], loadable: ['sd15'] };
    expect((await claimFor('sd15-only', onlySd15))!.job.id).toBe(small.jobId);
    expect(await claimFor('sd15-only', onlySd15)).toBeNull();
    expect(await jobRow(app, xl.jobId)).toMatchObject({ status: 'pending', retry_count: 0 });
    // Its position is honest: the job ahead of it left the queue.
    expect((await app.callerFor(user).generation.get({ jobId: xl.jobId })).queuePosition).toBe(0);

    expect((await claimFor('any', { warm: [], loadable: BOTH }))!.job.id).toBe(xl.jobId);
  });

  it("two workers warm on different models each get their own model's jobs, through the real claim", async () => {
    const users = await Promise.all([0, 1, 2, 3].map(() => fundedUser(app, 'starter', 5000)));
    const models = ['sdxl', 'sd15', 'sdxl', 'sd15'] as const;
    const ids: string[] = [];
    for (const [i, model] of models.entries()) {
      ids.push((await app.callerFor(users[i]!).generation.create(smallParams({ model }))).jobId);
    }
    // The sd15 worker asks first: the sdxl job at the head waits for the sdxl worker.
    expect((await claimFor('w-sd15', warmOn('sd15')))!.job.id).toBe(ids[1]);
    expect((await claimFor('w-sd15', warmOn('sd15')))!.job.id).toBe(ids[3]);
    expect((await claimFor('w-sdxl', warmOn('sdxl')))!.job.id).toBe(ids[0]);
    expect((await claimFor('w-sdxl', warmOn('sdxl')))!.job.id).toBe(ids[2]);
  });

  it('looks no further than the window: past it, the head job goes to the cold worker', async () => {
    const bounds: AffinityBounds = { window: 3, maxDelayMs: 60_000 };
    const cold = [await queued('sd15', 1), await queued('sd15', 2), await queued('sd15', 3), await queued('sd15', 4)];
    const warmFar = await queued('sdxl', 5);
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, 1_000))!.jobId).toBe(cold[0]);
    // Three cold jobs ahead now: the warm one is inside the window.
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, 1_000))!.jobId).toBe(warmFar);
  });

  it("a higher tier's job passed over for warm jobs is taken by a cold worker once the bound is reached", async () => {
    const bounds: AffinityBounds = { window: 50, maxDelayMs: 10_000 };
    const pro = await fundedUser(app, 'pro', 5000);
    const starters = await Promise.all([0, 1, 2].map(() => fundedUser(app, 'starter', 5000)));
    const proJob = (await app.callerFor(pro).generation.create(smallParams({ model: 'sd15' }))).jobId;
    const starterJobs: string[] = [];
    for (const user of starters)
      starterJobs.push((await app.callerFor(user).generation.create(smallParams({ model: 'sdxl' }))).jobId);

    const t0 = 1_000_000;
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, t0))!.jobId).toBe(starterJobs[0]);
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, t0 + 9_999))!.jobId).toBe(starterJobs[1]);
    // The bound counts from the first time it was passed over, not from the latest.
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, t0 + 10_000))!.jobId).toBe(proJob);
    expect((await popEligible(app.deps, warmOn('sdxl'), bounds, t0 + 10_000))!.jobId).toBe(starterJobs[2]);
  });

  it("starts the bound's clock for the next job in plain order and for every higher-tier job passed over", async () => {
    const bounds: AffinityBounds = { window: 50, maxDelayMs: 10_000 };
    const skipped = async () => app.deps.redis.hkeys(app.deps.keys.queueSkipped);
    // Same tier: only the next in line is held back by this claim; the one behind it is not yet.
    const next = await queued('sd15', 1);
    const behind = await queued('sd15', 2);
    await queued('sdxl', 3);
    await popEligible(app.deps, warmOn('sdxl'), bounds, 1_000);
    expect(await skipped()).toEqual([next]);
    const sd15Jobs = [
      await popEligible(app.deps, warmOn('sd15'), bounds, 1_000),
      await popEligible(app.deps, warmOn('sd15'), bounds, 1_000),
    ];
    expect(sd15Jobs.map((popped) => popped!.jobId)).toEqual([next, behind]);
    expect(await skipped()).toEqual([]);

    // A higher tier's jobs (queueScore: -priority × 10¹⁰ + seconds) all start their clock
    // when a lower tier's job goes first.
    const pro = [await queued('sd15', -50e10 + 1), await queued('sd15', -50e10 + 2)];
    await queued('sdxl', -20e10 + 3);
    await popEligible(app.deps, warmOn('sdxl'), bounds, 2_000);
    expect((await skipped()).sort()).toEqual([...pro].sort());
  });

  it('one job of a model among 2000 of another is served within the bound, only by a worker able to', async () => {
    const bounds: AffinityBounds = { window: 50, maxDelayMs: 10_000 };
    const lonely = await queued('sd15', 0);
    for (let i = 1; i <= 2000; i += 1) await queued('sdxl', i);
    // Four workers warm on sdxl; one of them cannot run sd15 at all.
    const workers: WorkerModels[] = [warmOn('sdxl', ['sdxl']), warmOn('sdxl'), warmOn('sdxl'), warmOn('sdxl')];
    const t0 = 5_000_000;
    let servedAt: number | null = null;
    for (let claim = 0; servedAt === null && claim < 400; claim += 1) {
      const now = t0 + claim * 250;
      const worker = workers[claim % workers.length]!;
      const popped = (await popEligible(app.deps, worker, bounds, now))!;
      if (popped.jobId === lonely) {
        expect(worker.loadable).toContain('sd15');
        servedAt = now;
      }
    }
    expect(servedAt).not.toBeNull();
    // First passed over at t0; taken by the first claim of a worker able to run it from t0 + bound on.
    expect(servedAt! - t0).toBeGreaterThanOrEqual(10_000);
    expect(servedAt! - t0).toBeLessThanOrEqual(10_000 + 250);
  });

  it('a worker with no model warm (CLI) keeps the plain queue order', async () => {
    const first = await queued('sd15', 1);
    const second = await queued('sdxl', 2);
    expect((await popEligible(app.deps, { warm: [], loadable: BOTH }))!.jobId).toBe(first);
    expect((await popEligible(app.deps, { warm: [], loadable: BOTH }))!.jobId).toBe(second);
  });
});

describe('a job waiting for its model to load', () => {
  it("shows in the job's details and its snapshot from the worker's heartbeat until the first step", async () => {
    const user = await fundedUser(app, 'starter');
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claimFor('cold-worker', { warm: [], loadable: BOTH }))!;
    const details = () => app.callerFor(user).generation.get({ jobId });
    const firstEvent = async () => {
      const stop = new AbortController();
      const events = jobEvents(app.deps, user.id, jobId, stop.signal);
      const { value } = await events.next();
      stop.abort();
      await events.return(undefined);
      return value;
    };
    expect((await details()).loadingModel).toBe(false);

    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token, loadingModel: true });
    expect((await details()).loadingModel).toBe(true);
    expect(await firstEvent()).toMatchObject({ type: 'snapshot', status: 'in_progress', loadingModel: true });

    await app
      .workerCaller()
      .heartbeat({ jobId, leaseToken: claimed.lease.token, progress: { percent: 5, step: 1, totalSteps: 20 } });
    expect((await details()).loadingModel).toBe(false);
    expect(await firstEvent()).not.toHaveProperty('loadingModel');

    // A run that stops while loading (here: handed back) leaves nothing behind for its next attempt.
    await app.workerCaller().heartbeat({ jobId, leaseToken: claimed.lease.token, loadingModel: true });
    await app.workerCaller().release({ jobId, leaseToken: claimed.lease.token });
    expect(await jobRow(app, jobId)).toMatchObject({ status: 'pending', loading_model: false });
  });
});
