import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { MAX_UPLOAD_BYTES, type UploadImageType } from '@pingvas/core';
import { withUser } from '@pingvas/db';
import { createTestApp, type TestApp } from '../../test/harness.js';
import type { SessionUser } from '../../context.js';
import { seedImages } from '../gallery/gallery.test-support.js';
import { sweepOrphanObjects } from '../worker/orphan-sweep.task.js';
import { completeUpload, resolveImageSource } from './uploads.service.js';
import { photo, putUpload } from './uploads.test-support.js';
import { sweepExpiredUploads } from './uploads-expiry.task.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});

/** Every object key under uploads/, sorted. */
async function storedUploads(): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of app.deps.store.listPages('uploads/')) keys.push(...page.map((object) => object.key));
  return keys.sort();
}

async function uploadRow(uploadId: string) {
  const [row] = await app.database.admin`select * from uploads where id = ${uploadId}`;
  return row;
}

const put = (user: SessionUser, body: Uint8Array, contentType?: UploadImageType) =>
  putUpload(app, user, body, contentType);

/** The tRPC error a call fails with (code and message), or null. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string } | null> {
  return promise.then(
    () => null,
    (err: { code: string; message: string }) => ({ code: err.code, message: err.message }),
  );
}

/** A real PNG header claiming `width × height`, with one tiny (wrong-sized) image data chunk. */
function pngClaiming(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    // One row of zeros (60 KB for 20,000 pixels) deflates to about 60 bytes.
    chunk('IDAT', deflateSync(Buffer.alloc(1 + width * 3))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('uploads.create', () => {
  it.each([
    [{ contentType: 'image/gif', size: 10 }, 'contentType must be one of: image/png, image/jpeg, image/webp'],
    [{ contentType: 'text/plain', size: 10 }, 'contentType must be one of: image/png, image/jpeg, image/webp'],
    [{ contentType: 'image/png', size: MAX_UPLOAD_BYTES + 1 }, 'size must be at most 10,485,760 bytes (10 MB)'],
    [{ contentType: 'image/png', size: 0 }, 'size must be at least 1 byte'],
  ])('refuses %j with a clear message and stores nothing', async (input, message) => {
    const user = await app.createUser();
    const before = await storedUploads();
    const error = await failure(app.callerFor(user).uploads.create(input as never));
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toContain(message);
    const [{ count }] = (await app.database.admin`select count(*)::int from uploads where user_id = ${user.id}`) as [
      { count: number },
    ];
    expect(count).toBe(0);
    expect(await storedUploads()).toEqual(before);
  });

  it('signs the type and the byte count, and checks the stored size itself', async () => {
    const user = await app.createUser();
    const body = await photo('png');
    const { uploadId, url } = await app.callerFor(user).uploads.create({ contentType: 'image/png', size: body.length });
    const signed = new URL(url);
    expect(signed.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
    expect(signed.searchParams.get('X-Amz-Expires')).toBe(String(app.config.S3_UPLOAD_URL_SECONDS));
    expect(decodeURIComponent(signed.pathname)).toMatch(/\/uploads\/incoming\/[0-9a-f]{32}$/);
    // Real S3 refuses a body of another length than signed; the embedded server does not check
    // signatures, so this PUT lands, and complete must catch it on its own.
    const longer = Buffer.concat([body, Buffer.alloc(1)]);
    expect((await fetch(url, { method: 'PUT', body: longer, headers: { 'content-type': 'image/png' } })).status).toBe(
      200,
    );
    expect((await failure(app.callerFor(user).uploads.complete({ uploadId })))?.message).toBe(
      `The stored file is ${body.length + 1} bytes, not the ${body.length} declared.`,
    );
    expect(await uploadRow(uploadId)).toMatchObject({ status: 'rejected' });
  });

  it('requires a signed-in user', async () => {
    expect((await failure(app.callerFor(null).uploads.create({ contentType: 'image/png', size: 10 })))?.code).toBe(
      'UNAUTHORIZED',
    );
  });
});

describe('uploads.complete', () => {
  it('stores a checked PNG without metadata and answers its size, idempotently', async () => {
    const user = await app.createUser();
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#2a6' } })
      .jpeg()
      .withExif({ IFD0: { Copyright: 'secret-owner-name' } })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(jpeg.includes('secret-owner-name')).toBe(true);
    const uploadId = await put(user, jpeg, 'image/jpeg');
    // EXIF orientation 6 is a quarter turn: stored upright, so 48 wide and 64 high.
    expect(await app.callerFor(user).uploads.complete({ uploadId })).toEqual({ uploadId, width: 48, height: 64 });
    expect(await app.callerFor(user).uploads.complete({ uploadId })).toEqual({ uploadId, width: 48, height: 64 });

    const row = await uploadRow(uploadId);
    expect(row).toMatchObject({ status: 'ready', width: 48, height: 64 });
    expect(await storedUploads()).toContain(row!.image_key);
    expect(await storedUploads()).not.toContain(row!.raw_key);
    const stored = Buffer.from(await app.deps.store.getBytes(row!.image_key as string));
    expect(row!.bytes).toBe(stored.length);
    expect((await app.deps.store.head(row!.image_key as string))?.contentType).toBe('image/png');
    const meta = await sharp(stored).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 48, height: 64 });
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect(stored.includes('secret-owner-name')).toBe(false);
  });

  it.each(['png', 'webp'] as const)('takes a %s', async (format) => {
    const user = await app.createUser();
    const uploadId = await put(user, await photo(format, 96, 80), `image/${format}`);
    expect(await app.callerFor(user).uploads.complete({ uploadId })).toEqual({ uploadId, width: 96, height: 80 });
  });

  const refusals: [string, () => Promise<Uint8Array>, UploadImageType, RegExp][] = [
    ['a GIF', () => photo('gif'), 'image/png', /The file is GIF image; upload a PNG, JPEG or WebP/],
    [
      'a text file named .png',
      async () => Buffer.from('just some text, not a picture\n'),
      'image/png',
      /not an image we can read/,
    ],
    ['a JPEG declared as PNG', () => photo('jpeg'), 'image/png', /declared image\/png but is a JPEG/],
    ['a PNG declared as WebP', () => photo('png'), 'image/webp', /declared image\/webp but is a PNG/],
    [
      'a 20,000 × 20,000 PNG (bomb)',
      async () => pngClaiming(20_000, 20_000),
      'image/png',
      /20000×20000; each side may be at most 4096/,
    ],
    ['a 4,097 × 16 PNG', () => photo('png', 4097, 16), 'image/png', /4097×16; each side may be at most 4096/],
    [
      'a truncated PNG',
      async () => (await photo('png', 300, 300)).subarray(0, 120),
      'image/png',
      /damaged|not an image/,
    ],
  ];

  it.each(refusals)('refuses %s with a clear 400 and keeps nothing', async (_, make, declared, message) => {
    const user = await app.createUser();
    const body = await make();
    expect(body.length).toBeLessThan(200_000);
    const uploadId = await put(user, body, declared);
    const row = await uploadRow(uploadId);
    expect(await storedUploads()).toContain(row!.raw_key);

    const error = await failure(app.callerFor(user).uploads.complete({ uploadId }));
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toMatch(message);
    expect(await storedUploads()).not.toContain(row!.raw_key);
    expect((await storedUploads()).filter((key) => key.includes(String(row!.raw_key).split('/').pop()!))).toEqual([]);
    expect(await uploadRow(uploadId)).toMatchObject({ status: 'rejected', image_key: null });
    // Refused for good: completing again does not resurrect it, and no job can use it.
    expect((await failure(app.callerFor(user).uploads.complete({ uploadId })))?.message).toMatch(/was refused/);
    await expect(withUser(app.deps.db, user.id, (tx) => resolveImageSource(tx, { uploadId }))).rejects.toThrow(
      'Upload not found',
    );
  });

  it('answers "upload first" before the PUT, and completes once the file is there', async () => {
    const user = await app.createUser();
    const body = await photo('png');
    const { uploadId, url } = await app.callerFor(user).uploads.create({ contentType: 'image/png', size: body.length });
    const early = await failure(app.callerFor(user).uploads.complete({ uploadId }));
    expect(early).toEqual({
      code: 'BAD_REQUEST',
      message: 'Nothing has been uploaded yet: PUT the file to the URL first.',
    });
    expect(await uploadRow(uploadId)).toMatchObject({ status: 'pending' });
    await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'image/png' } });
    expect(await app.callerFor(user).uploads.complete({ uploadId })).toEqual({ uploadId, width: 64, height: 48 });
  });

  it("treats someone else's upload as not found and changes nothing of it", async () => {
    const owner = await app.createUser();
    const other = await app.createUser();
    const uploadId = await put(owner, await photo('png'));
    expect(await failure(app.callerFor(other).uploads.complete({ uploadId }))).toEqual({
      code: 'NOT_FOUND',
      message: 'Upload not found.',
    });
    expect(await uploadRow(uploadId)).toMatchObject({ status: 'pending' });
    expect((await app.callerFor(owner).uploads.complete({ uploadId })).width).toBe(64);
  });

  it('refuses an upload past its expiry', async () => {
    const user = await app.createUser();
    const uploadId = await put(user, await photo('png'));
    await app.database.admin`update uploads set expires_at = now() - interval '1 second' where id = ${uploadId}`;
    expect((await failure(app.callerFor(user).uploads.complete({ uploadId })))?.message).toBe(
      'This upload has expired; start a new one.',
    );
  });
});

