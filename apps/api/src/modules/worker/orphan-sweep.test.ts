import { beforeEach, describe, expect, it } from 'vitest';
import type { ClaimedJob } from '@pingvas/core';
import type { TestApp } from '../../test/harness.js';
import { attemptKeys } from '../../infra/object-store.js';
import { seedImages } from '../gallery/gallery.test-support.js';
import { reconcileOnce } from '../generation/reconciler.task.js';
import { fundedUser, smallParams, uploadResult } from '../../test/factories.js';
import {
  claim,
  completeClaimed,
  expireLease,
  jobRow,
  reportComplete,
  useGenerationTestApp,
} from '../generation/generation.test-support.js';
import { sweepOrphanObjects } from './orphan-sweep.task.js';

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

/** As at the end of a chaos run: every object counts as old enough. */
const sweepNow = () => sweepOrphanObjects(app.deps, { olderThanSeconds: 0 });

async function claimedJob(): Promise<ClaimedJob> {
  const user = await fundedUser(app, 'pro', 500);
  await app.callerFor(user).generation.create(smallParams());
  return (await claim(app))!;
}

async function prefixOf(claimed: ClaimedJob): Promise<string> {
  return (await jobRow(app, claimed.job.id)).attempt_prefix as string;
}

async function storedKeys(): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const page of app.deps.store.listPages('images/')) for (const object of page) keys.add(object.key);
  return keys;
}

/** The live objects earlier tests of this file left in the bucket. */
let earlier = new Set<string>();
beforeEach(async () => {
  earlier = await storedKeys();
});
const storedNow = async () => new Set([...(await storedKeys())].filter((key) => !earlier.has(key)));

const bothKeys = (prefix: string) => Object.values(attemptKeys(prefix));

/** Both objects of a completed attempt whose image row points at them (its job is left completed). */
async function completedAttempt(): Promise<string[]> {
  const claimed = await claimedJob();
  await completeClaimed(app, claimed, 1);
  return bothKeys(await prefixOf(claimed));
}

/** Both objects of an attempt that uploaded and then failed (the job went back to pending). */
async function failedAttempt(): Promise<string[]> {
  const claimed = await claimedJob();
  await uploadResult(app, claimed);
  await app
    .workerCaller()
    .fail({ jobId: claimed.job.id, leaseToken: claimed.lease.token, code: 'CRASH', message: 'segfault' });
  return bothKeys(await prefixOf(claimed));
}

