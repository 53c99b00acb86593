import { uploadCompleteInputSchema, uploadCreateInputSchema } from '@pingvas/core';
import { protectedProcedure, router } from '../../trpc.js';
import { completeUpload, createUpload } from './uploads.service.js';

export const uploadsRouter = router({
  /** A short-lived URL to PUT one PNG, JPEG or WebP of the declared type and exact size. */
  create: protectedProcedure
    .input(uploadCreateInputSchema)
    .mutation(({ ctx, input }) => createUpload(ctx.deps, ctx.user.id, input)),

  /** Checks the stored file and keeps it as a PNG without metadata; `{ uploadId, width, height }`. */
  complete: protectedProcedure
    .input(uploadCompleteInputSchema)
    .mutation(({ ctx, input }) => completeUpload(ctx.deps, ctx.user.id, input.uploadId)),
});
