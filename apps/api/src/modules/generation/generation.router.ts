import { z } from 'zod';
import { createJobInputSchema, JOB_STATES, upscaleInputSchema } from '@pingvas/core';
import { protectedProcedure, router, toTrpcError } from '../../trpc.js';
import { cancelJob, createGeneration, createUpscale } from './generation.service.js';
import { getJob, listJobs } from './job-views.js';
import { jobEvents } from './job-events.js';

const jobIdInput = z.object({ jobId: z.uuid('jobId must be a UUID') });

export const generationRouter = router({
  /** txt2img, or img2img with `initImage` (+ `strength`), or inpaint with a `mask` too; `count` images (1–4). */
  create: protectedProcedure
    .input(createJobInputSchema)
    .mutation(({ ctx, input }) => createGeneration(ctx.deps, ctx.user, input)),

  /** Upscales one of the user's gallery images 2× or 4×: one new gallery image. */
  upscale: protectedProcedure
    .input(upscaleInputSchema)
    .mutation(({ ctx, input }) => createUpscale(ctx.deps, ctx.user, input)),

  get: protectedProcedure.input(jobIdInput).query(({ ctx, input }) => getJob(ctx.deps, ctx.user.id, input.jobId)),

  list: protectedProcedure
    .input(
      z
        .object({
          cursor: z.string().max(200).optional(),
          limit: z.number().int().min(1).max(100).default(20),
          status: z.enum(JOB_STATES).optional(),
        })
        .default({ limit: 20 }),
    )
    .query(({ ctx, input }) => listJobs(ctx.deps, ctx.user.id, input)),

  cancel: protectedProcedure
    .input(jobIdInput)
    .mutation(({ ctx, input }) => cancelJob(ctx.deps, ctx.user.id, input.jobId)),

  /** Live events of one of the user's jobs over WebSocket: a snapshot, then changes, until it ends. */
  onJob: protectedProcedure.input(jobIdInput).subscription(async function* ({ ctx, input, signal }) {
    try {
      yield* jobEvents(ctx.deps, ctx.user.id, input.jobId, signal);
    } catch (error) {
      // Middleware maps DomainErrors of queries; a generator's errors surface later, so map them here.
      throw toTrpcError(error);
    }
  }),
});