describe('orphan sweep', () => {
  it('deletes objects of attempts that never completed, nothing an image row or a running attempt owns', async () => {
    const completed = await completedAttempt();
    const failed = await failedAttempt();

    const lost = await claimedJob();
    await uploadResult(app, lost);
    const lostKeys = bothKeys(await prefixOf(lost));
    await expireLease(app, lost.job.id);
    await reconcileOnce(app.deps);

    const running = await claimedJob();
    await uploadResult(app, running);
    const runningKeys = bothKeys(await prefixOf(running));

    // An image stored under the layout of earlier releases (user id and job id in the key).
    const user = await fundedUser(app);
    const [legacy] = await seedImages(app, user, 1);
    const legacyKeys = [
      `images/${user.id}/${legacy!.jobId}/original.png`,
      `images/${user.id}/${legacy!.jobId}/thumb.webp`,
    ];
    const [legacyOriginal, legacyThumb] = legacyKeys as [string, string];
    await app.database.admin`
      update images set original_key = ${legacyOriginal}, thumb_key = ${legacyThumb} where id = ${legacy!.id}`;
    for (const key of legacyKeys) await app.deps.store.putBytes(key, new Uint8Array([1]), 'image/png');
    const stray = 'images/0123456789abcdef0123456789abcdef/original.png';
    await app.deps.store.putBytes(stray, new Uint8Array([1]), 'image/png');

    const report = await sweepNow();
    expect(report).toEqual({ listed: earlier.size + 11, deleted: 5 });
    expect(await storedNow()).toEqual(new Set([...completed, ...runningKeys, ...legacyKeys]));
    for (const key of [...failed, ...lostKeys, stray]) await expect(app.deps.store.head(key)).resolves.toBeNull();
    expect(await sweepNow()).toEqual({ listed: earlier.size + 6, deleted: 0 });

    // The running attempt still completes with its objects.
    expect(await reportComplete(app, running, 1)).toMatchObject({ replayed: false });
  });

  it('treats every image of a batch like the first: kept while running and once completed, swept once failed', async () => {
    const user = await fundedUser(app, 'pro', 500);
    const batch = async () => {
      await app.callerFor(user).generation.create({ ...smallParams(), count: 3 });
      const claimed = (await claim(app))!;
      await uploadResult(app, claimed);
      const prefix = await prefixOf(claimed);
      return { claimed, keys: [0, 1, 2].flatMap((index) => Object.values(attemptKeys(prefix, index))) };
    };
    const failed = await batch();
    await app
      .workerCaller()
      .fail({ jobId: failed.claimed.job.id, leaseToken: failed.claimed.lease.token, code: 'CRASH', message: 'x' });
    const running = await batch();

    expect(await sweepNow()).toEqual({ listed: earlier.size + 12, deleted: 6 });
    expect(await storedNow()).toEqual(new Set(running.keys));
    expect(await reportComplete(app, running.claimed, 1)).toMatchObject({ replayed: false });
    expect(await sweepNow()).toEqual({ listed: earlier.size + 6, deleted: 0 });
    const rows = await app.database.admin`
      select original_key, thumb_key from images where job_id = ${running.claimed.job.id} order by job_index`;
    expect(rows.flatMap((row) => [row.original_key, row.thumb_key])).toEqual(running.keys);
  });

  it('leaves unreferenced objects alone until they are older than an upload URL can live', async () => {
    const failed = await failedAttempt();
    expect(await sweepOrphanObjects(app.deps)).toEqual({ listed: earlier.size + 2, deleted: 0 });
    expect(await storedNow()).toEqual(new Set(failed));
    // With no age required, the same objects go: only their age kept them.
    expect(await sweepNow()).toEqual({ listed: earlier.size + 2, deleted: 2 });
  });

  it('never deletes the objects of a completion it races (40 rounds, 3 sweepers each)', async () => {
    for (let round = 0; round < 40; round += 1) {
      const claimed = await claimedJob();
      await uploadResult(app, claimed);
      const keys = bothKeys(await prefixOf(claimed));
      const sweeps = () => [sweepNow(), sweepNow(), sweepNow()];
      // Half the rounds start the sweeps first, half the completion: both orders of listing and committing.
      const results =
        round % 2 === 0
          ? await Promise.all([...sweeps(), reportComplete(app, claimed, 1)])
          : await Promise.all([reportComplete(app, claimed, 1), ...sweeps()]);
      expect(results.find((r) => 'replayed' in r)).toEqual({ creditsCharged: 1, replayed: false });
      const stored = await storedNow();
      for (const key of keys) expect(stored.has(key), `round ${round}: ${key}`).toBe(true);
      const [image] = await app.database
        .admin`select original_key, thumb_key from images where job_id = ${claimed.job.id}`;
      expect([image!.original_key, image!.thumb_key]).toEqual(keys);
    }
    expect((await sweepNow()).deleted).toBe(0);
  }, 120_000);

  it('three sweepers at once delete every orphan and keep every live object', async () => {
    const live: string[] = [];
    const orphans: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      live.push(...(await completedAttempt()));
      orphans.push(...(await failedAttempt()));
    }
    const reports = await Promise.all([sweepNow(), sweepNow(), sweepNow()]);
    for (const report of reports) expect(report.listed).toBeGreaterThanOrEqual(live.length);
    // Each orphan is deleted by at least one sweeper (two may delete the same one: no error).
    expect(reports.reduce((sum, r) => sum + r.deleted, 0)).toBeGreaterThanOrEqual(orphans.length);
    expect(await storedNow()).toEqual(new Set(live));
  });
});
