import { describe, expect, it } from 'vitest';
import type { TestApp } from '../../test/harness.js';
import { estimateWait, runningCount } from './queue.js';
import { fundedUser, smallParams } from '../../test/factories.js';
import { claim, completeClaimed, useGenerationTestApp } from './generation.test-support.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

describe('the dispatch queue', () => {
  it('hands out pro jobs first, then starter, then free, FIFO within a tier', async () => {
    const tiers = ['free', 'starter', 'pro'] as const;
    // Several users per tier so per-user concurrency never holds anyone back here.
    const created: { tier: string; jobId: string }[] = [];
    for (let round = 0; round < 3; round += 1) {
      for (const tier of tiers) {
        const user = await fundedUser(app, tier);
        const { jobId } = await app.callerFor(user).generation.create(smallParams());
        created.push({ tier, jobId });
      }
    }
    const order: string[] = [];
    for (let i = 0; i < created.length; i += 1) order.push((await claim(app))!.job.id);
    expect(await claim(app)).toBeNull();
    const expected = [
      ...created.filter((c) => c.tier === 'pro'),
      ...created.filter((c) => c.tier === 'starter'),
      ...created.filter((c) => c.tier === 'free'),
    ].map((c) => c.jobId);
    expect(order).toEqual(expected);
  });

  it('a pro user with 20 queued jobs delays another pro user only until the first one hits their limit', async () => {
    const busy = await fundedUser(app, 'pro');
    const other = await fundedUser(app, 'pro');
    const busyJobs: string[] = [];
    for (let i = 0; i < 20; i += 1) busyJobs.push((await app.callerFor(busy).generation.create(smallParams())).jobId);
    const late = await app.callerFor(other).generation.create(smallParams());
    expect(late.queuePosition).toBe(20);

    const claimed = [];
    for (let i = 0; i < 5; i += 1) claimed.push((await claim(app))!);
    // Pro runs 4 at once: the 5th slot goes to the other user, not to busy's 5th job.
    expect(claimed.slice(0, 4).map((c) => c.job.id)).toEqual(busyJobs.slice(0, 4));
    expect(claimed[4]!.job.id).toBe(late.jobId);
    expect(await claim(app)).toBeNull();
    expect(await runningCount(app.deps, busy.id)).toBe(4);

    // A finished run frees one slot, and busy's next job (FIFO) takes it.
    await completeClaimed(app, claimed[0]!);
    expect((await claim(app))!.job.id).toBe(busyJobs[4]);
    expect(await claim(app)).toBeNull();
  });

  it('reports the position as the number of jobs ahead, and the wait from recent durations and workers', async () => {
    const user = await fundedUser(app, 'starter');
    const first = await app.callerFor(user).generation.create(smallParams());
    const second = await app.callerFor(user).generation.create(smallParams());
    expect([first.queuePosition, second.queuePosition]).toEqual([0, 1]);
    expect((await app.callerFor(user).generation.get({ jobId: second.jobId })).queuePosition).toBe(1);
    expect(estimateWait(3, [10, 20], 2)).toBe(23);
    expect(estimateWait(0, [], 1)).toBe(0);
    expect(estimateWait(2, [], 0)).toBe(60);
  });
});
