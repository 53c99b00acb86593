import { expect } from 'vitest';
import sharp from 'sharp';
import type { UploadImageType } from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { TestApp } from '../../test/harness.js';

/** uploads.create, then the browser's PUT to the presigned URL. */
export async function putUpload(
  app: TestApp,
  user: SessionUser,
  body: Uint8Array,
  contentType: UploadImageType = 'image/png',
): Promise<string> {
  const { uploadId, url } = await app.callerFor(user).uploads.create({ contentType, size: body.length });
  const response = await fetch(url, { method: 'PUT', body, headers: { 'content-type': contentType } });
  expect(response.status).toBe(200);
  return uploadId;
}

/** A solid-colour picture in one of the formats sharp writes. */
export const photo = (format: 'png' | 'jpeg' | 'webp' | 'gif', width = 64, height = 48) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 30 } } })
    .toFormat(format)
    .toBuffer();

/** A checked upload of a `width × height` PNG, as the browser makes one: create, PUT, complete. */
export async function checkedUpload(app: TestApp, user: SessionUser, width: number, height: number): Promise<string> {
  const uploadId = await putUpload(app, user, await photo('png', width, height));
  await app.callerFor(user).uploads.complete({ uploadId });
  return uploadId;
}
