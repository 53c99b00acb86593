import { randomBytes } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { DomainError, notFound } from '@pingvas/core';
import { schema, withSystem, withUser, type Tx } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import { imageUrls, newestFirst, queryBoardPage, type ImagePage, type PageQuery } from './gallery.service.js';

const { images, boards, boardImages } = schema;

/** 128 random bits: a share link nobody can guess or enumerate. */
export function newShareSlug(): string {
  return randomBytes(16).toString('base64url');
}

interface BoardRow {
  id: string;
  name: string;
  isPublic: boolean;
  shareSlug: string | null;
  coverImageId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

// Spelled out with table names: drizzle leaves columns unqualified in a one-table select,
// and inside a subquery an unqualified `id` would bind to the inner table.
const imageCountSql = sql<number>`(select count(*)::int from board_images bi where bi.board_id = boards.id)`;

const boardColumns = {
  id: boards.id,
  name: boards.name,
  isPublic: boards.isPublic,
  shareSlug: boards.shareSlug,
  coverImageId: boards.coverImageId,
  createdAt: boards.createdAt,
  updatedAt: boards.updatedAt,
};

async function lockBoard(tx: Tx, userId: string, boardId: string): Promise<BoardRow> {
  const [board] = await tx
    .select(boardColumns)
    .from(boards)
    .where(and(eq(boards.id, boardId), eq(boards.userId, userId)))
    .for('update');
  if (!board) throw notFound('Board');
  return board;
}

/**
 * The user's boards, newest first, each with its image count and cover: the chosen cover,
 * or else the image most recently added to it (the first one the board's page shows).
 */
export async function listBoards(deps: AppDeps, userId: string) {
  const rows = await withUser(deps.db, userId, (tx) =>
    tx
      .select({
        ...boardColumns,
        imageCount: imageCountSql,
        coverThumbKey: sql<string | null>`coalesce(
          (select i.thumb_key from images i where i.id = boards.cover_image_id),
          (select i.thumb_key from board_images bi join images i on i.id = bi.image_id
            where bi.board_id = boards.id order by bi.added_at desc nulls last, bi.image_id desc nulls last limit 1))`,
      })
      .from(boards)
      .where(eq(boards.userId, userId))
      .orderBy(newestFirst(boards.createdAt), newestFirst(boards.id)),
  );
  return Promise.all(
    rows.map(async ({ coverThumbKey, ...board }) => ({
      ...board,
      coverThumbUrl: coverThumbKey ? await deps.store.readUrl(coverThumbKey) : null,
    })),
  );
}

export async function createBoard(
  deps: AppDeps,
  userId: string,
  input: { name: string; isPublic: boolean },
): Promise<BoardRow> {
  const [board] = await withUser(deps.db, userId, (tx) =>
    tx
      .insert(boards)
      .values({ userId, name: input.name, isPublic: input.isPublic, shareSlug: input.isPublic ? newShareSlug() : null })
      .returning(boardColumns),
  );
  return board!;
}

/**
 * Rename, publish or unpublish, choose the cover. Unpublishing drops the slug, so the old
 * link dies with that commit; publishing again mints a new one. `coverImageId: null`
 * goes back to the automatic cover.
 */
export async function updateBoard(
  deps: AppDeps,
  userId: string,
  input: { boardId: string; name?: string; isPublic?: boolean; coverImageId?: string | null },
): Promise<BoardRow> {
  return withUser(deps.db, userId, async (tx) => {
    const board = await lockBoard(tx, userId, input.boardId);
    const changes: Partial<typeof boards.$inferInsert> = { updatedAt: new Date() };
    if (input.name !== undefined) changes.name = input.name;
    if (input.isPublic !== undefined && input.isPublic !== board.isPublic) {
      changes.isPublic = input.isPublic;
      changes.shareSlug = input.isPublic ? newShareSlug() : null;
    }
    if (input.coverImageId !== undefined) {
      if (input.coverImageId !== null) {
        // The foreign key alone would take any image id, another user's included.
        const [onBoard] = await tx
          .select({ imageId: boardImages.imageId })
          .from(boardImages)
          .where(
            and(
              eq(boardImages.boardId, board.id),
              eq(boardImages.imageId, input.coverImageId),
              eq(boardImages.userId, userId),
            ),
          );
        if (!onBoard)
          throw new DomainError('BAD_REQUEST', 'The cover must be an image on this board.', { field: 'coverImageId' });
      }
      changes.coverImageId = input.coverImageId;
    }
    const [updated] = await tx.update(boards).set(changes).where(eq(boards.id, board.id)).returning(boardColumns);
    return updated!;
  });
}

/** Deletes the board and its links; the images stay in the gallery. */
export async function deleteBoard(deps: AppDeps, userId: string, boardId: string): Promise<{ boardId: string }> {
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .delete(boards)
      .where(and(eq(boards.id, boardId), eq(boards.userId, userId)))
      .returning({ id: boards.id }),
  );
  if (!row) throw notFound('Board');
  return { boardId };
}

