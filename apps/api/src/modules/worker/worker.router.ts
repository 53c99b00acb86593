import {
  claimInputSchema,
  completeInputSchema,
  failInputSchema,
  heartbeatInputSchema,
  releaseInputSchema,
  uploadUrlInputSchema,
} from '@pingvas/core';
import { router, workerProcedure } from '../../trpc.js';
import { claimJob, completeJob, failJob, heartbeat, releaseJob } from './worker.service.js';
import { issueUploadUrl } from './upload.service.js';

/** Mounted at /internal/trpc; workers import `type WorkerRouter`. */
export const workerRouter = router({
  claim: workerProcedure
    .input(claimInputSchema)
    .mutation(({ ctx, input, signal }) => claimJob(ctx.deps, input, signal)),
  heartbeat: workerProcedure.input(heartbeatInputSchema).mutation(({ ctx, input }) => heartbeat(ctx.deps, input)),
  uploadUrl: workerProcedure.input(uploadUrlInputSchema).mutation(({ ctx, input }) => issueUploadUrl(ctx.deps, input)),
  complete: workerProcedure.input(completeInputSchema).mutation(({ ctx, input }) => completeJob(ctx.deps, input)),
  fail: workerProcedure.input(failInputSchema).mutation(({ ctx, input }) => failJob(ctx.deps, input)),
  release: workerProcedure.input(releaseInputSchema).mutation(({ ctx, input }) => releaseJob(ctx.deps, input)),
});

export type WorkerRouter = typeof workerRouter;
