import { and, eq, inArray, sql, type AnyColumn, type SQL } from 'drizzle-orm';
import {
  decodeKeysetCursor,
  DomainError,
  encodeKeysetCursor,
  KEYSET_TIME_FORMAT,
  notFound,
  paramsOf,
  type CreateJobInput,
  type GenerationParams,
  type JobKind,
  type UpscaleScale,
} from '@pingvas/core';
import { schema, withUser, type Tx } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import type { ObjectStore } from '../../infra/object-store.js';
import { sourcesOf } from '../generation/job-views.js';

const { images, boards, boardImages, generationJobs: jobs } = schema;

export const PAGE_DEFAULT = 40;
export const PAGE_MAX = 100;
/** Bulk actions (delete, add to board) take at most this many ids per call. */
export const BULK_MAX = 100;

export interface PageQuery {
  cursor?: string;
  limit: number;
  starred?: boolean;
  search?: string;
}

const summaryColumns = {
  id: images.id,
  jobId: images.jobId,
  kind: images.kind,
  thumbKey: images.thumbKey,
  originalKey: images.originalKey,
  width: images.width,
  height: images.height,
  prompt: images.prompt,
  model: images.model,
  seed: images.seed,
  engine: images.engine,
  starred: images.starred,
  createdAt: images.createdAt,
};

export interface ImageSummaryRow {
  id: string;
  jobId: string;
  kind: JobKind;
  thumbKey: string;
  originalKey: string;
  width: number;
  height: number;
  prompt: string;
  model: string;
  seed: number;
  engine: string;
  starred: boolean;
  createdAt: Date;
}

