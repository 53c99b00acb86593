import type { ClaimedJob, GenerationParams } from '@pingvas/core';
import { withSystem } from '@pingvas/db';
import type { SessionUser } from '../context.js';
import { grant } from '../modules/credits/ledger.js';
import type { TestApp } from './harness.js';

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

/** What a GPU worker does before `complete`: PUT both files to the presigned URLs. */
export async function uploadResult(claimed: ClaimedJob): Promise<void> {
  const put = async (url: string, type: string) => {
    const response = await fetch(url, {
      method: 'PUT',
      body: new Uint8Array([1, 2, 3, 4]),
      headers: { 'content-type': type },
    });
    if (!response.ok) throw new Error(`upload failed: ${response.status} ${await response.text()}`);
  };
  await Promise.all([put(claimed.upload.originalUrl, 'image/png'), put(claimed.upload.thumbUrl, 'image/webp')]);
}
