import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import type { SessionUser } from '../../context.js';
import { seedImages } from './gallery.test-support.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});

/** Walks every page of the user's gallery, calling `between` after each page. */
async function walk(
  user: SessionUser,
  limit: number,
  between: (seenSoFar: string[]) => Promise<void> = async () => {},
) {
  const caller = app.callerFor(user);
  const seen: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const result = await caller.gallery.list({ cursor, limit });
    seen.push(...result.items.map((i) => i.id));
    if (!result.nextCursor) return seen;
    cursor = result.nextCursor;
    await between(seen);
  }
}

describe('gallery.list', () => {
  it('lists newest first with thumbnail and original URLs and the display fields', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 5, { withObjects: true });
    const { items, nextCursor } = await app.callerFor(user).gallery.list({});
    expect(items.map((i) => i.id)).toEqual(seeded.map((s) => s.id).reverse());
    expect(nextCursor).toBeNull();
    const first = items[0]!;
    expect(first).toMatchObject({
      width: 512,
      height: 512,
      prompt: seeded[4]!.prompt,
      model: 'sd15',
      seed: 1004,
      engine: 'reference',
      starred: false,
    });
    expect(first.createdAt).toBeInstanceOf(Date);
    const thumb = await fetch(first.thumbUrl);
    expect(thumb.status).toBe(200);
    expect(new Uint8Array(await thumb.arrayBuffer())).toEqual(new Uint8Array([0x52, 0x49, 0x46, 0x46]));
    expect((await fetch(first.originalUrl)).status).toBe(200);
  });

  it('pages 1,000 images with one identical timestamp without duplicates or gaps', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 1000, { createdAt: new Date('2026-11-01T12:00:00Z') });
    const seen = await walk(user, 100);
    expect(seen).toHaveLength(1000);
    expect(new Set(seen)).toEqual(new Set(seeded.map((s) => s.id)));
  });

  it('keeps microsecond-apart images apart (the cursor is not rounded to milliseconds)', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 3);
    for (const [i, image] of seeded.entries()) {
      // Through text: postgres.js would round a timestamptz parameter to milliseconds.
      await app.database
        .admin`update images set created_at = ${`2026-11-02 10:00:00.00012${i}+00`}::text::timestamptz where id = ${image.id}`;
    }
    expect(await walk(user, 1)).toEqual(seeded.map((s) => s.id).reverse());
  });

  it('skips nothing when images are deleted between pages, seen or not yet seen', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 300, { createdAt: new Date('2026-11-03T12:00:00Z') });
    const caller = app.callerFor(user);
    const deleted = new Set<string>();
    let deletedUnseen = 0;
    const seen = await walk(user, 40, async (seenSoFar) => {
      const already = new Set(seenSoFar);
      const alive = (await app.database.admin`select id from images where user_id = ${user.id} order by id`).map(
        (r) => r.id as string,
      );
      const seenAlive = alive.filter((id) => already.has(id)).slice(0, 3);
      const unseenAlive = alive.filter((id) => !already.has(id)).slice(0, 3);
      deletedUnseen += unseenAlive.length;
      for (const id of [...seenAlive, ...unseenAlive]) deleted.add(id);
      await caller.gallery.deleteMany({ imageIds: [...seenAlive, ...unseenAlive] });
    });
    const survivors = seeded.map((s) => s.id).filter((id) => !deleted.has(id));
    expect(seen.filter((id) => !deleted.has(id)).sort()).toEqual(survivors.sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(deletedUnseen).toBeGreaterThanOrEqual(15);
    expect(seen.filter((id) => deleted.has(id)).length).toBe(deleted.size - deletedUnseen);
  });

  it('filters by star and by prompt words (full-text, stemmed, web syntax)', async () => {
    const user = await app.createUser();
    const prompts = [
      'a red fox in the snow',
      'blue whale under ice',
      'red sports car at night',
      'foxes playing in a meadow',
    ];
    const seeded = await seedImages(app, user, prompts.length, {
      prompt: (i) => prompts[i]!,
      starred: (i) => i % 2 === 0,
    });
    const caller = app.callerFor(user);
    const ids = (items: { id: string }[]) => items.map((i) => i.id);
    const [fox, whale, car, foxes] = seeded.map((s) => s.id);
    expect(ids((await caller.gallery.list({ starred: true })).items)).toEqual([car, fox]);
    expect(ids((await caller.gallery.list({ search: 'red' })).items)).toEqual([car, fox]);
    expect(ids((await caller.gallery.list({ search: 'fox' })).items)).toEqual([foxes, fox]);
    expect(ids((await caller.gallery.list({ search: 'red -car' })).items)).toEqual([fox]);
    expect(ids((await caller.gallery.list({ search: '"blue whale"' })).items)).toEqual([whale]);
    expect(ids((await caller.gallery.list({ search: 'fox', starred: true })).items)).toEqual([fox]);
    expect((await caller.gallery.list({ search: 'volcano' })).items).toEqual([]);
    expect(ids((await caller.gallery.list({ search: '   ' })).items)).toHaveLength(4);
  });
});

