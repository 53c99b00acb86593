import { MAX_UPLOAD_BYTES, UPLOAD_IMAGE_TYPES, type UploadImageType } from '@pingvas/core';

/**
 * Bringing a picture in: checked here first (type, size) so nothing is asked of the server
 * for a file it would refuse, then `uploads.create` → PUT the bytes to the presigned URL →
 * `uploads.complete`, which checks what was stored (see the API's uploads README).
 */

export type UploadCheck = { ok: true; contentType: UploadImageType } | { ok: false; message: string };

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MB`;
}

export function checkUploadFile(file: { name?: string; type: string; size: number }): UploadCheck {
  const named = file.name ? `“${file.name}”` : 'This file';
  if (!(UPLOAD_IMAGE_TYPES as readonly string[]).includes(file.type)) {
    return { ok: false, message: `${named} is not a PNG, JPEG or WebP picture.` };
  }
  if (file.size === 0) return { ok: false, message: `${named} is empty.` };
  if (file.size > MAX_UPLOAD_BYTES) {
    return { ok: false, message: `${named} is ${megabytes(file.size)}; the most is ${megabytes(MAX_UPLOAD_BYTES)}.` };
  }
  return { ok: true, contentType: file.type as UploadImageType };
}

export interface UploadedImage {
  uploadId: string;
  width: number;
  height: number;
}

export interface UploadSteps {
  create(input: { contentType: UploadImageType; size: number }): Promise<{ uploadId: string; url: string }>;
  put(url: string, body: Blob, contentType: string, onProgress: (fraction: number) => void): Promise<void>;
  complete(input: { uploadId: string }): Promise<UploadedImage>;
}

export class UploadError extends Error {}

/** The three steps in order; progress is the PUT's share of the bytes (0–1). */
export async function uploadImage(
  file: Blob,
  name: string | undefined,
  steps: UploadSteps,
  onProgress: (fraction: number) => void = () => undefined,
): Promise<UploadedImage> {
  const check = checkUploadFile({ name, type: file.type, size: file.size });
  if (!check.ok) throw new UploadError(check.message);
  const { uploadId, url } = await steps.create({ contentType: check.contentType, size: file.size });
  // The URL signs this exact type and length: anything else is refused by the store.
  await steps.put(url, file, check.contentType, onProgress);
  onProgress(1);
  return steps.complete({ uploadId });
}

/** The PUT with upload progress (fetch cannot report it). */
export function putWithProgress(
  url: string,
  body: Blob,
  contentType: string,
  onProgress: (fraction: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', url);
    request.setRequestHeader('Content-Type', contentType);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    request.onload = () =>
      request.status >= 200 && request.status < 300
        ? resolve()
        : reject(new UploadError(`The picture could not be stored (HTTP ${request.status}). Try again.`));
    request.onerror = () =>
      reject(new UploadError('The picture could not be sent. Check your connection and try again.'));
    request.send(body);
  });
}