/**
 * Puts images on a board; those already there stay as they were. Every id must be one of
 * the user's images, else nothing is added: the links are copied from what RLS lets this
 * user see, because the foreign keys alone would accept anyone's image.
 */
export async function addImages(
  deps: AppDeps,
  userId: string,
  boardId: string,
  imageIds: string[],
): Promise<{ boardId: string; added: number }> {
  const wanted = [...new Set(imageIds)];
  return withUser(deps.db, userId, async (tx) => {
    await lockBoard(tx, userId, boardId);
    // KEY SHARE holds off a concurrent delete of these images until the links are in.
    const visible = await tx
      .select({ id: images.id })
      .from(images)
      .where(and(inArray(images.id, wanted), eq(images.userId, userId)))
      .for('key share');
    if (visible.length !== wanted.length) throw notFound('Image');
    const added = await tx
      .insert(boardImages)
      .values(visible.map((image) => ({ boardId, imageId: image.id, userId })))
      .onConflictDoNothing()
      .returning({ imageId: boardImages.imageId });
    await tx.update(boards).set({ updatedAt: new Date() }).where(eq(boards.id, boardId));
    return { boardId, added: added.length };
  });
}

/** Takes an image off a board (no error if it was not on it); a cover it was is cleared. */
export async function removeImage(
  deps: AppDeps,
  userId: string,
  boardId: string,
  imageId: string,
): Promise<{ boardId: string; removed: boolean }> {
  return withUser(deps.db, userId, async (tx) => {
    const board = await lockBoard(tx, userId, boardId);
    const gone = await tx
      .delete(boardImages)
      .where(and(eq(boardImages.boardId, boardId), eq(boardImages.imageId, imageId), eq(boardImages.userId, userId)))
      .returning({ imageId: boardImages.imageId });
    if (gone.length > 0) {
      await tx
        .update(boards)
        .set({ updatedAt: new Date(), ...(board.coverImageId === imageId ? { coverImageId: null } : {}) })
        .where(eq(boards.id, boardId));
    }
    return { boardId, removed: gone.length > 0 };
  });
}

export interface PublicImage {
  id: string;
  thumbUrl: string;
  originalUrl: string;
  prompt: string;
  width: number;
  height: number;
  /** Which engine drew it: the page labels the reference engine's images, as the gallery does. */
  engine: string;
}

/**
 * A public board as anyone with the link sees it. It runs on the system path, so the slug
 * and is_public filters are explicit here, and only display fields leave: no owner, no
 * other boards, no ids of anything but the images shown.
 */
export async function publicBoardView(
  deps: AppDeps,
  input: { slug: string } & PageQuery,
): Promise<{ board: { name: string; imageCount: number; updatedAt: Date } } & ImagePage<PublicImage>> {
  const found = await withSystem(deps.db, async (tx) => {
    const [board] = await tx
      .select({
        id: boards.id,
        userId: boards.userId,
        name: boards.name,
        updatedAt: boards.updatedAt,
        imageCount: imageCountSql,
      })
      .from(boards)
      .where(and(eq(boards.shareSlug, input.slug), eq(boards.isPublic, true)));
    if (!board) return null;
    const page = await queryBoardPage(
      tx,
      { boardId: board.id, ownerId: board.userId },
      { cursor: input.cursor, limit: input.limit },
    );
    return { board, page };
  });
  if (!found) throw notFound('Board');
  const { board, page } = found;
  return {
    board: { name: board.name, imageCount: board.imageCount, updatedAt: board.updatedAt },
    items: await Promise.all(
      page.items.map(async (row) => ({
        id: row.id,
        ...(await imageUrls(deps.store, row)),
        prompt: row.prompt,
        width: row.width,
        height: row.height,
        engine: row.engine,
      })),
    ),
    nextCursor: page.nextCursor,
  };
}
