import { MAX_UPLOAD_BYTES } from '@pingvas/core';
import { describe, expect, it } from 'vitest';
import { checkUploadFile, uploadImage, UploadError, type UploadSteps } from './upload.js';

function recordingSteps(calls: string[]): UploadSteps {
  return {
    create: async (input) => {
      calls.push(`create ${input.contentType} ${input.size}`);
      return { uploadId: 'u1', url: 'https://store.example/put' };
    },
    put: async (url, body, contentType, onProgress) => {
      calls.push(`put ${url} ${contentType} ${body.size}`);
      onProgress(0.5);
    },
    complete: async ({ uploadId }) => {
      calls.push(`complete ${uploadId}`);
      return { uploadId, width: 640, height: 480 };
    },
  };
}

describe('checkUploadFile', () => {
  it('takes PNG, JPEG and WebP up to 10 MB', () => {
    for (const type of ['image/png', 'image/jpeg', 'image/webp']) {
      expect(checkUploadFile({ type, size: MAX_UPLOAD_BYTES })).toEqual({ ok: true, contentType: type });
    }
  });

  it('refuses other types, empty files and anything over 10 MB, naming the file', () => {
    expect(checkUploadFile({ name: 'cat.gif', type: 'image/gif', size: 10 })).toEqual({
      ok: false,
      message: '“cat.gif” is not a PNG, JPEG or WebP picture.',
    });
    expect(checkUploadFile({ name: 'a.png', type: 'image/png', size: 0 })).toMatchObject({ ok: false });
    expect(checkUploadFile({ name: 'big.jpg', type: 'image/jpeg', size: MAX_UPLOAD_BYTES + 1 })).toEqual({
      ok: false,
      message: '“big.jpg” is 10 MB; the most is 10 MB.',
    });
    expect(checkUploadFile({ name: 'huge.jpg', type: 'image/jpeg', size: 15 * 1024 * 1024 })).toMatchObject({
      message: '“huge.jpg” is 15 MB; the most is 10 MB.',
    });
  });
});

describe('uploadImage', () => {
  it('creates, PUTs the bytes with the declared type, then completes, reporting progress to the end', async () => {
    const calls: string[] = [];
    const progress: number[] = [];
    const file = new File([new Uint8Array(42)], 'photo.webp', { type: 'image/webp' });
    const result = await uploadImage(file, file.name, recordingSteps(calls), (f) => progress.push(f));
    expect(result).toEqual({ uploadId: 'u1', width: 640, height: 480 });
    expect(calls).toEqual(['create image/webp 42', 'put https://store.example/put image/webp 42', 'complete u1']);
    expect(progress).toEqual([0.5, 1]);
  });

  it('asks nothing of the server for a file it would refuse', async () => {
    const calls: string[] = [];
    const file = new File(['<svg/>'], 'drawing.svg', { type: 'image/svg+xml' });
    await expect(uploadImage(file, file.name, recordingSteps(calls))).rejects.toBeInstanceOf(UploadError);
    expect(calls).toEqual([]);
  });

  it('does not complete an upload whose PUT failed', async () => {
    const calls: string[] = [];
    const steps = recordingSteps(calls);
    steps.put = async () => {
      throw new UploadError('The picture could not be stored (HTTP 403). Try again.');
    };
    const file = new File([new Uint8Array(3)], 'p.png', { type: 'image/png' });
    await expect(uploadImage(file, file.name, steps)).rejects.toThrow('HTTP 403');
    expect(calls).toEqual(['create image/png 3']);
  });
});
