import type { ClaimedJob, GenerationParams } from '@pingvas/core';
import { withSystem } from '@pingvas/db';
import type { SessionUser } from '../context.js';
import { grant } from '../modules/credits/ledger.js';
import type { TestApp } from './harness.js';
import { pngOf, TINY_WEBP } from '../modules/worker/images.test-support.js';

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

/** What a GPU worker does before `complete`: asks for an upload URL per file and PUTs a real PNG and WebP. */
export async function uploadResult(app: TestApp, claimed: ClaimedJob): Promise<void> {
  const lease = { jobId: claimed.job.id, leaseToken: claimed.lease.token };
  const put = async (object: 'original' | 'thumb', body: Buffer) => {
    const target = await app.workerCaller().uploadUrl({ ...lease, object, bytes: body.length });
    const response = await fetch(target.url, { method: 'PUT', body, headers: { 'content-type': target.contentType } });
    if (!response.ok) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  };
  const { width, height } = claimed.job.params;
  await Promise.all([put('original', pngOf(width, height)), put('thumb', TINY_WEBP)]);
}
