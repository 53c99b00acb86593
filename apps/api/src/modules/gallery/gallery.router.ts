import { z } from 'zod';
import { protectedProcedure, router } from '../../trpc.js';
import {
  BULK_MAX,
  PAGE_DEFAULT,
  PAGE_MAX,
  deleteImages,
  downloadUrl,
  getImage,
  listGallery,
  starImage,
} from './gallery.service.js';

export const pageInput = {
  cursor: z.string().max(512).optional(),
  limit: z.number().int().min(1).max(PAGE_MAX, `limit must be at most ${PAGE_MAX}`).default(PAGE_DEFAULT),
};
export const imageIdsInput = z
  .array(z.uuid())
  .min(1, 'select at least one image')
  .max(BULK_MAX, `at most ${BULK_MAX} images at a time`);
const imageId = z.object({ imageId: z.uuid() });

export const galleryRouter = router({
  /**
   * The user's images, newest first (with `boardId`: that board's images, most recently
   * added first). `starred: true` keeps only starred ones; `search` matches prompt words.
   */
  list: protectedProcedure
    .input(
      z.object({
        ...pageInput,
        boardId: z.uuid().optional(),
        starred: z.boolean().optional(),
        search: z.string().trim().max(200, 'search must be at most 200 characters').optional(),
      }),
    )
    .query(({ ctx, input }) => listGallery(ctx.deps, ctx.user.id, input)),

  get: protectedProcedure.input(imageId).query(({ ctx, input }) => getImage(ctx.deps, ctx.user.id, input.imageId)),

  star: protectedProcedure
    .input(z.object({ imageId: z.uuid(), starred: z.boolean() }))
    .mutation(({ ctx, input }) => starImage(ctx.deps, ctx.user.id, input.imageId, input.starred)),

  /** Idempotent: an image already deleted (or never the user's) gives `deleted: false`. */
  delete: protectedProcedure.input(imageId).mutation(async ({ ctx, input }) => {
    const { deleted } = await deleteImages(ctx.deps, ctx.user.id, [input.imageId]);
    return { imageId: input.imageId, deleted: deleted.length > 0 };
  }),

  deleteMany: protectedProcedure
    .input(z.object({ imageIds: imageIdsInput }))
    .mutation(({ ctx, input }) => deleteImages(ctx.deps, ctx.user.id, input.imageIds)),

  /** A presigned GET that saves the original as a file (Content-Disposition: attachment). */
  downloadUrl: protectedProcedure
    .input(imageId)
    .query(({ ctx, input }) => downloadUrl(ctx.deps, ctx.user.id, input.imageId)),
});
