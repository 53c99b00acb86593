import { randomBytes } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import sharp, { type Metadata } from 'sharp';
import {
  DomainError,
  MAX_UPLOAD_BYTES,
  MAX_UPLOAD_SIDE,
  notFound,
  type ImageSource,
  type UploadCreateInput,
  type UploadImageType,
} from '@pingvas/core';
import { schema, withUser, type Tx } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import { uploadUrlSeconds } from '../worker/upload.service.js';

const { uploads, images } = schema;

/** Raw files as the browser PUT them; nothing under here is kept past its upload's first hour. */
export const INCOMING_PREFIX = 'uploads/incoming/';
/** The checked, re-encoded PNGs. */
export const CHECKED_PREFIX = 'uploads/images/';
/** After its PUT URL dies, how long an upload may still be completed. */
const COMPLETE_GRACE_SECONDS = 15 * 60;
/** How long a checked upload waits for a job to use it before it is deleted. */
export const UNUSED_UPLOAD_SECONDS = 24 * 3600;

/** Where the checked PNG of a raw upload goes: derived, so a crash between the two writes leaves no untraceable object. */
export function checkedKeyFor(rawKey: string): string {
  return `${CHECKED_PREFIX}${rawKey.slice(INCOMING_PREFIX.length)}.png`;
}

/** Seconds from create until an upload never completed is deleted. */
export function pendingUploadSeconds(deps: Pick<AppDeps, 'store'>): number {
  return uploadUrlSeconds(deps.store) + COMPLETE_GRACE_SECONDS;
}

/** sharp's names for the formats we take, by the Content-Type a client declares for them. */
const FORMAT_OF_TYPE: Record<UploadImageType, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/webp': 'webp',
};
const FORMAT_NAMES: Record<string, string> = {
  png: 'PNG',
  jpeg: 'JPEG',
  webp: 'WebP',
  gif: 'GIF',
  svg: 'SVG',
  tiff: 'TIFF',
  heif: 'HEIF',
};

function refused(message: string, details: Record<string, unknown> = {}): DomainError<'BAD_REQUEST'> {
  return new DomainError('BAD_REQUEST', message, details);
}

export interface CreatedUpload {
  uploadId: string;
  /** PUT the file here with exactly the declared Content-Type and size (both are signed). */
  url: string;
  expiresAt: Date;
}

export async function createUpload(deps: AppDeps, userId: string, input: UploadCreateInput): Promise<CreatedUpload> {
  const rawKey = `${INCOMING_PREFIX}${randomBytes(16).toString('hex')}`;
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .insert(uploads)
      .values({
        userId,
        declaredContentType: input.contentType,
        declaredBytes: input.size,
        rawKey,
        expiresAt: sql`now() + make_interval(secs => ${pendingUploadSeconds(deps)})`,
      })
      .returning({ id: uploads.id }),
  );
  const seconds = uploadUrlSeconds(deps.store);
  const url = await deps.store.presignPut(rawKey, input.contentType, {
    contentLength: input.size,
    expiresSeconds: seconds,
  });
  return { uploadId: row!.id, url, expiresAt: new Date(Date.now() + seconds * 1000) };
}

export interface CheckedUpload {
  uploadId: string;
  width: number;
  height: number;
}

/** Looks at the bytes, never at the declared type; refuses anything that is not a sane, small image. */
async function reencode(
  raw: Uint8Array,
  declared: UploadImageType,
): Promise<{ png: Buffer; width: number; height: number }> {
  let header: Metadata;
  try {
    // Reads the header only: no pixel is decoded before the dimensions are known to be sane.
    header = await sharp(raw, { limitInputPixels: false }).metadata();
  } catch {
    throw refused('The file is not an image we can read; upload a PNG, JPEG or WebP.');
  }
  const format = header.format as string;
  if (!Object.values(FORMAT_OF_TYPE).includes(format)) {
    throw refused(`The file is ${FORMAT_NAMES[format] ?? `a ${format}`} image; upload a PNG, JPEG or WebP.`, {
      format,
    });
  }
  if (format !== FORMAT_OF_TYPE[declared]) {
    throw refused(`The file was declared ${declared} but is a ${FORMAT_NAMES[format]}; declare the type it has.`, {
      format,
    });
  }
  const { width, height } = header;
  if (!width || !height || width > MAX_UPLOAD_SIDE || height > MAX_UPLOAD_SIDE) {
    throw refused(`The image is ${width}×${height}; each side may be at most ${MAX_UPLOAD_SIDE} pixels.`, {
      width,
      height,
    });
  }
  try {
    // The pixel limit again at decode time, in case a format's header and its data disagree.
    const { data, info } = await sharp(raw, { limitInputPixels: MAX_UPLOAD_SIDE * MAX_UPLOAD_SIDE, failOn: 'error' })
      .autoOrient()
      .png()
      .toBuffer({ resolveWithObject: true });
    return { png: data, width: info.width, height: info.height };
  } catch {
    throw refused('The image is damaged and could not be decoded.');
  }
}

/**
 * Checks what the browser stored and keeps it as a PNG without metadata. Idempotent: completing
 * a checked upload again answers the same. A refusal deletes the raw file and marks the upload
 * rejected; the user starts a new one.
 */