export interface ImagePage<Row> {
  items: Row[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

const cursorTime = (column: AnyColumn) => sql<string>`to_char(${column} at time zone 'UTC', ${KEYSET_TIME_FORMAT})`;

/**
 * The keyset indexes are `DESC NULLS LAST` (drizzle's `.desc()`), while a bare `DESC` means
 * NULLS FIRST: PostgreSQL will not walk an index in an order it does not match, NOT NULL
 * columns or not, and would sort every row of the user instead.
 */
export const newestFirst = (column: AnyColumn) => sql`${column} desc nulls last`;

/** Filters shared by the gallery and a board's page; both leave the image index order alone. */
function imageFilters(q: PageQuery): SQL[] {
  const where: SQL[] = [];
  // A bare column (not `= true`) so the planner can match the partial index `WHERE starred`.
  if (q.starred) where.push(sql`${images.starred}`);
  const search = q.search?.trim();
  if (search) where.push(sql`${images.searchVector} @@ websearch_to_tsquery('english', ${search})`);
  return where;
}

/** The lists whose cursors must not be replayed on each other: image time vs time added to a board. */
type ImageList = 'images' | 'board';

function toPage(
  list: ImageList,
  rows: (ImageSummaryRow & { position: string })[],
  limit: number,
): ImagePage<ImageSummaryRow> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown.at(-1);
  return {
    items: shown.map(({ position: _position, ...row }) => row),
    nextCursor: more && last ? encodeKeysetCursor(list, { time: last.position, id: last.id }) : null,
  };
}

/**
 * How a search finds its rows under row-level security.
 * - `planner`: `ts_match_vq`, the function behind `tsvector @@ tsquery`, is LEAKPROOF (migration
 *   0002 marks it where the migrating role is a superuser), so the planner may use the GIN index
 *   images_search_idx and the column's statistics, and picks between a bitmap scan of the index
 *   (rare words) and the user's keyset index newest first (common words).
 * - `newest-first-walk`: it is not (managed PostgreSQL without a superuser). The planner then
 *   neither uses the GIN index for `@@` nor reads the column's statistics for it: it guesses that
 *   0.5% of a user's images match and fetches all of them to sort (300 ms for 10,000 images), or
 *   for a many-word query reads the whole table (2.7 s at 1,000,000 rows), rather than walk the
 *   user's keyset index newest first and stop once the page is full (0.4 ms for a common word,
 *   every row of the user for a word in none). SEARCH_PLAN_SETTINGS forces that walk.
 */
export type SearchStrategy = 'planner' | 'newest-first-walk';

/**
 * For this transaction only: no bitmap or sequential scans, so the walk is taken, and no JIT,
 * whose compile time the walk's pessimistic cost estimate would otherwise trigger.
 */
export const SEARCH_PLAN_SETTINGS =
  "select set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)";

let detectedStrategy: Promise<SearchStrategy> | undefined;

/**
 * The strategy this database allows, asked once per process: whether ts_match_vq is LEAKPROOF
 * only changes by a superuser's ALTER FUNCTION (or a restore without the migration's mark), and
 * either answer gives correct results, only faster or slower.
 */
export function detectSearchStrategy(tx: Tx): Promise<SearchStrategy> {
  detectedStrategy ??= tx
    .execute<{ leakproof: boolean }>(
      sql`select proleakproof as leakproof from pg_proc where oid = 'ts_match_vq(tsvector, tsquery)'::regprocedure`,
    )
    .then(([row]) => (row?.leakproof ? 'planner' : 'newest-first-walk') satisfies SearchStrategy)
    .catch((error: unknown) => {
      detectedStrategy = undefined;
      throw error;
    });
  return detectedStrategy;
}

/** Query options not part of the public page request. */
export interface PageOptions {
  /** Overrides the detected strategy (tests of the fallback, the benchmark). */
  searchStrategy?: SearchStrategy;
}

async function prepareSearch(tx: Tx, q: PageQuery, options: PageOptions): Promise<void> {
  if (!q.search?.trim()) return;
  const strategy = options.searchStrategy ?? (await detectSearchStrategy(tx));
  if (strategy === 'newest-first-walk') await tx.execute(sql.raw(SEARCH_PLAN_SETTINGS));
}

/**
 * One page of a user's images, newest first, by keyset on (created_at, id): the index
 * images_user_keyset_idx (or its starred twin) is walked from the cursor on, so any page
 * costs what the first costs. With `boardId` the board's own order applies instead.
 */
export async function queryImagePage(
  tx: Tx,
  userId: string,
  q: PageQuery & { boardId?: string },
  options: PageOptions = {},
): Promise<ImagePage<ImageSummaryRow>> {
  if (q.boardId) {
    const [board] = await tx
      .select({ id: boards.id })
      .from(boards)
      .where(and(eq(boards.id, q.boardId), eq(boards.userId, userId)));
    if (!board) throw notFound('Board');
    return queryBoardPage(tx, { boardId: q.boardId, ownerId: userId }, q, options);
  }
  const after = q.cursor ? decodeKeysetCursor('images', q.cursor) : null;
  await prepareSearch(tx, q, options);
  const where = [eq(images.userId, userId), ...imageFilters(q)];
  if (after) where.push(sql`(${images.createdAt}, ${images.id}) < (${after.time}::timestamptz, ${after.id}::uuid)`);
  const rows = await tx
    .select({ ...summaryColumns, position: cursorTime(images.createdAt) })
    .from(images)
    .where(and(...where))
    .orderBy(newestFirst(images.createdAt), newestFirst(images.id))
    .limit(q.limit + 1);
  return toPage('images', rows, q.limit);
}

/**
 * A board's images in the board's own order: most recently added first, by keyset on
 * (added_at, image_id) over board_images_keyset_idx. The caller has checked the board;
 * `ownerId` pins both tables to its owner, which matters on the public (system) path.
 */
export async function queryBoardPage(
  tx: Tx,
  board: { boardId: string; ownerId: string },
  q: PageQuery,
  options: PageOptions = {},
): Promise<ImagePage<ImageSummaryRow>> {
  const after = q.cursor ? decodeKeysetCursor('board', q.cursor) : null;
  await prepareSearch(tx, q, options);
  const where = [
    eq(boardImages.boardId, board.boardId),
    eq(boardImages.userId, board.ownerId),
    eq(images.userId, board.ownerId),
    ...imageFilters(q),
  ];
  if (after)
    where.push(sql`(${boardImages.addedAt}, ${boardImages.imageId}) < (${after.time}::timestamptz, ${after.id}::uuid)`);
  const rows = await tx
    .select({ ...summaryColumns, position: cursorTime(boardImages.addedAt) })
    .from(boardImages)
    .innerJoin(images, eq(images.id, boardImages.imageId))
    .where(and(...where))
    .orderBy(newestFirst(boardImages.addedAt), newestFirst(boardImages.imageId))
    .limit(q.limit + 1);
  return toPage('board', rows, q.limit);
}

export async function imageUrls(
  store: ObjectStore,
  row: { thumbKey: string; originalKey: string },
): Promise<{ thumbUrl: string; originalUrl: string }> {
  const [thumbUrl, originalUrl] = await Promise.all([store.readUrl(row.thumbKey), store.readUrl(row.originalKey)]);
  return { thumbUrl, originalUrl };
}

export async function presentImage(store: ObjectStore, row: ImageSummaryRow) {
  const { thumbKey, originalKey, ...rest } = row;
  return { ...rest, ...(await imageUrls(store, { thumbKey, originalKey })) };
}
export type GalleryImage = Awaited<ReturnType<typeof presentImage>>;

export async function listGallery(
  deps: AppDeps,
  userId: string,
  q: PageQuery & { boardId?: string },
): Promise<ImagePage<GalleryImage>> {
  const page = await withUser(deps.db, userId, (tx) => queryImagePage(tx, userId, q));
  return {
    items: await Promise.all(page.items.map((row) => presentImage(deps.store, row))),
    nextCursor: page.nextCursor,
  };
}

type JobOfImage = Pick<
  typeof jobs.$inferSelect,
  | 'kind'
  | 'strength'
  | 'upscaleScale'
  | 'initUploadId'
  | 'initImageId'
  | 'initKey'
  | 'initWidth'
  | 'initHeight'
  | 'maskUploadId'
  | 'maskKey'
>;

/**
 * What `generation.create` takes to make the image again: its own seed (a batch's image i has
 * the job's seed + i), one image, and the job's inputs. Null for an upscale, and when an input
 * is gone (its gallery image was deleted): nothing could make it again.
 */
function createInputOf(params: GenerationParams, job: JobOfImage): CreateJobInput | null {
  if (job.kind === 'upscale') return null;
  if (job.kind === 'txt2img') return params;
  const initImage = job.initUploadId
    ? { uploadId: job.initUploadId }
    : job.initImageId
      ? { imageId: job.initImageId }
      : null;
  if (!initImage) return null;
  const withInit = { ...params, initImage, strength: job.strength! };
  if (job.kind === 'img2img') return withInit;
  return job.maskUploadId ? { ...withInit, mask: { uploadId: job.maskUploadId } } : null;
}

/** Everything about one image, including the parameters the web needs to "recall" it, and its lineage. */
export async function getImage(deps: AppDeps, userId: string, imageId: string) {
  const found = await withUser(deps.db, userId, async (tx) => {
    const [row] = await tx
      .select({
        image: images,
        job: {
          kind: jobs.kind,
          strength: jobs.strength,
          upscaleScale: jobs.upscaleScale,
          initUploadId: jobs.initUploadId,
          initImageId: jobs.initImageId,
          initKey: jobs.initKey,
          initWidth: jobs.initWidth,
          initHeight: jobs.initHeight,
          maskUploadId: jobs.maskUploadId,
          maskKey: jobs.maskKey,
        },
      })
      .from(images)
      .innerJoin(jobs, eq(jobs.id, images.jobId))
      .where(and(eq(images.id, imageId), eq(images.userId, userId)));
    if (!row) return null;
    const lineage = { id: images.id, kind: images.kind, thumbKey: images.thumbKey };
    const [onBoards, parent, children] = await Promise.all([
      tx
        .select({ id: boards.id, name: boards.name })
        .from(boardImages)
        .innerJoin(boards, eq(boards.id, boardImages.boardId))
        .where(eq(boardImages.imageId, imageId))
        .orderBy(boards.name),
      row.image.parentImageId
        ? tx.select(lineage).from(images).where(eq(images.id, row.image.parentImageId))
        : Promise.resolve([]),
      tx
        .select(lineage)
        .from(images)
        .where(and(eq(images.parentImageId, imageId), eq(images.userId, userId)))
        .orderBy(images.createdAt, images.jobIndex),
    ]);
    return { ...row, onBoards, parent: parent[0] ?? null, children };
  });
  if (!found) throw notFound('Image');
  const { image, job, onBoards, parent, children } = found;
  const params = paramsOf(image);
  const [urls, sources, parentThumb, childThumbs] = await Promise.all([
    imageUrls(deps.store, image),
    sourcesOf(deps.store, job),
    parent ? deps.store.readUrl(parent.thumbKey) : null,
    Promise.all(children.map((child) => deps.store.readUrl(child.thumbKey))),
  ]);
  return {
    id: image.id,
    jobId: image.jobId,
    kind: image.kind,
    /** Its place among its job's images (0 … count − 1). */
    jobIndex: image.jobIndex,
    ...urls,
    width: image.width,
    height: image.height,
    bytes: image.bytes,
    prompt: image.prompt,
    negativePrompt: image.negativePrompt,
    model: image.model,
    steps: image.steps,
    cfgScale: image.cfgScale,
    seed: image.seed,
    sampler: image.sampler,
    engine: image.engine,
    starred: image.starred,
    createdAt: image.createdAt,
    /** The generation parameters as `generation.create` takes them (size and seed only; see `createInput`). */
    params,
    /** Exactly what `generation.create` takes to make this image again, inputs included. */
    createInput: createInputOf(params, job),
    /** An upscale: what it was made from, and how. */
    upscale:
      job.kind === 'upscale' ? { sourceImageId: job.initImageId, scale: job.upscaleScale as UpscaleScale } : null,
    /** The job's inputs, as `generation.get` shows them. */
    sources,
    /** The gallery image its job started from. */
    parent: parent ? { id: parent.id, thumbUrl: parentThumb! } : null,
    /** Images made from this one (img2img, inpaint, upscales), oldest first. */
    children: children.map((child, i) => ({ id: child.id, kind: child.kind, thumbUrl: childThumbs[i]! })),
    boards: onBoards,
  };
}

export async function starImage(deps: AppDeps, userId: string, imageId: string, starred: boolean) {
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .update(images)
      .set({ starred })
      .where(and(eq(images.id, imageId), eq(images.userId, userId)))
      .returning({ id: images.id }),
  );
  if (!row) throw notFound('Image');
  return { imageId, starred };
}

