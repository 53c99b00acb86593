import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { withUser } from '@pingvas/db';
import { createTestApp, type TestApp } from '../../test/harness.js';
import type { SessionUser } from '../../context.js';
import { detectSearchStrategy, queryImagePage, type PageQuery, type SearchStrategy } from './gallery.service.js';
import { seedImages } from './gallery.test-support.js';

// The fallback is forced through the `searchStrategy` option: the template database is migrated
// by a superuser, so ts_match_vq is LEAKPROOF there, and these tests never touch the catalog.

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(async () => {
  await app.close();
});

const STRATEGIES: SearchStrategy[] = ['planner', 'newest-first-walk'];
const PROMPTS = [
  'a lighthouse in the fog, oil painting',
  'red fox at dawn, watercolor',
  'a lighthouse under stars',
  'red car at night',
  'misty harbour with a zeppelin',
  'ancient temple, red lanterns',
  'foxes playing in a meadow',
];

/** Every page of `q`, `limit` at a time, through the service as gallery.list runs it. */
async function allPages(
  user: SessionUser,
  q: Omit<PageQuery, 'limit' | 'cursor'> & { boardId?: string },
  strategy?: SearchStrategy,
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await withUser(app.deps.db, user.id, (tx) =>
      queryImagePage(tx, user.id, { ...q, cursor, limit: 4 }, strategy ? { searchStrategy: strategy } : {}),
    );
    seen.push(...page.items.map((i) => i.id));
    if (!page.nextCursor) return seen;
    cursor = page.nextCursor;
  }
}

describe('gallery search strategy', () => {
  it('finds ts_match_vq LEAKPROOF in the migrated database, so the GIN index is usable under RLS', async () => {
    const user = await app.createUser();
    await seedImages(app, user, 3);
    const { strategy, plan } = await withUser(app.deps.db, user.id, async (tx) => {
      const strategy = await detectSearchStrategy(tx);
      // Sequential scans ruled out, and no condition but the policy's (an OR, which no btree
      // serves) and `@@`: the GIN index can only appear if `@@` may be evaluated ahead of the
      // policy; otherwise the disabled sequential scan is all the planner has.
      await tx.execute(sql`select set_config('enable_seqscan', 'off', true)`);
      const plan = await tx.execute<{ 'QUERY PLAN': string }>(
        sql`explain (costs off) select id from images where search_vector @@ websearch_to_tsquery('english', 'harbour')`,
      );
      return { strategy, plan: plan.map((row) => row['QUERY PLAN']).join('\n') };
    });
    expect(strategy).toBe('planner');
    expect(plan).toContain('images_search_idx');
    // The planner's choice rests on the column's statistics: the migration samples more of them.
    const [column] = await app.database.admin<{ target: number }[]>`
      select attstattarget as target from pg_attribute where attrelid = 'images'::regclass and attname = 'search_vector'`;
    expect(column!.target).toBe(1000);
  });

  it('applies the index-free plan settings only on the fallback, for that transaction only', async () => {
    const user = await app.createUser();
    await seedImages(app, user, 3);
    const settingAfter = (q: PageQuery, strategy?: SearchStrategy) =>
      withUser(app.deps.db, user.id, async (tx) => {
        await queryImagePage(tx, user.id, q, strategy ? { searchStrategy: strategy } : {});
        const [row] = await tx.execute<{ bitmap: string; seq: string }>(
          sql`select current_setting('enable_bitmapscan') as bitmap, current_setting('enable_seqscan') as seq`,
        );
        return row;
      });
    expect(await settingAfter({ limit: 5, search: 'harbour' }, 'newest-first-walk')).toEqual({
      bitmap: 'off',
      seq: 'off',
    });
    expect(await settingAfter({ limit: 5, search: 'harbour' }, 'planner')).toEqual({ bitmap: 'on', seq: 'on' });
    expect(await settingAfter({ limit: 5, search: 'harbour' })).toEqual({ bitmap: 'on', seq: 'on' });
    expect(await settingAfter({ limit: 5 }, 'newest-first-walk')).toEqual({ bitmap: 'on', seq: 'on' });
    expect(
      await withUser(
        app.deps.db,
        user.id,
        async (tx) => (await tx.execute<{ v: string }>(sql`select current_setting('enable_bitmapscan') as v`))[0]!.v,
      ),
    ).toBe('on');
  });

  it('returns the same pages either way, equal to the query without RLS', async () => {
    const [user, other] = [await app.createUser(), await app.createUser()];
    await seedImages(app, user, 42, { prompt: (i) => PROMPTS[i % PROMPTS.length]!, starred: (i) => i % 3 === 0 });
    // Another user's matching images must stay out, whichever plan runs.
    await seedImages(app, other, 14, { prompt: (i) => PROMPTS[i % PROMPTS.length]! });
    const truth = async (search: string, starred = false) =>
      (
        await app.database.admin<{ id: string }[]>`
        select id from images where user_id = ${user.id} and search_vector @@ websearch_to_tsquery('english', ${search})
          and (starred or not ${starred}) order by created_at desc, id desc`
      ).map((r) => r.id);

    const cases: [string, boolean][] = [
      ['lighthouse', false],
      ['zeppelin', false],
      ['"red fox at dawn"', false],
      ['red -fox', false],
      ['fox or harbour', false],
      ['lighthouse', true],
      ['volcano', false],
      ['the', false],
    ];
    for (const [search, starred] of cases) {
      const expected = await truth(search, starred);
      for (const strategy of [...STRATEGIES, undefined]) {
        expect(await allPages(user, { search, starred }, strategy), `${search} ${starred} ${strategy}`).toEqual(
          expected,
        );
      }
    }
    expect((await truth('lighthouse')).length).toBe(12);
    expect((await truth('zeppelin')).length).toBe(6);
  });

  it('searches a board the same way under either strategy', async () => {
    const user = await app.createUser();
    const seeded = await seedImages(app, user, 14, { prompt: (i) => PROMPTS[i % PROMPTS.length]! });
    const caller = app.callerFor(user);
    const board = await caller.boards.create({ name: 'picked', isPublic: false });
    const picked = seeded.filter((_, i) => i % 2 === 0);
    await caller.boards.addImages({ boardId: board.id, imageIds: picked.map((s) => s.id) });
    // Added in one call: one added_at, so the board's order is by image id, descending.
    const expected = picked
      .filter((s) => /red/.test(s.prompt))
      .map((s) => s.id)
      .sort()
      .reverse();
    expect(expected.length).toBeGreaterThan(0);
    for (const strategy of [...STRATEGIES, undefined]) {
      expect(await allPages(user, { boardId: board.id, search: 'red' }, strategy)).toEqual(expected);
    }
  });
});