describe('complete racing the expiry sweep', () => {
  it('leaves no PNG behind when the sweep takes the upload while it is being checked', async () => {
    const user = await app.createUser();
    const uploadId = await put(user, await photo('png'));
    const { raw_key: rawKey } = (await uploadRow(uploadId))!;
    // The real store and the real sweep; only the moment is forced: right after the PNG is written,
    // the upload passes its expiry and a sweeper on another replica runs.
    const store = Object.create(app.deps.store) as typeof app.deps.store;
    store.putBytes = async (key, body, contentType) => {
      await app.deps.store.putBytes(key, body, contentType);
      await app.database.admin`update uploads set expires_at = now() - interval '1 second' where id = ${uploadId}`;
      await sweepExpiredUploads(app.deps);
    };
    await expect(completeUpload({ ...app.deps, store }, user.id, uploadId)).rejects.toThrow(
      'This upload has expired; start a new one.',
    );
    expect(await uploadRow(uploadId)).toBeUndefined();
    expect((await storedUploads()).filter((key) => key.includes(rawKey.split('/').pop()!))).toEqual([]);
  });
});

describe('resolveImageSource', () => {
  it("gives the stored PNG of the user's upload or gallery image, and NOT_FOUND for anyone else's", async () => {
    const owner = await app.createUser();
    const other = await app.createUser();
    const uploadId = await put(owner, await photo('png', 128, 64));
    await app.callerFor(owner).uploads.complete({ uploadId });
    const [image] = await seedImages(app, owner, 1);
    const resolve = (user: SessionUser, source: { uploadId: string } | { imageId: string }) =>
      withUser(app.deps.db, user.id, (tx) => resolveImageSource(tx, source));

    const upload = await resolve(owner, { uploadId });
    expect(upload).toMatchObject({ width: 128, height: 64, key: (await uploadRow(uploadId))!.image_key });
    expect(upload.bytes).toBeGreaterThan(0);
    expect(await resolve(owner, { imageId: image!.id })).toEqual({
      key: image!.originalKey,
      bytes: 4,
      width: 512,
      height: 512,
    });
    await expect(resolve(other, { uploadId })).rejects.toThrow('Upload not found');
    await expect(resolve(other, { imageId: image!.id })).rejects.toThrow('Image not found');
  });

  it('retains an upload a job uses: the expiry sweep then keeps it', async () => {
    const user = await app.createUser();
    const kept = await put(user, await photo('png'));
    await app.callerFor(user).uploads.complete({ uploadId: kept });
    await withUser(app.deps.db, user.id, (tx) => resolveImageSource(tx, { uploadId: kept }, { retain: true }));
    expect(await uploadRow(kept)).toMatchObject({ expires_at: null });
    await sweepExpiredUploads(app.deps);
    expect(await storedUploads()).toContain((await uploadRow(kept))!.image_key);
  });
});

