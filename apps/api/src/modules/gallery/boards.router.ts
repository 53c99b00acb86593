import { z } from 'zod';
import { protectedProcedure, publicProcedure, router } from '../../trpc.js';
import { imageIdsInput, pageInput } from './gallery.router.js';
import { listGallery } from './gallery.service.js';
import {
  addImages,
  createBoard,
  deleteBoard,
  listBoards,
  publicBoardView,
  removeImage,
  updateBoard,
} from './boards.service.js';

const boardName = z.string().trim().min(1, 'name must not be empty').max(100, 'name must be at most 100 characters');
const boardId = z.object({ boardId: z.uuid() });
const boardImage = z.object({ boardId: z.uuid(), imageId: z.uuid() });

export const boardsRouter = router({
  list: protectedProcedure.query(({ ctx }) => listBoards(ctx.deps, ctx.user.id)),

  create: protectedProcedure
    .input(z.object({ name: boardName, isPublic: z.boolean().default(false) }))
    .mutation(({ ctx, input }) => createBoard(ctx.deps, ctx.user.id, input)),

  update: protectedProcedure
    .input(
      z.object({
        boardId: z.uuid(),
        name: boardName.optional(),
        isPublic: z.boolean().optional(),
        coverImageId: z.uuid().nullable().optional(),
      }),
    )
    .mutation(({ ctx, input }) => updateBoard(ctx.deps, ctx.user.id, input)),

  delete: protectedProcedure
    .input(boardId)
    .mutation(({ ctx, input }) => deleteBoard(ctx.deps, ctx.user.id, input.boardId)),

  addImage: protectedProcedure
    .input(boardImage)
    .mutation(({ ctx, input }) => addImages(ctx.deps, ctx.user.id, input.boardId, [input.imageId])),

  addImages: protectedProcedure
    .input(z.object({ boardId: z.uuid(), imageIds: imageIdsInput }))
    .mutation(({ ctx, input }) => addImages(ctx.deps, ctx.user.id, input.boardId, input.imageIds)),

  removeImage: protectedProcedure
    .input(boardImage)
    .mutation(({ ctx, input }) => removeImage(ctx.deps, ctx.user.id, input.boardId, input.imageId)),

  /** The board's images, most recently added first. */
  images: protectedProcedure
    .input(z.object({ boardId: z.uuid(), ...pageInput }))
    .query(({ ctx, input }) => listGallery(ctx.deps, ctx.user.id, input)),

  /** The read-only page behind a share link; needs no session. */
  publicView: publicProcedure
    .input(z.object({ slug: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'not a share link'), ...pageInput }))
    .query(({ ctx, input }) => publicBoardView(ctx.deps, input)),
});