describe('gallery.get, star, download', () => {
  it('returns every generation parameter, the boards and the URLs', async () => {
    const user = await app.createUser();
    const [image] = await seedImages(app, user, 1);
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Harbours', isPublic: false });
    await caller.boards.addImage({ boardId: board.id, imageId: image!.id });
    const got = await caller.gallery.get({ imageId: image!.id });
    expect(got.params).toEqual({
      prompt: image!.prompt,
      negativePrompt: 'blurry',
      model: 'sd15',
      width: 512,
      height: 512,
      steps: 20,
      cfgScale: 7,
      seed: 1000,
      sampler: 'euler_a',
    });
    expect(got).toMatchObject({
      id: image!.id,
      jobId: image!.jobId,
      engine: 'reference',
      starred: false,
      boards: [{ id: board.id, name: 'Harbours' }],
    });
    expect(got.thumbUrl).toContain(image!.thumbKey);
    expect(got.originalUrl).toContain(image!.originalKey);
  });

  it('stars and unstars', async () => {
    const user = await app.createUser();
    const [image] = await seedImages(app, user, 1);
    const caller = app.callerFor(user);
    expect(await caller.gallery.star({ imageId: image!.id, starred: true })).toEqual({
      imageId: image!.id,
      starred: true,
    });
    expect((await caller.gallery.list({ starred: true })).items.map((i) => i.id)).toEqual([image!.id]);
    await caller.gallery.star({ imageId: image!.id, starred: false });
    expect((await caller.gallery.list({ starred: true })).items).toEqual([]);
  });

  it('gives a presigned download URL that saves the original as an attachment', async () => {
    const user = await app.createUser();
    const [image] = await seedImages(app, user, 1, { withObjects: true });
    const { url, filename } = await app.callerFor(user).gallery.downloadUrl({ imageId: image!.id });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="${filename}"`);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
  });

  it('uses the CDN base for image URLs when one is configured, signed and expiring', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = (privateKey.export({ type: 'pkcs1', format: 'pem' }) as string).replace(/\n/g, '\\n');
    const cdnApp = await createTestApp({
      CDN_BASE_URL: 'https://cdn.example.test/',
      CDN_KEY_PAIR_ID: 'KTEST',
      CDN_PRIVATE_KEY: pem,
    });
    try {
      const user = await cdnApp.createUser();
      const [image] = await seedImages(cdnApp, user, 1);
      const [item] = (await cdnApp.callerFor(user).gallery.list({})).items;
      const signed = /\?Expires=\d+&Signature=[A-Za-z0-9~_-]+&Key-Pair-Id=KTEST$/;
      expect(item!.thumbUrl.startsWith(`https://cdn.example.test/${image!.thumbKey}?`)).toBe(true);
      expect(item!.originalUrl.startsWith(`https://cdn.example.test/${image!.originalKey}?`)).toBe(true);
      expect(item!.thumbUrl).toMatch(signed);
      expect(item!.originalUrl).toMatch(signed);
    } finally {
      await cdnApp.close();
    }
  });
});

