import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { withUser } from '@pingvas/db';
import { createTestApp, type TestApp } from '../../test/harness.js';
import type { SessionUser } from '../../context.js';
import { seedImages, type SeededImage } from './gallery.test-support.js';

let app: TestApp;
let alice: SessionUser;
let bob: SessionUser;
let aliceImages: SeededImage[];
let aliceBoard: { id: string };
let bobImage: SeededImage;
let bobBoard: { id: string };

beforeAll(async () => {
  app = await createTestApp();
  alice = await app.createUser();
  bob = await app.createUser();
  aliceImages = await seedImages(app, alice, 3, { withObjects: true });
  [bobImage] = (await seedImages(app, bob, 1)) as [SeededImage];
  aliceBoard = await app.callerFor(alice).boards.create({ name: 'Alice private', isPublic: false });
  await app.callerFor(alice).boards.addImages({ boardId: aliceBoard.id, imageIds: aliceImages.map((i) => i.id) });
  bobBoard = await app.callerFor(bob).boards.create({ name: 'Bob', isPublic: false });
  await app.callerFor(bob).boards.addImage({ boardId: bobBoard.id, imageId: bobImage.id });
});
afterAll(async () => {
  await app.close();
});

/** Alice's data exactly as seeded: nothing Bob tried changed it. */
async function expectAliceUntouched() {
  const rows = await app.database.admin`select id, starred from images where user_id = ${alice.id} order by id`;
  expect(rows.map((r) => r.id).sort()).toEqual(aliceImages.map((i) => i.id).sort());
  expect(rows.every((r) => r.starred === false)).toBe(true);
  const links = await app.database.admin`select image_id, user_id from board_images where board_id = ${aliceBoard.id}`;
  expect(links).toHaveLength(3);
  expect(
    await app.database
      .admin`select 1 from board_images where image_id in ${app.database.admin(aliceImages.map((i) => i.id))} and user_id <> ${alice.id}`,
  ).toHaveLength(0);
  const [board] = await app.database
    .admin`select name, is_public, share_slug, cover_image_id from boards where id = ${aliceBoard.id}`;
  expect(board).toEqual({ name: 'Alice private', is_public: false, share_slug: null, cover_image_id: null });
  for (const image of aliceImages) expect(await app.deps.store.getBytes(image.originalKey)).toHaveLength(4);
}

describe("one user never reaches another user's images or boards", () => {
  it('through every procedure', async () => {
    const b = app.callerFor(bob);
    const target = aliceImages[0]!.id;
    expect((await b.gallery.list({})).items.map((i) => i.id)).toEqual([bobImage.id]);
    expect((await b.gallery.list({ search: 'harbour' })).items.map((i) => i.id)).toEqual([bobImage.id]);
    await expect(b.gallery.get({ imageId: target })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(b.gallery.star({ imageId: target, starred: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(b.gallery.downloadUrl({ imageId: target })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await b.gallery.delete({ imageId: target })).toEqual({ imageId: target, deleted: false });
    expect(await b.gallery.deleteMany({ imageIds: aliceImages.map((i) => i.id) })).toEqual({ deleted: [] });

    await expect(b.boards.addImage({ boardId: bobBoard.id, imageId: target })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.addImages({ boardId: bobBoard.id, imageIds: [bobImage.id, target] })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.update({ boardId: bobBoard.id, coverImageId: target })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });

    // A guessed board id of Alice's behaves exactly like one that does not exist.
    await expect(b.boards.images({ boardId: aliceBoard.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(b.gallery.list({ boardId: aliceBoard.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(b.boards.update({ boardId: aliceBoard.id, isPublic: true })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.update({ boardId: aliceBoard.id, name: 'mine now' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.addImage({ boardId: aliceBoard.id, imageId: bobImage.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.removeImage({ boardId: aliceBoard.id, imageId: target })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(b.boards.delete({ boardId: aliceBoard.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await b.boards.list()).map((x) => x.id)).toEqual([bobBoard.id]);

    // Bob's own board still holds only Bob's image.
    expect((await b.boards.images({ boardId: bobBoard.id })).items.map((i) => i.id)).toEqual([bobImage.id]);
    await expectAliceUntouched();
  });

  it('through raw SQL without any WHERE clause: row-level security alone hides them', async () => {
    const seen = await withUser(app.deps.db, bob.id, async (tx) => ({
      images: await tx.execute(sql`select * from images`),
      boards: await tx.execute(sql`select * from boards`),
      links: await tx.execute(sql`select * from board_images`),
      jobs: await tx.execute(sql`select * from generation_jobs`),
      aliceById: await tx.execute(sql`select * from images where id = ${aliceImages[0]!.id}`),
    }));
    expect(seen.images.map((r) => r.id)).toEqual([bobImage.id]);
    expect(seen.boards.map((r) => r.id)).toEqual([bobBoard.id]);
    expect(seen.links.map((r) => r.image_id)).toEqual([bobImage.id]);
    expect(seen.jobs.map((r) => r.id)).toEqual([bobImage.jobId]);
    expect(seen.aliceById).toHaveLength(0);

    const changed = await withUser(app.deps.db, bob.id, async (tx) => ({
      starred: await tx.execute(sql`update images set starred = true returning id`),
      deleted: await tx.execute(sql`delete from board_images where user_id <> ${bob.id} returning image_id`),
      renamed: await tx.execute(sql`update boards set name = 'pwned' where id = ${aliceBoard.id} returning id`),
    }));
    expect(changed.starred.map((r) => r.id)).toEqual([bobImage.id]);
    expect(changed.deleted).toHaveLength(0);
    expect(changed.renamed).toHaveLength(0);
    const refused = await withUser(app.deps.db, bob.id, (tx) =>
      tx.execute(
        sql`insert into board_images (board_id, image_id, user_id) values (${aliceBoard.id}, ${bobImage.id}, ${alice.id})`,
      ),
    ).catch((error: Error) => error);
    expect(String((refused as Error & { cause?: Error }).cause?.message)).toMatch(/row-level security/);
    await expectAliceUntouched();
  });
});
