import { expect } from 'vitest';
import type { ClaimedJob, CreateJobInput } from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { TestApp } from '../../test/harness.js';
import { smallParams } from '../../test/factories.js';
import { balanceOf, claim, completeClaimed } from './generation.test-support.js';

/** One of the user's gallery images, made the way production makes one: create, claim, upload, complete. */
export async function galleryImage(app: TestApp, user: SessionUser, input: CreateJobInput = smallParams()) {
  const { jobId } = await app.callerFor(user).generation.create(input);
  const claimed = (await claim(app))!;
  expect(claimed.job.id).toBe(jobId);
  await completeClaimed(app, claimed);
  const [image] = await app.database.admin`select * from images where job_id = ${jobId} order by job_index`;
  return { id: image!.id as string, originalKey: image!.original_key as string, jobId };
}

/** Claims the next job and checks it is `jobId`. */
export async function claimOf(app: TestApp, jobId: string): Promise<ClaimedJob> {
  const claimed = await claim(app);
  expect(claimed?.job.id).toBe(jobId);
  return claimed!;
}

/** What a worker would download from a claimed input URL. */
export async function fetchBytes(url: string): Promise<Buffer> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

/**
 * Runs `refused` and checks that it failed with `code` (and `message`, when given) and changed
 * nothing: the same balance, no new job, no upload retained.
 */
export async function expectRefusedUnchanged(
  app: TestApp,
  user: SessionUser,
  refused: () => Promise<unknown>,
  expected: { code: string; message?: string | RegExp },
): Promise<void> {
  const snapshot = async () => ({
    balance: await balanceOf(app, user.id),
    jobs: (await app.database.admin`select id from generation_jobs where user_id = ${user.id} order by id`).map(
      (row) => row.id as string,
    ),
    retained: (
      await app.database.admin`select id from uploads where user_id = ${user.id} and expires_at is null order by id`
    ).map((row) => row.id as string),
  });
  const before = await snapshot();
  const error = await refused().then(
    () => null,
    (err: { code: string; message: string }) => err,
  );
  expect(error, 'the call was accepted').not.toBeNull();
  expect(error!.code).toBe(expected.code);
  if (typeof expected.message === 'string') expect(error!.message).toContain(expected.message);
  else if (expected.message) expect(error!.message).toMatch(expected.message);
  expect(await snapshot()).toEqual(before);
}
