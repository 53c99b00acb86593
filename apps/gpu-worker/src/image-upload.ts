import sharp from 'sharp';
import { Backoff, sleep } from './backoff.js';

export const THUMB_SIZE = 256;
const UPLOAD_ATTEMPTS = 3;

/** The gallery's thumbnail: the whole picture, fitted inside 256×256, as WebP. */
export function makeThumbnail(png: Buffer): Promise<Buffer> {
  return sharp(png).resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside' }).webp({ quality: 80, effort: 2 }).toBuffer();
}

export class UploadError extends Error {}

/**
 * PUTs bytes to a presigned URL. The Content-Type must be the one the URL was signed for.
 * A network error or a 5xx is retried a few times; a 4xx (expired or wrong signature) is not.
 */
export async function uploadTo(url: string, body: Buffer, contentType: string, signal: AbortSignal): Promise<void> {
  const backoff = new Backoff(200, 2_000);
  for (let attempt = 1; ; attempt++) {
    let failure: string;
    try {
      const response = await fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType }, signal });
      if (response.ok) {
        await response.body?.cancel();
        return;
      }
      failure = `HTTP ${response.status} ${(await response.text()).slice(0, 200)}`;
      if (response.status < 500) throw new UploadError(`upload refused: ${failure}`);
    } catch (error) {
      if (error instanceof UploadError || signal.aborted) throw error;
      failure = (error as Error).message;
    }
    if (attempt >= UPLOAD_ATTEMPTS) throw new UploadError(`upload failed after ${attempt} attempts: ${failure}`);
    await sleep(backoff.next(), signal);
  }
}
