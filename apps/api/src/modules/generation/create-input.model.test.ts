import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_COUNT, MAX_STRENGTH, MIN_STRENGTH, PLANS, type CreateJobInput, type JobKind } from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import { fundedUser } from '../../test/factories.js';
import { checkedUpload } from '../uploads/uploads.test-support.js';
import { balanceOf, useGenerationTestApp } from './generation.test-support.js';

/**
 * A model of `generation.create` over random inputs, valid and not: the model says whether an
 * input must be accepted and as which kind; the API must agree, hold exactly what
 * `credits.estimate` quoted, and for a refusal change nothing at all.
 */

let app: TestApp;
useGenerationTestApp((created) => {
  app = created;
});

interface Fixtures {
  user: SessionUser;
  init: string;
  mask: string;
  otherSizeMask: string;
}

const side = fc.integer({ min: 4, max: 20 }).map((n) => n * 64);
const source = (f: Fixtures) =>
  fc.constantFrom<['ok' | 'unknown', CreateJobInput['initImage']]>(
    ['ok', { uploadId: f.init }],
    ['unknown', { uploadId: '00000000-0000-4000-8000-000000000000' }],
    ['unknown', { imageId: '00000000-0000-4000-8000-000000000001' }],
  );
const maskOf = (f: Fixtures) =>
  fc.constantFrom<['ok' | 'other-size' | 'unknown', { uploadId: string }]>(
    ['ok', { uploadId: f.mask }],
    ['other-size', { uploadId: f.otherSizeMask }],
    ['unknown', { uploadId: '00000000-0000-4000-8000-000000000002' }],
  );

const caseOf = (f: Fixtures) =>
  fc.record({
    model: fc.constantFrom('sd15' as const, 'sdxl' as const),
    width: side,
    height: side,
    steps: fc.integer({ min: 1, max: 60 }),
    count: fc.option(fc.integer({ min: 0, max: MAX_COUNT + 1 }), { nil: undefined, freq: 2 }),
    strength: fc.option(fc.constantFrom(0, 0.04, MIN_STRENGTH, 0.3, 0.7, MAX_STRENGTH, 1.5), {
      nil: undefined,
      freq: 2,
    }),
    initImage: fc.option(source(f), { nil: undefined, freq: 2 }),
    mask: fc.option(maskOf(f), { nil: undefined, freq: 2 }),
  });
type Case = ReturnType<typeof caseOf> extends fc.Arbitrary<infer C> ? C : never;

/**
 * What the model expects: the kind of an accepted input, or the error code of a refused one and
 * whether the schema alone refuses it (then `credits.estimate` refuses it too).
 */
function expected(c: Case): { kind: JobKind } | { code: 'BAD_REQUEST' | 'NOT_FOUND' | 'FORBIDDEN'; bySchema: boolean } {
  const strengthOk = c.strength === undefined || (c.strength >= MIN_STRENGTH && c.strength <= MAX_STRENGTH);
  const countOk = c.count === undefined || (c.count >= 1 && c.count <= MAX_COUNT);
  if (!strengthOk || !countOk) return { code: 'BAD_REQUEST', bySchema: true };
  if (!c.initImage && (c.mask || c.strength !== undefined)) return { code: 'BAD_REQUEST', bySchema: true };
  if (c.width * c.height > PLANS.free.maxPixels) return { code: 'FORBIDDEN', bySchema: false };
  if (!c.initImage) return { kind: 'txt2img' };
  if (c.initImage[0] === 'unknown' || c.mask?.[0] === 'unknown') return { code: 'NOT_FOUND', bySchema: false };
  if (c.mask?.[0] === 'other-size') return { code: 'BAD_REQUEST', bySchema: false };
  return { kind: c.mask ? 'inpaint' : 'img2img' };
}

function inputOf(c: Case): CreateJobInput {
  return {
    prompt: 'a model-checked lighthouse',
    model: c.model,
    width: c.width,
    height: c.height,
    steps: c.steps,
    cfgScale: 7,
    ...(c.count !== undefined ? { count: c.count } : {}),
    ...(c.strength !== undefined ? { strength: c.strength } : {}),
    ...(c.initImage ? { initImage: c.initImage[1] } : {}),
    ...(c.mask ? { mask: c.mask[1] } : {}),
  };
}

const outcome = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: { code: string; message: string }) => ({ ok: false as const, error }),
  );

describe('generation.create against its model', () => {
  it('accepts what the model accepts, holding exactly the estimate, and refuses the rest changing nothing', async () => {
    const user = await fundedUser(app, 'free', 1_000_000);
    const fixtures: Fixtures = {
      user,
      init: await checkedUpload(app, user, 80, 60),
      mask: await checkedUpload(app, user, 80, 60),
      otherSizeMask: await checkedUpload(app, user, 60, 80),
    };
    const caller = app.callerFor(user);
    await fc.assert(
      fc.asyncProperty(caseOf(fixtures), async (c) => {
        const input = inputOf(c);
        const want = expected(c);
        const before = await balanceOf(app, user.id);
        const quote = await outcome(caller.credits.estimate(input));
        const created = await outcome(caller.generation.create(input));
        if ('kind' in want) {
          expect(quote.ok && created.ok, JSON.stringify({ quote, created })).toBe(true);
          if (!quote.ok || !created.ok) return;
          expect(created.value.kind).toBe(want.kind);
          expect(created.value.estimatedCredits).toBe(quote.value.credits);
          expect(await balanceOf(app, user.id)).toEqual({
            available: before.available - quote.value.credits,
            held: before.held + quote.value.credits,
          });
          // Frees the plan's pending slots for the next case, hold released.
          await caller.generation.cancel({ jobId: created.value.jobId });
        } else {
          expect(created.ok, JSON.stringify(created)).toBe(false);
          if (created.ok) return;
          expect(created.error.code).toBe(want.code);
          // The estimate needs no lookup: it refuses only what the schema refuses.
          expect(quote.ok).toBe(!want.bySchema);
        }
        expect(await balanceOf(app, user.id)).toEqual(before);
      }),
      { numRuns: 100 },
    );
    const [{ jobs }] = (await app.database.admin`
      select count(*) filter (where status <> 'cancelled')::int as jobs from generation_jobs where user_id = ${user.id}`) as [
      { jobs: number },
    ];
    expect(jobs).toBe(0);
    await expectLedgerInvariants(app.database.admin, { userId: user.id });
  });
});
