import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  claimInputSchema,
  completeInputSchema,
  engineParamsSchema,
  failInputSchema,
  heartbeatInputSchema,
  MAX_ORIGINAL_BYTES,
  maxUploadBytes,
  PREVIEW_MAX_BYTES,
  PREVIEW_SIDE,
  releaseInputSchema,
  uploadUrlInputSchema,
  workerIdSchema,
} from './worker-protocol.js';
import { MAX_COUNT, MAX_UPSCALED_SIDE } from './job-kinds.js';

const jobId = '3f1b7a52-8c1e-4d7a-9b0a-2e5c6d7f8a90';
const leaseToken = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

function messagesAt(schema: z.ZodType, input: unknown, path: string): string[] {
  const result = schema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.filter((i) => i.path.join('.') === path).map((i) => i.message);
}

/** Sets `path` (dotted) in a copy of `base`; undefined deletes it. */
function withField(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  const keys = path.split('.');
  let target = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
  if (value === undefined) delete target[keys.at(-1)!];
  else target[keys.at(-1)!] = value;
  return copy;
}

type Case = [path: string, value: unknown, message: string];

function rejectsEachBadField(name: string, schema: z.ZodType, valid: Record<string, unknown>, cases: Case[]) {
  describe(name, () => {
    it('accepts a valid input', () => {
      expect(schema.safeParse(valid).success).toBe(true);
    });
    it.each(cases)('%s = %j → "%s"', (path, value, message) => {
      expect(messagesAt(schema, withField(valid, path, value), path)).toContain(message);
    });
  });
}

const validParams = {
  prompt: 'p',
  model: 'sd15',
  width: 512,
  height: 512,
  steps: 20,
  cfgScale: 7,
  seed: 1,
  sampler: 'euler_a',
};

rejectsEachBadField('claimInputSchema', claimInputSchema, { workerId: 'gpu-1', engineVersion: 'ref-1', waitMs: 1000 }, [
  ['workerId', undefined, 'workerId is required'],
  ['workerId', '  ', 'workerId must not be empty'],
  ['workerId', 'w'.repeat(201), 'workerId must be at most 200 characters'],
  ['engineVersion', undefined, 'engineVersion is required'],
  ['engineVersion', 3, 'engineVersion must be a string'],
  ['engineVersion', '', 'engineVersion must not be empty'],
  ['waitMs', -1, 'waitMs must be at least 0'],
  ['waitMs', 20_001, 'waitMs must be at most 20,000'],
  ['waitMs', 1.5, 'waitMs must be a whole number'],
  ['waitMs', 'soon', 'waitMs must be a number'],
]);

rejectsEachBadField(
  'heartbeatInputSchema',
  heartbeatInputSchema,
  {
    jobId,
    leaseToken,
    progress: { percent: 50, step: 10, totalSteps: 20, secondsPerStep: 0.5 },
    preview: { webpBase64: 'UklGRhoAAABXRUJQ', width: 256, height: 192, step: 10 },
  },
  [
    ['jobId', 'job-1', 'jobId must be a UUID'],
    ['jobId', undefined, 'jobId is required'],
    ['leaseToken', 'nope', 'leaseToken must be a UUID'],
    ['leaseToken', undefined, 'leaseToken is required'],
    ['progress', 'half', 'progress must be an object'],
    ['progress.percent', 101, 'progress.percent must be at most 100'],
    ['progress.percent', -1, 'progress.percent must be at least 0'],
    ['progress.percent', undefined, 'progress.percent is required'],
    ['progress.step', -1, 'progress.step must be at least 0'],
    ['progress.step', 1.5, 'progress.step must be a whole number'],
    ['progress.totalSteps', 0, 'progress.totalSteps must be at least 1'],
    ['progress.secondsPerStep', -0.1, 'progress.secondsPerStep must be at least 0'],
    ['preview', 'frame', 'preview must be an object'],
    ['preview.webpBase64', 'not base64!', 'preview.webpBase64 must be a valid base64'],
    ['preview.webpBase64', 'A'.repeat(Math.ceil(PREVIEW_MAX_BYTES / 3) * 4 + 4), 'preview.webpBase64 is too large'],
    ['preview.width', PREVIEW_SIDE + 1, 'preview.width must be at most 256'],
    ['preview.height', 0, 'preview.height must be at least 1'],
    ['preview.step', -1, 'preview.step must be at least 0'],
    ['preview.step', undefined, 'preview.step is required'],
  ],
);

