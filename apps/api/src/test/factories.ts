import type { ClaimedJob, GenerationParams } from '@pingvas/core';
import { withSystem } from '@pingvas/db';
import type { SessionUser } from '../context.js';
import { grant } from '../modules/credits/ledger.js';
import type { TestApp } from './harness.js';
import { pngOf, TINY_WEBP } from './images.js';

export { pngOf, TINY_WEBP };

/**
 * Shared factories of users, credits, generation parameters and worker uploads: one source for the
 * tests of every module and for the benchmarks, so a bench never reaches into a module's test helpers.
 */

/** sd15, 512², 20 steps: an estimate (and hold) of 10 credits. */
export function smallParams(overrides: Partial<GenerationParams> = {}): GenerationParams {
  return {
    prompt: 'a lighthouse at dusk',
    model: 'sd15',
    width: 512,
    height: 512,
    steps: 20,
    cfgScale: 7,
    ...overrides,
  };
}
export const SMALL_ESTIMATE = 10;

export async function fund(app: TestApp, user: SessionUser, amount: number): Promise<void> {
  await withSystem(app.deps.db, (tx) =>
    grant(tx, {
      userId: user.id,
      key: `test-grant:${user.id}:${amount}:${Math.random()}`,
      type: 'purchase',
      bucket: 'purchased',
      amount,
    }),
  );
}

export async function fundedUser(
  app: TestApp,
  tier: SessionUser['tier'] = 'free',
  credits = 1000,
): Promise<SessionUser> {
  const user = await app.createUser({ tier });
  await fund(app, user, credits);
  return user;
}

/** The size of each image a claimed job delivers: an upscale's is larger than the params it runs with. */
export function deliveredSize(claimed: ClaimedJob): { width: number; height: number } {
  return claimed.job.upscale ?? claimed.job.params;
}

/**
 * What a GPU worker does before `complete`: asks for an upload URL per file of each of the job's
 * images and PUTs a real PNG and WebP.
 */
export async function uploadResult(app: TestApp, claimed: ClaimedJob): Promise<void> {
  const lease = { jobId: claimed.job.id, leaseToken: claimed.lease.token };
  const put = async (index: number, object: 'original' | 'thumb', body: Buffer) => {
    const target = await app.workerCaller().uploadUrl({ ...lease, index, object, bytes: body.length });
    const response = await fetch(target.url, { method: 'PUT', body, headers: { 'content-type': target.contentType } });
    if (!response.ok) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  };
  const { width, height } = deliveredSize(claimed);
  await Promise.all(
    Array.from({ length: claimed.job.count }, (_, index) => [
      put(index, 'original', pngOf(width, height)),
      put(index, 'thumb', TINY_WEBP),
    ]).flat(),
  );
}
