import { z } from 'zod';
import { generationParamsSchema } from './generation.js';
import { FAILURE_CODES } from './jobs.js';

/**
 * The contract between the API's internal router (/internal/trpc) and GPU workers.
 * Both sides import these schemas; the worker never sees the database or Redis.
 */

export const workerIdSchema = z.string().trim().min(1).max(200);
const leaseToken = z.uuid();
const jobId = z.uuid();

export const claimInputSchema = z.object({
  workerId: workerIdSchema,
  engineVersion: z.string().trim().min(1).max(200),
  /** How long the API may hold the call open waiting for a job (long poll), 0 = answer at once. */
  waitMs: z.number().int().min(0).max(20_000).default(0),
});
export type ClaimInput = z.input<typeof claimInputSchema>;

/** The parameters the engine runs with: the user's, with seed and sampler resolved. */
export const engineParamsSchema = generationParamsSchema.required({ seed: true, sampler: true });
export type EngineParams = z.infer<typeof engineParamsSchema>;

export interface ClaimedJob {
  job: { id: string; userId: string; params: EngineParams; attempt: number };
  lease: { token: string; expiresAt: Date; heartbeatIntervalMs: number };
  upload: { originalUrl: string; thumbUrl: string };
}

export const heartbeatInputSchema = z.object({
  jobId,
  leaseToken,
  progress: z
    .object({
      percent: z.number().min(0).max(100),
      step: z.number().int().min(0),
      totalSteps: z.number().int().min(1),
      secondsPerStep: z.number().min(0).optional(),
    })
    .optional(),
});
export type HeartbeatInput = z.infer<typeof heartbeatInputSchema>;
export interface HeartbeatResult {
  /** The user cancelled: stop the engine and report `worker.fail` with code CANCELLED. */
  cancel: boolean;
  leaseExpiresAt: Date;
}

export const completeInputSchema = z.object({
  jobId,
  leaseToken,
  /** Measured wall time of the engine process; the charge is derived from it. */
  engineSeconds: z.number().min(0).max(24 * 3600),
  image: z.object({ width: z.number().int().positive(), height: z.number().int().positive(), bytes: z.number().int().positive() }),
  /** Which engine made the image, e.g. `reference` or `sd-cli`. */
  engine: z.string().trim().min(1).max(100),
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
  code: z.enum(FAILURE_CODES),
  message: z.string().max(2000),
  /** Engine seconds used; charged only for a user cancel of a running job. */
  engineSeconds: z.number().min(0).max(24 * 3600).optional(),
});
export type FailInput = z.infer<typeof failInputSchema>;
export interface FailResult {
  outcome: 'retrying' | 'failed' | 'cancelled';
}

export const releaseInputSchema = z.object({ jobId, leaseToken });
export type ReleaseInput = z.infer<typeof releaseInputSchema>;
