import sharp from 'sharp';
import { THUMB_SIDE, type UploadObject } from '@pingvas/core';
import { apiErrorKind, type WorkerApi } from './api-client.js';
import { Backoff, sleep } from './backoff.js';

export const THUMB_SIZE = THUMB_SIDE;
const UPLOAD_ATTEMPTS = 3;
/** An API that does not answer within this is treated like a network error: the try is repeated. */
const URL_REQUEST_TIMEOUT_MS = 15_000;

/** The gallery's thumbnail: the whole picture, fitted inside 256×256, as WebP. */
export function makeThumbnail(png: Buffer): Promise<Buffer> {
  return sharp(png).resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside' }).webp({ quality: 80, effort: 2 }).toBuffer();
}

export class UploadError extends Error {}

/**
 * Stores one object (original or thumbnail) of one image of the current attempt: asks the API for a PUT URL (bound to this lease,
 * this object, its Content-Type and its exact size; valid for minutes), then PUTs the bytes.
 * Every try asks for a fresh URL, so a slow retry never meets an expired one. A network error
 * or a 5xx is retried a few times; a refused URL request or a 4xx from the store is not (the
 * API's refusal, e.g. LEASE_LOST, is rethrown as it came).
 */
export async function uploadObject(
  api: WorkerApi,
  lease: { jobId: string; leaseToken: string },
  which: { object: UploadObject; index: number },
  body: Buffer,
  signal: AbortSignal,
): Promise<void> {
  const backoff = new Backoff(200, 2_000);
  for (let attempt = 1; ; attempt++) {
    let failure: string;
    try {
      const urlSignal = AbortSignal.any([signal, AbortSignal.timeout(URL_REQUEST_TIMEOUT_MS)]);
      const target = await api.uploadUrl.mutate({ ...lease, ...which, bytes: body.length }, { signal: urlSignal });
      const headers = { 'content-type': target.contentType };
      const response = await fetch(target.url, { method: 'PUT', body, headers, signal });
      if (response.ok) {
        await response.body?.cancel();
        return;
      }
      failure = `HTTP ${response.status} ${(await response.text()).slice(0, 200)}`;
      if (response.status < 500) throw new UploadError(`upload refused: ${failure}`);
    } catch (error) {
      if (error instanceof UploadError || signal.aborted || apiErrorKind(error) !== 'unreachable') throw error;
      failure = (error as Error).message;
    }
    if (attempt >= UPLOAD_ATTEMPTS) throw new UploadError(`upload failed after ${attempt} attempts: ${failure}`);
    await sleep(backoff.next(), signal);
  }
}
