import { z } from 'zod';
import { fieldError } from './field-errors.js';

/** What a user may upload to start from or to paint a mask with. */
export const UPLOAD_IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type UploadImageType = (typeof UPLOAD_IMAGE_TYPES)[number];
/** 10 MB (MiB): a 4,096² photo as JPEG or WebP fits easily, a PNG of most pictures too. */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
/** Neither side of an upload may exceed this (the largest upscale result is as large). */
export const MAX_UPLOAD_SIDE = 4096;

export const uploadCreateInputSchema = z.object({
  contentType: z.enum(UPLOAD_IMAGE_TYPES, { error: `contentType must be one of: ${UPLOAD_IMAGE_TYPES.join(', ')}` }),
  size: z
    .number({ error: fieldError('size') })
    .int('size must be a whole number of bytes')
    .min(1, 'size must be at least 1 byte')
    .max(MAX_UPLOAD_BYTES, `size must be at most ${MAX_UPLOAD_BYTES.toLocaleString('en-US')} bytes (10 MB)`),
});
export type UploadCreateInput = z.infer<typeof uploadCreateInputSchema>;

export const uploadCompleteInputSchema = z.object({ uploadId: z.uuid({ error: fieldError('uploadId') }) });
export type UploadCompleteInput = z.infer<typeof uploadCompleteInputSchema>;