export async function completeUpload(deps: AppDeps, userId: string, uploadId: string): Promise<CheckedUpload> {
  const [row] = await withUser(deps.db, userId, (tx) =>
    tx
      .select({
        status: uploads.status,
        rawKey: uploads.rawKey,
        declaredContentType: uploads.declaredContentType,
        declaredBytes: uploads.declaredBytes,
        width: uploads.width,
        height: uploads.height,
        expired: sql<boolean>`coalesce(${uploads.expiresAt} <= now(), false)`,
      })
      .from(uploads)
      .where(eq(uploads.id, uploadId)),
  );
  if (!row) throw notFound('Upload');
  if (row.status === 'ready') return { uploadId, width: row.width!, height: row.height! };
  if (row.status === 'rejected') throw refused('This upload was refused; start a new one.', { uploadId });
  if (row.expired) throw refused('This upload has expired; start a new one.', { uploadId });

  const stored = await deps.store.head(row.rawKey);
  if (!stored) throw refused('Nothing has been uploaded yet: PUT the file to the URL first.', { uploadId });

  let checked: Awaited<ReturnType<typeof reencode>>;
  try {
    // The signed Content-Length makes S3 refuse any other size; checked again, as everything here is.
    if (stored.bytes !== row.declaredBytes || stored.bytes > MAX_UPLOAD_BYTES) {
      throw refused(`The stored file is ${stored.bytes} bytes, not the ${row.declaredBytes} declared.`, { uploadId });
    }
    checked = await reencode(await deps.store.getBytes(row.rawKey), row.declaredContentType as UploadImageType);
  } catch (err) {
    if (err instanceof DomainError) await reject(deps, userId, uploadId, row.rawKey);
    throw err;
  }

  const imageKey = checkedKeyFor(row.rawKey);
  await deps.store.putBytes(imageKey, checked.png, 'image/png');
  const [marked] = await withUser(deps.db, userId, (tx) =>
    tx
      .update(uploads)
      .set({
        status: 'ready',
        imageKey,
        width: checked.width,
        height: checked.height,
        bytes: checked.png.length,
        completedAt: sql`now()`,
        expiresAt: sql`now() + make_interval(secs => ${UNUSED_UPLOAD_SECONDS})`,
      })
      .where(and(eq(uploads.id, uploadId), eq(uploads.status, 'pending')))
      .returning({ id: uploads.id }),
  );
  if (!marked) return afterLostRace(deps, userId, uploadId, imageKey);
  await deps.store.deleteKeys([row.rawKey]);
  return { uploadId, width: checked.width, height: checked.height };
}

/**
 * The row changed while the file was being checked: another complete finished first (same
 * answer), or the expiry sweep took the upload, in which case the PNG just written is deleted.
 */
async function afterLostRace(
  deps: AppDeps,
  userId: string,
  uploadId: string,
  imageKey: string,
): Promise<CheckedUpload> {
  const [now] = await withUser(deps.db, userId, (tx) =>
    tx
      .select({ status: uploads.status, width: uploads.width, height: uploads.height })
      .from(uploads)
      .where(eq(uploads.id, uploadId)),
  );
  if (now?.status === 'ready') return { uploadId, width: now.width!, height: now.height! };
  await deps.store.deleteKeys([imageKey]);
  throw refused('This upload has expired; start a new one.', { uploadId });
}

async function reject(deps: AppDeps, userId: string, uploadId: string, rawKey: string): Promise<void> {
  await deps.store.deleteKeys([rawKey]);
  await withUser(deps.db, userId, (tx) =>
    tx
      .update(uploads)
      .set({ status: 'rejected' })
      .where(and(eq(uploads.id, uploadId), eq(uploads.status, 'pending'))),
  );
}

export interface ResolvedImage {
  /** The stored PNG the engine should read. */
  key: string;
  bytes: number | null;
  width: number;
  height: number;
}

/**
 * The stored PNG behind `{ uploadId }` or `{ imageId }`, inside the caller's `withUser`
 * transaction: another user's upload or image is NOT_FOUND, like one that never existed.
 * With `retain`, a checked upload stops expiring (a job now relies on it); an upload already
 * past its expiry is NOT_FOUND, so the expiry sweep and a job can never both have it; a gallery
 * image is locked (KEY SHARE) until the caller commits, see `deleteImages`.
 */
export async function resolveImageSource(
  tx: Tx,
  source: ImageSource,
  options: { retain?: boolean } = {},
): Promise<ResolvedImage> {
  if ('imageId' in source) {
    const query = tx
      .select({ key: images.originalKey, bytes: images.bytes, width: images.width, height: images.height })
      .from(images)
      .where(eq(images.id, source.imageId));
    // Retained, the image is locked against deletion until the caller commits: a concurrent
    // gallery delete then either sees the job that uses it (and refuses) or wins (NOT_FOUND here).
    const [image] = options.retain ? await query.for('key share') : await query;
    if (!image) throw notFound('Image');
    return image;
  }
  const usable = and(
    eq(uploads.id, source.uploadId),
    eq(uploads.status, 'ready'),
    sql`(${uploads.expiresAt} is null or ${uploads.expiresAt} > now())`,
  );
  const columns = { key: uploads.imageKey, bytes: uploads.bytes, width: uploads.width, height: uploads.height };
  const [upload] = options.retain
    ? await tx.update(uploads).set({ expiresAt: null }).where(usable).returning(columns)
    : await tx.select(columns).from(uploads).where(usable);
  if (!upload) throw notFound('Upload');
  return { key: upload.key!, bytes: upload.bytes, width: upload.width!, height: upload.height! };
}
