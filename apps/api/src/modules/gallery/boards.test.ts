import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { seedImages } from './gallery.test-support.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});

const ids = (items: { id: string }[]) => items.map((i) => i.id);

describe('boards', () => {
  it('creates with a trimmed name, renames, and refuses empty or over-long names', async () => {
    const user = await app.createUser();
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: '  Moodboard  ', isPublic: false });
    expect(board).toMatchObject({ name: 'Moodboard', isPublic: false, shareSlug: null, coverImageId: null });
    expect((await caller.boards.update({ boardId: board.id, name: 'Renamed' })).name).toBe('Renamed');
    await expect(caller.boards.create({ name: '   ', isPublic: false })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(caller.boards.create({ name: 'x'.repeat(101), isPublic: false })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(caller.boards.update({ boardId: board.id, name: '' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect((await caller.boards.list()).map((b) => b.name)).toEqual(['Renamed']);
  });

  it('puts one image on several boards; adding twice is harmless; lists in the order added', async () => {
    const user = await app.createUser();
    const [a, b, c] = await seedImages(app, user, 3);
    const caller = app.callerFor(user);
    const one = await caller.boards.create({ name: 'One', isPublic: false });
    const two = await caller.boards.create({ name: 'Two', isPublic: false });
    expect(await caller.boards.addImage({ boardId: one.id, imageId: c!.id })).toEqual({ boardId: one.id, added: 1 });
    expect(await caller.boards.addImages({ boardId: one.id, imageIds: [a!.id, c!.id] })).toEqual({
      boardId: one.id,
      added: 1,
    });
    expect(await caller.boards.addImage({ boardId: one.id, imageId: a!.id })).toEqual({ boardId: one.id, added: 0 });
    await caller.boards.addImage({ boardId: two.id, imageId: a!.id });

    expect(ids((await caller.boards.images({ boardId: one.id })).items)).toEqual([a!.id, c!.id]);
    expect(ids((await caller.gallery.list({ boardId: one.id })).items)).toEqual([a!.id, c!.id]);
    expect(ids((await caller.boards.images({ boardId: two.id })).items)).toEqual([a!.id]);
    expect((await caller.gallery.get({ imageId: a!.id })).boards.map((x) => x.name)).toEqual(['One', 'Two']);
    expect((await caller.gallery.get({ imageId: b!.id })).boards).toEqual([]);

    const listed = await caller.boards.list();
    expect(listed.map((x) => [x.name, x.imageCount])).toEqual([
      ['Two', 1],
      ['One', 2],
    ]);

    expect(await caller.boards.removeImage({ boardId: one.id, imageId: a!.id })).toEqual({
      boardId: one.id,
      removed: true,
    });
    expect(await caller.boards.removeImage({ boardId: one.id, imageId: a!.id })).toEqual({
      boardId: one.id,
      removed: false,
    });
    expect(ids((await caller.boards.images({ boardId: one.id })).items)).toEqual([c!.id]);
    expect(ids((await caller.boards.images({ boardId: two.id })).items)).toEqual([a!.id]);
  });

  it('pages a board by keyset, also with a starred or search filter', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 25, {
      prompt: (i) => (i % 5 === 0 ? `lighthouse ${i}` : `meadow ${i}`),
      starred: (i) => i % 2 === 0,
    });
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Paged', isPublic: false });
    await caller.boards.addImages({ boardId: board.id, imageIds: seeded.map((s) => s.id) });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.boards.images({ boardId: board.id, cursor, limit: 7 });
      seen.push(...ids(page.items));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.sort()).toEqual(seeded.map((s) => s.id).sort());
    const lighthouses = await caller.gallery.list({ boardId: board.id, search: 'lighthouse' });
    expect(lighthouses.items.map((i) => i.prompt).sort()).toEqual([
      'lighthouse 0',
      'lighthouse 10',
      'lighthouse 15',
      'lighthouse 20',
      'lighthouse 5',
    ]);
    const starred = await caller.gallery.list({ boardId: board.id, starred: true, search: 'lighthouse' });
    expect(starred.items.map((i) => i.prompt).sort()).toEqual(['lighthouse 0', 'lighthouse 10', 'lighthouse 20']);
  });

  it('covers: the newest added by default, a chosen one on the board, cleared when it leaves', async () => {
    const user = await app.createUser();
    const [a, b, stranger] = await seedImages(app, user, 3);
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Covers', isPublic: false });
    expect((await caller.boards.list())[0]).toMatchObject({ imageCount: 0, coverThumbUrl: null });
    await caller.boards.addImage({ boardId: board.id, imageId: a!.id });
    await caller.boards.addImage({ boardId: board.id, imageId: b!.id });
    expect((await caller.boards.list())[0]!.coverThumbUrl).toContain(b!.thumbKey);

    await caller.boards.update({ boardId: board.id, coverImageId: a!.id });
    expect((await caller.boards.list())[0]).toMatchObject({ coverImageId: a!.id });
    expect((await caller.boards.list())[0]!.coverThumbUrl).toContain(a!.thumbKey);

    await expect(caller.boards.update({ boardId: board.id, coverImageId: stranger!.id })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(
      caller.boards.update({ boardId: board.id, name: 'Changed', coverImageId: stranger!.id }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect((await caller.boards.list())[0]).toMatchObject({ name: 'Covers', coverImageId: a!.id });

    await caller.boards.removeImage({ boardId: board.id, imageId: a!.id });
    expect((await caller.boards.list())[0]).toMatchObject({ coverImageId: null, imageCount: 1 });
    expect((await caller.boards.list())[0]!.coverThumbUrl).toContain(b!.thumbKey);

    await caller.boards.update({ boardId: board.id, coverImageId: b!.id });
    await caller.boards.update({ boardId: board.id, coverImageId: null });
    expect((await caller.boards.list())[0]).toMatchObject({ coverImageId: null });
  });

  it('deleting a board keeps its images in the gallery', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 3, { withObjects: true });
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Temporary', isPublic: true });
    await caller.boards.addImages({ boardId: board.id, imageIds: seeded.map((s) => s.id) });
    expect(await caller.boards.delete({ boardId: board.id })).toEqual({ boardId: board.id });
    expect((await caller.gallery.list({})).items).toHaveLength(3);
    expect(await app.database.admin`select 1 from board_images where board_id = ${board.id}`).toHaveLength(0);
    expect(await app.deps.store.getBytes(seeded[0]!.originalKey)).toHaveLength(4);
    await expect(caller.boards.delete({ boardId: board.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(caller.boards.images({ boardId: board.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(app.callerFor(null).boards.publicView({ slug: board.shareSlug! })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('adds a selection all or nothing: one unknown id adds none; more than 100 is refused', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 2);
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Strict', isPublic: false });
    await expect(
      caller.boards.addImages({ boardId: board.id, imageIds: [seeded[0]!.id, crypto.randomUUID()] }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      caller.boards.addImages({ boardId: board.id, imageIds: Array.from({ length: 101 }, () => seeded[0]!.id) }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(
      caller.boards.addImage({ boardId: crypto.randomUUID(), imageId: seeded[0]!.id }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await caller.boards.images({ boardId: board.id })).items).toEqual([]);
    await expect(caller.boards.images({ boardId: board.id, limit: 500 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(caller.boards.update({ boardId: crypto.randomUUID(), name: 'x' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      caller.boards.removeImage({ boardId: crypto.randomUUID(), imageId: seeded[0]!.id }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('boards under concurrency', () => {
  it("racing adds of one image link it once; racing an add with the image's delete never errors or leaves a link", async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 31);
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'Race', isPublic: false });
    const twice = await Promise.all(
      [0, 1, 2].map(() => caller.boards.addImage({ boardId: board.id, imageId: seeded[30]!.id })),
    );
    expect(twice.map((r) => r.added).sort()).toEqual([0, 0, 1]);

    const outcomes = await Promise.all(
      seeded.slice(0, 30).flatMap((image) => [
        caller.boards.addImage({ boardId: board.id, imageId: image.id }).then(
          () => 'added',
          (e: { code?: string }) => e.code,
        ),
        caller.gallery.delete({ imageId: image.id }).then((r) => (r.deleted ? 'deleted' : 'missing')),
      ]),
    );
    expect(outcomes.filter((o) => !['added', 'deleted', 'NOT_FOUND'].includes(o!))).toEqual([]);
    const links = await app.database.admin`select image_id from board_images where board_id = ${board.id}`;
    expect(links.map((l) => l.image_id)).toEqual([seeded[30]!.id]);
  });
});

describe('public share links', () => {
  it('shows only that board, without a session, and stops the moment it is made private', async () => {
    const owner = await app.createUser({ email: 'owner-secret@example.test' });
    const seeded = await seedImages(app, owner, 3, { withObjects: true, prompt: (i) => `shared prompt ${i}` });
    const caller = app.callerFor(owner);
    const board = await caller.boards.create({ name: 'Portfolio', isPublic: false });
    const privateBoard = await caller.boards.create({ name: 'Secret drafts', isPublic: false });
    // One at a time: a bulk add shares one added_at, and the order within it is by id.
    await caller.boards.addImage({ boardId: board.id, imageId: seeded[0]!.id });
    await caller.boards.addImage({ boardId: board.id, imageId: seeded[1]!.id });
    await caller.boards.addImage({ boardId: privateBoard.id, imageId: seeded[2]!.id });
    expect(board.shareSlug).toBeNull();

    const published = await caller.boards.update({ boardId: board.id, isPublic: true });
    const slug = published.shareSlug!;
    expect(slug).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect((await caller.boards.update({ boardId: board.id, isPublic: true })).shareSlug).toBe(slug);

    const anonymous = app.callerFor(null);
    const view = await anonymous.boards.publicView({ slug });
    expect(view.board).toMatchObject({ name: 'Portfolio', imageCount: 2 });
    expect(view.items.map((i) => Object.keys(i).sort())).toEqual([
      ['engine', 'height', 'id', 'originalUrl', 'prompt', 'thumbUrl', 'width'],
      ['engine', 'height', 'id', 'originalUrl', 'prompt', 'thumbUrl', 'width'],
    ]);
    expect(view.items.map((i) => i.engine)).toEqual(['reference', 'reference']);
    expect(view.items.map((i) => i.prompt)).toEqual(['shared prompt 1', 'shared prompt 0']);
    expect((await fetch(view.items[0]!.thumbUrl)).status).toBe(200);
    const text = JSON.stringify(view);
    // The owner's id does show, inside the object keys of the URLs (images/{user_id}/…): it is no secret, the email is.
    for (const secret of [owner.email, 'Secret drafts', privateBoard.id, seeded[2]!.id, seeded[2]!.prompt, board.id])
      expect(text).not.toContain(secret);

    const first = await anonymous.boards.publicView({ slug, limit: 1 });
    const second = await anonymous.boards.publicView({ slug, limit: 1, cursor: first.nextCursor! });
    expect([...ids(first.items), ...ids(second.items)]).toEqual([seeded[1]!.id, seeded[0]!.id]);
    expect(second.nextCursor).toBeNull();

    await caller.boards.update({ boardId: board.id, isPublic: false });
    await expect(anonymous.boards.publicView({ slug })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(anonymous.boards.publicView({ slug, limit: 1, cursor: first.nextCursor! })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });

    const again = await caller.boards.update({ boardId: board.id, isPublic: true });
    expect(again.shareSlug).not.toBe(slug);
    await expect(anonymous.boards.publicView({ slug })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(ids((await anonymous.boards.publicView({ slug: again.shareSlug! })).items)).toEqual([
      seeded[1]!.id,
      seeded[0]!.id,
    ]);
  });

  it('a board created public has a link at once; malformed or unknown slugs are refused', async () => {
    const owner = await app.createUser();
    const board = await app.callerFor(owner).boards.create({ name: 'Open', isPublic: true });
    expect(board.shareSlug).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const anonymous = app.callerFor(null);
    expect(await anonymous.boards.publicView({ slug: board.shareSlug! })).toMatchObject({
      board: { name: 'Open', imageCount: 0 },
      items: [],
      nextCursor: null,
    });
    await expect(anonymous.boards.publicView({ slug: 'A'.repeat(22) })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(anonymous.boards.publicView({ slug: "x' or 1=1 --" })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(anonymous.boards.publicView({ slug: board.shareSlug!, limit: 101 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});
