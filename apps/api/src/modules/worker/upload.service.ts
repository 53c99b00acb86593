import { and, eq, gt, sql } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import {
  DomainError,
  maxUploadBytes,
  UPLOAD_CONTENT_TYPES,
  type CompleteInput,
  type UploadObject,
  type UploadUrl,
  type UploadUrlInput,
} from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { attemptKeys, type ObjectStore } from '../../infra/object-store.js';

/**
 * Uploads are per attempt: a worker gets a PUT URL only for its current lease, under the
 * attempt's random prefix, for a declared byte count within the bound of its job's size.
 * Before completing, the API looks at what was really stored (size, type, first bytes).
 */

const jobs = schema.generationJobs;
/** Presigned PUT lifetime when the store's config names none. */
const DEFAULT_UPLOAD_URL_SECONDS = 120;

function badUpload(message: string, details: Record<string, unknown>): DomainError<'BAD_REQUEST'> {
  return new DomainError('BAD_REQUEST', message, details);
}

export function uploadUrlSeconds(store: ObjectStore): number {
  return store.config.uploadUrlSeconds ?? DEFAULT_UPLOAD_URL_SECONDS;
}

/** A short-lived PUT URL for one object of the caller's current attempt; LEASE_LOST if the lease is not theirs. */
export async function issueUploadUrl(deps: AppDeps, input: UploadUrlInput): Promise<UploadUrl> {
  const [job] = await withSystem(deps.db, (tx) =>
    tx
      .select({ width: jobs.width, height: jobs.height, prefix: jobs.attemptPrefix })
      .from(jobs)
      .where(
        and(
          eq(jobs.id, input.jobId),
          eq(jobs.status, 'in_progress'),
          eq(jobs.leaseToken, input.leaseToken),
          gt(jobs.leaseExpiresAt, sql`now()`),
        ),
      ),
  );
  if (!job?.prefix)
    throw new DomainError('LEASE_LOST', 'This job is no longer leased to you; drop it.', { jobId: input.jobId });
  const limit = maxUploadBytes(input.object, job);
  if (input.bytes > limit) {
    throw badUpload(`The ${input.object} may be at most ${limit} bytes for a ${job.width}×${job.height} job.`, {
      object: input.object,
      bytes: input.bytes,
      limit,
    });
  }
  const seconds = uploadUrlSeconds(deps.store);
  const contentType = UPLOAD_CONTENT_TYPES[input.object];
  const url = await deps.store.presignPut(attemptKeys(job.prefix)[input.object], contentType, {
    contentLength: input.bytes,
    expiresSeconds: seconds,
  });
  return { url, contentType, expiresAt: new Date(Date.now() + seconds * 1000) };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4). */
const PNG_HEADER_BYTES = 24;
const WEBP_HEADER_BYTES = 12;

function pngSize(head: Uint8Array): { width: number; height: number } | null {
  if (head.length < PNG_HEADER_BYTES || PNG_SIGNATURE.some((byte, i) => head[i] !== byte)) return null;
  if (Buffer.from(head.subarray(12, 16)).toString('latin1') !== 'IHDR') return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function isWebp(head: Uint8Array): boolean {
  const text = Buffer.from(head).toString('latin1');
  return head.length >= WEBP_HEADER_BYTES && text.startsWith('RIFF') && text.slice(8, 12) === 'WEBP';
}

async function storedObject(store: ObjectStore, key: string, object: UploadObject, limit: number, headBytes: number) {
  const head = await store.head(key);
  if (!head) throw badUpload('Upload the original and the thumbnail before completing the job.', { missing: object });
  if (head.bytes === 0) throw badUpload(`The stored ${object} is empty.`, { object });
  if (head.contentType !== UPLOAD_CONTENT_TYPES[object]) {
    throw badUpload(`The stored ${object} is ${head.contentType ?? 'untyped'}, not ${UPLOAD_CONTENT_TYPES[object]}.`, {
      object,
    });
  }
  if (head.bytes > limit)
    throw badUpload(`The stored ${object} is ${head.bytes} bytes, over the bound of ${limit}.`, { object, limit });
  // A HEAD first, then a ranged GET of what is there: the embedded S3 server drops the connection
  // on a range request for an empty object instead of answering 416, so the size is known first.
  return { bytes: head.bytes, first: await store.getPrefixBytes(key, Math.min(headBytes, head.bytes)) };
}

/**
 * Checks the worker's report against the job, then the attempt's stored objects against both:
 * the original is a PNG of exactly the job's size and of the reported byte count, the
 * thumbnail a WebP, each within its bound. Anything else is a BAD_REQUEST that changes nothing.
 */
export async function checkUploadedImage(
  store: ObjectStore,
  job: { width: number; height: number; attemptPrefix: string },
  image: CompleteInput['image'],
): Promise<void> {
  if (image.width !== job.width || image.height !== job.height) {
    throw badUpload(`The image is ${image.width}×${image.height}, but the job asked for ${job.width}×${job.height}.`, {
      width: image.width,
      height: image.height,
    });
  }
  const originalLimit = maxUploadBytes('original', job);
  if (image.bytes > originalLimit) {
    throw badUpload(`The image is ${image.bytes} bytes, over the bound of ${originalLimit} for its size.`, {
      bytes: image.bytes,
    });
  }
  const keys = attemptKeys(job.attemptPrefix);
  const [original, thumb] = await Promise.all([
    storedObject(store, keys.original, 'original', originalLimit, PNG_HEADER_BYTES),
    storedObject(store, keys.thumb, 'thumb', maxUploadBytes('thumb', job), WEBP_HEADER_BYTES),
  ]);
  if (original.bytes !== image.bytes) {
    throw badUpload(`The stored original is ${original.bytes} bytes, not the ${image.bytes} reported.`, {
      bytes: original.bytes,
    });
  }
  const size = pngSize(original.first);
  if (!size) throw badUpload('The stored original is not a PNG.', { object: 'original' });
  if (size.width !== job.width || size.height !== job.height) {
    throw badUpload(
      `The stored original is ${size.width}×${size.height}, but the job asked for ${job.width}×${job.height}.`,
      size,
    );
  }
  if (!isWebp(thumb.first)) throw badUpload('The stored thumbnail is not a WebP.', { object: 'thumb' });
}