/**
 * Deletes images (rows, their board links by cascade, covers by SET NULL) and both objects
 * of each. The objects go while the transaction is still open: if S3 refuses, the rows come
 * back and a retry finishes the job, instead of rows vanishing over objects nobody can reach.
 * Ids that are gone already, or are not the user's, are skipped: deleting twice is no error.
 *
 * An image that a pending or running job starts from (img2img, inpaint, upscale) is refused
 * with CONFLICT, the whole call with it: the job was paid for and must find its input. The
 * rows are locked first, so a create that is resolving the same image (KEY SHARE, see
 * uploads' `resolveImageSource`) either commits its job before the check reads, or finds the
 * image gone.
 */
export async function deleteImages(deps: AppDeps, userId: string, imageIds: string[]): Promise<{ deleted: string[] }> {
  if (imageIds.length === 0) return { deleted: [] };
  return withUser(deps.db, userId, async (tx) => {
    const mine = and(inArray(images.id, imageIds), eq(images.userId, userId));
    await tx.select({ id: images.id }).from(images).where(mine).for('update');
    const inUse = await tx
      .selectDistinct({ imageId: jobs.initImageId })
      .from(jobs)
      .where(and(inArray(jobs.initImageId, imageIds), inArray(jobs.status, ['pending', 'in_progress'])));
    if (inUse.length > 0) {
      const ids = inUse.map((row) => row.imageId!);
      throw new DomainError(
        'CONFLICT',
        `${ids.length === 1 ? 'This image is' : `${ids.length} of these images are`} the input of a job that has not finished; delete ${ids.length === 1 ? 'it' : 'them'} once the job is done or cancelled.`,
        { imageIds: ids },
      );
    }
    const gone = await tx
      .delete(images)
      .where(mine)
      .returning({ id: images.id, originalKey: images.originalKey, thumbKey: images.thumbKey });
    await deps.store.deleteKeys(gone.flatMap((g) => [g.originalKey, g.thumbKey]));
    return { deleted: gone.map((g) => g.id) };
  });
}

/** A short-lived URL that makes the browser save the original rather than show it. */
export async function downloadUrl(
  deps: AppDeps,
  userId: string,
  imageId: string,
): Promise<{ url: string; filename: string; expiresInSeconds: number }> {
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .select({ originalKey: images.originalKey })
      .from(images)
      .where(and(eq(images.id, imageId), eq(images.userId, userId))),
  );
  if (!row) throw notFound('Image');
  const filename = `pingvas-${imageId}.png`;
  const expiresInSeconds = deps.store.config.presignSeconds;
  // Always presigned, even with a CDN: only S3 honours the response-content-disposition override.
  const url = await deps.store.presignGet(row.originalKey, {
    contentDisposition: `attachment; filename="${filename}"`,
  });
  return { url, filename, expiresInSeconds };
}