describe('gallery.delete', () => {
  it('removes the row, its board links and both S3 objects; a second delete is no error', async () => {
    const user = await app.createUser();
    const [image, other] = await seedImages(app, user, 2, { withObjects: true });
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Doomed cover', isPublic: false });
    await caller.boards.addImages({ boardId: board.id, imageIds: [image!.id, other!.id] });
    await caller.boards.update({ boardId: board.id, coverImageId: image!.id });

    expect(await caller.gallery.delete({ imageId: image!.id })).toEqual({ imageId: image!.id, deleted: true });
    await expect(app.deps.store.getBytes(image!.originalKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
    await expect(app.deps.store.getBytes(image!.thumbKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(await app.deps.store.getBytes(other!.thumbKey)).toHaveLength(4);
    expect(await app.database.admin`select 1 from board_images where image_id = ${image!.id}`).toHaveLength(0);
    const [listed] = await caller.boards.list();
    expect(listed).toMatchObject({ id: board.id, imageCount: 1, coverImageId: null });
    expect(listed!.coverThumbUrl).toContain(other!.thumbKey);
    await expect(caller.gallery.get({ imageId: image!.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    expect(await caller.gallery.delete({ imageId: image!.id })).toEqual({ imageId: image!.id, deleted: false });
  });

  it('deletes a selection at once and caps it at 100 ids', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 4, { withObjects: true });
    const caller = app.callerFor(user);
    const picked = seeded.slice(0, 3).map((s) => s.id);
    const { deleted } = await caller.gallery.deleteMany({ imageIds: [...picked, crypto.randomUUID()] });
    expect(deleted.sort()).toEqual([...picked].sort());
    expect((await caller.gallery.list({})).items.map((i) => i.id)).toEqual([seeded[3]!.id]);
    for (const image of seeded.slice(0, 3))
      await expect(app.deps.store.getBytes(image.originalKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
    const tooMany = Array.from({ length: 101 }, () => crypto.randomUUID());
    await expect(caller.gallery.deleteMany({ imageIds: tooMany })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller.gallery.deleteMany({ imageIds: [] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('bad input', () => {
  it('answers unknown ids, oversized limits and malformed cursors with a clear 4xx and changes nothing', async () => {
    const user = await app.createUser();
    const [image] = await seedImages(app, user, 3);
    const caller = app.callerFor(user);
    const missing = crypto.randomUUID();
    await expect(caller.gallery.get({ imageId: missing })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(caller.gallery.star({ imageId: missing, starred: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(caller.gallery.downloadUrl({ imageId: missing })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(caller.gallery.get({ imageId: 'not-a-uuid' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller.gallery.list({ limit: 101 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller.gallery.list({ limit: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller.gallery.list({ boardId: missing })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const { nextCursor } = await caller.gallery.list({ limit: 1 });
    const [, time, id] = JSON.parse(Buffer.from(nextCursor!, 'base64url').toString()) as string[];
    const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const board = await caller.boards.create({ name: 'b', isPublic: false });
    for (const cursor of [
      'garbage',
      '',
      forge(['images', time, 'x']),
      forge(['images', '2026-02-30T00:00:00.000000Z', id]),
      forge(['images', 'yesterday', id]),
      forge({ time, id }),
      forge(['board', time, id]),
    ]) {
      await expect(caller.gallery.list({ cursor: cursor || '%' }), cursor).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
    }
    await expect(caller.boards.images({ boardId: board.id, cursor: nextCursor! })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    const rows = await app.database.admin`select starred from images where user_id = ${user.id}`;
    expect(rows.every((r) => r.starred === false)).toBe(true);
    expect((await caller.gallery.get({ imageId: image!.id })).id).toBe(image!.id);
  });

  it('refuses callers without a session', async () => {
    await expect(app.callerFor(null).gallery.list({})).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