describe('expiry', () => {
  it('deletes expired uploads with their objects, on several replicas at once, and keeps the rest', async () => {
    const user = await app.createUser();
    const checked = await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const uploadId = await put(user, await photo('png'));
        await app.callerFor(user).uploads.complete({ uploadId });
        return uploadId;
      }),
    );
    const pending = await put(user, await photo('png'));
    const fresh = await put(user, await photo('png'));
    const expiring = [...checked.slice(0, 3), pending];
    const rows = await Promise.all(expiring.map(uploadRow));
    await app.database
      .admin`update uploads set expires_at = now() - interval '1 second' where id = any(${expiring}::uuid[])`;

    const reports = await Promise.all([sweepExpiredUploads(app.deps), sweepExpiredUploads(app.deps)]);
    expect(reports.reduce((sum, report) => sum + report.uploadsDeleted, 0)).toBe(4);
    for (const id of expiring) expect(await uploadRow(id)).toBeUndefined();
    const left = await storedUploads();
    for (const row of rows) {
      expect(left).not.toContain(row!.raw_key);
      if (row!.image_key) expect(left).not.toContain(row!.image_key);
    }
    expect(left).toContain((await uploadRow(checked[3]!))!.image_key);
    expect(left).toContain((await uploadRow(fresh))!.raw_key);
  });

  it('deletes raw files older than an upload can stay pending, whatever their row says', async () => {
    const user = await app.createUser();
    const uploadId = await put(user, await photo('png'));
    const { raw_key: rawKey } = (await uploadRow(uploadId))!;
    expect((await sweepExpiredUploads(app.deps)).rawObjectsDeleted).toBe(0);
    expect(await storedUploads()).toContain(rawKey);
    expect((await sweepExpiredUploads(app.deps, { rawOlderThanSeconds: 0 })).rawObjectsDeleted).toBeGreaterThanOrEqual(
      1,
    );
    expect(await storedUploads()).not.toContain(rawKey);
  });

  it("is left alone by the gallery's orphan sweep", async () => {
    const user = await app.createUser();
    const uploadId = await put(user, await photo('png'));
    await app.callerFor(user).uploads.complete({ uploadId });
    const pending = await put(user, await photo('png'));
    const before = await storedUploads();
    expect(before).toEqual(
      expect.arrayContaining([(await uploadRow(uploadId))!.image_key, (await uploadRow(pending))!.raw_key]),
    );
    await sweepOrphanObjects(app.deps, { olderThanSeconds: 0 });
    expect(await storedUploads()).toEqual(before);
  });
});
