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
import { leaseHeld } from '../generation/jobs.js';
import { isWebp, PNG_HEADER_BYTES, pngSize, WEBP_HEADER_BYTES } from './image-headers.js';

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
      .select({ width: jobs.width, height: jobs.height, count: jobs.count, prefix: jobs.attemptPrefix })
      .from(jobs)
      .where(leaseHeld(input)),
  );
  if (!job?.prefix)
    throw new DomainError('LEASE_LOST', 'This job is no longer leased to you; drop it.', { jobId: input.jobId });
  const index = input.index ?? 0;
  if (index >= job.count) {
    throw badUpload(
      `This job makes ${job.count} image${job.count === 1 ? '' : 's'}: index must be below ${job.count}.`,
      {
        index,
        count: job.count,
      },
    );
  }
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
  const url = await deps.store.presignPut(attemptKeys(job.prefix, index)[input.object], contentType, {
    contentLength: input.bytes,
    expiresSeconds: seconds,
  });
  return { url, contentType, expiresAt: new Date(Date.now() + seconds * 1000) };
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
 * Checks the worker's report against the job: one image per index, each checked as
 * `checkUploadedImage`. Anything else is a BAD_REQUEST that changes nothing.
 */
export async function checkUploadedImages(
  store: ObjectStore,
  job: { width: number; height: number; count: number; attemptPrefix: string },
  reported: CompleteInput['images'],
): Promise<void> {
  if (reported.length !== job.count) {
    throw badUpload(
      `This job makes ${job.count} image${job.count === 1 ? '' : 's'}; ${reported.length} were reported.`,
      {
        count: job.count,
        reported: reported.length,
      },
    );
  }
  await Promise.all(
    reported.map((image, index) =>
      checkUploadedImage(store, job, index, image).catch((err: unknown) => {
        // In a batch, say which image is wrong.
        if (job.count === 1 || !(err instanceof DomainError)) throw err;
        throw badUpload(`Image ${index}: ${err.message}`, { ...(err.details as Record<string, unknown>), index });
      }),
    ),
  );
}

/**
 * Checks one reported image against the job, then its stored objects against both: the
 * original is a PNG of exactly the job's size and of the reported byte count, the thumbnail a
 * WebP, each within its bound.
 */
async function checkUploadedImage(
  store: ObjectStore,
  job: { width: number; height: number; attemptPrefix: string },
  index: number,
  image: CompleteInput['images'][number],
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
  const keys = attemptKeys(job.attemptPrefix, index);
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
