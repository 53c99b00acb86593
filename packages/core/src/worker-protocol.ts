import { z } from 'zod';
import { generationParamsSchema, MAX_SIDE, samplerSchema, seedSchema } from './generation.js';
import { fieldError } from './field-errors.js';
import { FAILURE_CODES } from './jobs.js';
import { MAX_COUNT, MAX_UPSCALED_SIDE, type JobKind, type UpscaleScale } from './job-kinds.js';

/**
 * The contract between the API's internal router (/internal/trpc) and GPU workers.
 * Both sides import these schemas; the worker never sees the database or Redis.
 */

export const workerIdSchema = z
  .string({ error: fieldError('workerId') })
  .trim()
  .min(1)
  .max(200);
const leaseToken = z.uuid({ error: fieldError('leaseToken') });
const jobId = z.uuid({ error: fieldError('jobId') });
const engineSeconds = z
  .number({ error: fieldError('engineSeconds') })
  .min(0)
  .max(24 * 3600);

/** A model id as the worker's registry names it (the registry may hold models the API does not offer). */
const modelIdSchema = (field: string) =>
  z
    .string({ error: fieldError(field) })
    .trim()
    .min(1)
    .max(100)
    .regex(/^[^,]+$/, { error: fieldError(field) });

export const claimInputSchema = z.object({
  workerId: workerIdSchema,
  engineVersion: z
    .string({ error: fieldError('engineVersion') })
    .trim()
    .min(1)
    .max(200),
  /** How long the API may hold the call open waiting for a job (long poll), 0 = answer at once. */
  waitMs: z
    .number({ error: fieldError('waitMs') })
    .int()
    .min(0)
    .max(20_000)
    .default(0),
  /**
   * The worker's models: loaded now (`warm`) and runnable at all (`loadable`). The API never
   * hands it a job for a model outside `loadable`, and prefers jobs for a `warm` model within
   * a bounded window of the queue head. Absent: any model, none warm (older workers).
   */
  models: z
    .object(
      {
        warm: z.array(modelIdSchema('models.warm')).max(64),
        loadable: z.array(modelIdSchema('models.loadable')).max(64),
      },
      { error: fieldError('models') },
    )
    .optional(),
});
export type ClaimInput = z.input<typeof claimInputSchema>;

/** The parameters the engine runs with: the user's, with seed and sampler resolved. */
export const engineParamsSchema = generationParamsSchema.extend({ seed: seedSchema, sampler: samplerSchema });
export type EngineParams = z.infer<typeof engineParamsSchema>;

/** An input image of a claimed job: a presigned GET URL (valid at least as long as the first lease) and its size. */
export interface ClaimedInputImage {
  url: string;
  width: number;
  height: number;
}

export interface ClaimedJob {
  job: {
    id: string;
    userId: string;
    kind: JobKind;
    /**
     * What the engine runs with. For an upscale: the source image's own parameters (its width ×
     * height is the source's size); the size to deliver is in `upscale`.
     */
    params: EngineParams;
    attempt: number;
    /** Images to make, 1–MAX_COUNT: the engine's `-b`; each is reported (and stored) at its index. */
    count: number;
    /** img2img and inpaint only. */
    strength?: number;
    /** upscale only: the factor, and the size of the image to deliver (the source's × scale). */
    upscale?: { scale: UpscaleScale; width: number; height: number };
    /**
     * img2img, inpaint: `initImage` (any size; the worker resizes it to params' width × height),
     * inpaint also `mask` (the init image's size; white = repaint). upscale: `initImage` is the source.
     */
    inputs: { initImage?: ClaimedInputImage; mask?: ClaimedInputImage };
  };
  lease: { token: string; expiresAt: Date; heartbeatIntervalMs: number };
  /**
   * From the job's hold (core jobDeadline): the engine is killed after `engineSeconds`; past
   * `expiresAt` the API stops the run even while it heartbeats.
   */
  deadline: { engineSeconds: number; expiresAt: Date };
}

/** The two objects a finished attempt uploads, and the Content-Type each must be stored with. */
export const UPLOAD_CONTENT_TYPES = { original: 'image/png', thumb: 'image/webp' } as const;
export type UploadObject = keyof typeof UPLOAD_CONTENT_TYPES;

/** The gallery thumbnail fits inside this square. */
export const THUMB_SIDE = 256;
/**
 * Upper bounds on what a worker may store. A PNG of w×h pixels is at most its raw RGBA
 * scanlines (4 bytes a pixel, 1 filter byte a row) plus deflate's and the chunks' framing;
 * 64 KiB of slack covers that and any metadata chunk an engine adds.
 */
const FRAMING_SLACK_BYTES = 64 * 1024;
export function maxUploadBytes(object: UploadObject, job: { width: number; height: number }): number {
  const [width, height] = object === 'original' ? [job.width, job.height] : [THUMB_SIDE, THUMB_SIDE];
  return width * height * 4 + height + FRAMING_SLACK_BYTES;
}
/** The largest image any job delivers: an upscale result. */
const MAX_DELIVERED_SIDE = Math.max(MAX_SIDE, MAX_UPSCALED_SIDE);
export const MAX_ORIGINAL_BYTES = maxUploadBytes('original', { width: MAX_DELIVERED_SIDE, height: MAX_DELIVERED_SIDE });

