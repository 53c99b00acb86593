import { z } from 'zod';
import { generationParamsSchema, JOB_STATES } from '@pingvas/core';
import { protectedProcedure, router, toTrpcError } from '../../trpc.js';
import { cancelJob, createGeneration, getJob, listJobs } from './generation.service.js';
import { jobEvents } from './job-events.js';

const jobIdInput = z.object({ jobId: z.uuid('jobId must be a UUID') });

export const generationRouter = router({
  create: protectedProcedure
    .input(generationParamsSchema)
    .mutation(({ ctx, input }) => createGeneration(ctx.deps, ctx.user, input)),

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