rejectsEachBadField(
  'completeInputSchema',
  completeInputSchema,
  {
    jobId,
    leaseToken,
    engineSeconds: 45,
    images: [
      { width: 1024, height: 1024, bytes: 123_456 },
      { width: 1024, height: 1024, bytes: 123_457 },
    ],
    engine: 'reference',
  },
  [
    ['jobId', 'x', 'jobId must be a UUID'],
    ['leaseToken', 'x', 'leaseToken must be a UUID'],
    ['engineSeconds', -1, 'engineSeconds must be at least 0'],
    ['engineSeconds', 86_401, 'engineSeconds must be at most 86,400'],
    ['engineSeconds', undefined, 'engineSeconds is required'],
    ['images', undefined, 'images is required'],
    ['images', [], 'images must be at least 1'],
    [
      'images',
      Array.from({ length: MAX_COUNT + 1 }, () => ({ width: 64, height: 64, bytes: 1 })),
      'images must be at most 4',
    ],
    ['images.1', 'png', 'image must be an object'],
    ['images.0.width', 0, 'image.width must be at least 1'],
    // An upscale delivers up to MAX_UPSCALED_SIDE per side.
    ['images.0.width', MAX_UPSCALED_SIDE + 1, 'image.width must be at most 4,096'],
    ['images.1.height', 1.5, 'image.height must be a whole number'],
    ['images.1.height', 2 ** 53, 'image.height must be at most 4,096'],
    ['images.0.bytes', '12', 'image.bytes must be a number'],
    ['images.0.bytes', 0, 'image.bytes must be at least 1'],
    [
      'images.0.bytes',
      MAX_ORIGINAL_BYTES + 1,
      `image.bytes must be at most ${MAX_ORIGINAL_BYTES.toLocaleString('en-US')}`,
    ],
    ['engine', '', 'engine must not be empty'],
    ['engine', 'e'.repeat(101), 'engine must be at most 100 characters'],
  ],
);

const validUpload = { jobId, leaseToken, object: 'original', bytes: 1000 };
rejectsEachBadField('uploadUrlInputSchema', uploadUrlInputSchema, validUpload, [
  ['jobId', 'x', 'jobId must be a UUID'],
  ['leaseToken', undefined, 'leaseToken is required'],
  ['object', 'other', 'object must be one of: original, thumb'],
  ['index', -1, 'index must be at least 0'],
  ['index', MAX_COUNT, 'index must be at most 3'],
  ['index', 0.5, 'index must be a whole number'],
  ['bytes', 0, 'bytes must be at least 1'],
  ['bytes', 1.5, 'bytes must be a whole number'],
  ['bytes', MAX_ORIGINAL_BYTES + 1, `bytes must be at most ${MAX_ORIGINAL_BYTES.toLocaleString('en-US')}`],
]);

describe('maxUploadBytes', () => {
  it("bounds the original by the job's raw RGBA size plus framing, the thumbnail by 256²", () => {
    expect(maxUploadBytes('original', { width: 512, height: 384 })).toBe(512 * 384 * 4 + 384 + 65_536);
    expect(maxUploadBytes('thumb', { width: 2048, height: 2048 })).toBe(256 * 256 * 4 + 256 + 65_536);
    // The largest image any job delivers is an upscale's.
    expect(MAX_ORIGINAL_BYTES).toBe(
      maxUploadBytes('original', { width: MAX_UPSCALED_SIDE, height: MAX_UPSCALED_SIDE }),
    );
    expect(MAX_ORIGINAL_BYTES).toBeLessThan(2 ** 31);
  });
});

rejectsEachBadField(
  'failInputSchema',
  failInputSchema,
  {
    jobId,
    leaseToken,
    code: 'OOM',
    message: 'CUDA out of memory',
    engineSeconds: 3,
  },
  [
    ['jobId', 'x', 'jobId must be a UUID'],
    ['leaseToken', undefined, 'leaseToken is required'],
    [
      'code',
      'EXPLODED',
      'code must be one of: OOM, CRASH, TIMEOUT, BAD_OUTPUT, LEASE_EXPIRED, ENGINE_ERROR, CANCELLED',
    ],
    ['message', 5, 'message must be a string'],
    ['message', 'm'.repeat(2001), 'message must be at most 2,000 characters'],
    ['engineSeconds', -5, 'engineSeconds must be at least 0'],
  ],
);

rejectsEachBadField('releaseInputSchema', releaseInputSchema, { jobId, leaseToken }, [
  ['jobId', undefined, 'jobId is required'],
  ['jobId', 'x', 'jobId must be a UUID'],
  ['leaseToken', 'x', 'leaseToken must be a UUID'],
]);

rejectsEachBadField('engineParamsSchema', engineParamsSchema, validParams, [
  ['seed', undefined, 'seed is required'],
  ['seed', -1, 'seed must be at least 0'],
  [
    'sampler',
    undefined,
    'sampler must be one of: euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, dpm++2mv2, ipndm, ipndm_v, lcm, ddim_trailing, tcd',
  ],
  ['steps', 0, 'steps must be at least 1'],
  ['width', 500, 'width must be a multiple of 64'],
]);

describe('workerIdSchema', () => {
  it('trims and names itself', () => {
    expect(workerIdSchema.parse('  gpu-1 ')).toBe('gpu-1');
    expect(workerIdSchema.safeParse('').error?.issues[0]?.message).toBe('workerId must not be empty');
  });
});

describe('claimInputSchema defaults', () => {
  it('answers at once unless asked to wait', () => {
    expect(claimInputSchema.parse({ workerId: 'w', engineVersion: 'v' }).waitMs).toBe(0);
  });
});

describe('uploadUrlInputSchema defaults', () => {
  it('asks for the first image when a worker names no index', () => {
    expect(uploadUrlInputSchema.parse(validUpload).index).toBe(0);
    expect(uploadUrlInputSchema.parse({ ...validUpload, index: 3 }).index).toBe(3);
  });
});