/**
 * Asks for a URL to PUT one object of the current attempt. The URL binds the key, the
 * Content-Type and the exact byte count, and lives only minutes: ask again for a retry.
 */
export const uploadUrlInputSchema = z.object({
  jobId,
  leaseToken,
  object: z.enum(['original', 'thumb'], { error: fieldError('object') }),
  /** Which image of the job (0 … count − 1); absent: the first (workers that know only one). */
  index: z
    .number({ error: fieldError('index') })
    .int()
    .min(0)
    .max(MAX_COUNT - 1)
    .default(0),
  bytes: z
    .number({ error: fieldError('bytes') })
    .int()
    .min(1)
    .max(MAX_ORIGINAL_BYTES),
});
export type UploadUrlInput = z.input<typeof uploadUrlInputSchema>;
export interface UploadUrl {
  url: string;
  /** Send exactly this Content-Type, and exactly the bytes announced (the signature covers both). */
  contentType: string;
  expiresAt: Date;
}

/** A live preview fits inside this square. */
export const PREVIEW_SIDE = 256;
export const PREVIEW_MAX_BYTES = 48 * 1024;
/** The worker sends a new preview at most this often (the browser needs no more). */
export const PREVIEW_MIN_INTERVAL_MS = 1000;

export const heartbeatInputSchema = z.object({
  jobId,
  leaseToken,
  progress: z
    .object(
      {
        percent: z
          .number({ error: fieldError('progress.percent') })
          .min(0)
          .max(100),
        step: z
          .number({ error: fieldError('progress.step') })
          .int()
          .min(0),
        totalSteps: z
          .number({ error: fieldError('progress.totalSteps') })
          .int()
          .min(1),
        secondsPerStep: z
          .number({ error: fieldError('progress.secondsPerStep') })
          .min(0)
          .optional(),
      },
      { error: fieldError('progress') },
    )
    .optional(),
  /** The job waits for its model to load on the worker (no step yet); the user is told so. */
  loadingModel: z.boolean({ error: fieldError('loadingModel') }).optional(),
  /**
   * The newest preview frame, when it changed since the last heartbeat: a WebP that fits in
   * PREVIEW_SIDE, at most PREVIEW_MAX_BYTES, base64. Passed on to the browser, never stored.
   */
  preview: z
    .object(
      {
        webpBase64: z
          .base64({ error: fieldError('preview.webpBase64') })
          .max(Math.ceil(PREVIEW_MAX_BYTES / 3) * 4, 'preview.webpBase64 is too large'),
        width: z
          .number({ error: fieldError('preview.width') })
          .int()
          .min(1)
          .max(PREVIEW_SIDE),
        height: z
          .number({ error: fieldError('preview.height') })
          .int()
          .min(1)
          .max(PREVIEW_SIDE),
        step: z
          .number({ error: fieldError('preview.step') })
          .int()
          .min(0),
      },
      { error: fieldError('preview') },
    )
    .optional(),
});
export type HeartbeatInput = z.infer<typeof heartbeatInputSchema>;
export interface HeartbeatResult {
  /** The user cancelled: stop the engine and report `worker.fail` with code CANCELLED. */
  cancel: boolean;
  leaseExpiresAt: Date;
}

const completedImageSchema = z.object(
  {
    width: z
      .number({ error: fieldError('image.width') })
      .int()
      .min(1)
      .max(MAX_DELIVERED_SIDE),
    height: z
      .number({ error: fieldError('image.height') })
      .int()
      .min(1)
      .max(MAX_DELIVERED_SIDE),
    bytes: z
      .number({ error: fieldError('image.bytes') })
      .int()
      .min(1)
      .max(MAX_ORIGINAL_BYTES),
  },
  { error: fieldError('image') },
);
export type CompletedImage = z.infer<typeof completedImageSchema>;

export const completeInputSchema = z.object({
  jobId,
  leaseToken,
  /** Measured wall time of the engine process; the charge is derived from it. */
  engineSeconds,
  /**
   * What the worker made, one entry per image in index order (`count` of them); the API checks
   * each against the job and against the stored objects.
   */
  images: z
    .array(completedImageSchema, { error: fieldError('images') })
    .min(1)
    .max(MAX_COUNT),
  /** Which engine made the image, e.g. `reference` or `sd-cli`. */
  engine: z
    .string({ error: fieldError('engine') })
    .trim()
    .min(1)
    .max(100),
});
export type CompleteInput = z.infer<typeof completeInputSchema>;
export interface CompleteResult {
  creditsCharged: number;
  /** True when this call was a replay of an earlier, successful complete. */
  replayed: boolean;
}

export const failInputSchema = z.object({
  jobId,
  leaseToken,
  code: z.enum(FAILURE_CODES, { error: fieldError('code') }),
  message: z.string({ error: fieldError('message') }).max(2000),
  /** Engine seconds used; charged only for a user cancel of a running job. */
  engineSeconds: engineSeconds.optional(),
});
export type FailInput = z.infer<typeof failInputSchema>;
export interface FailResult {
  outcome: 'retrying' | 'failed' | 'cancelled';
}

export const releaseInputSchema = z.object({ jobId, leaseToken });
export type ReleaseInput = z.infer<typeof releaseInputSchema>;
