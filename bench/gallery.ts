/**
 * Gallery latency at scale: 1,000,000 images across 1,000 users, one of whom holds 100,000.
 * Times page 1 and page 2,000 of that user's gallery (20 per page: page 2,000 starts at
 * row 40,000), a starred page, and prompt searches, through the same service code the
 * router runs: withUser (RLS on, as the non-superuser runtime role) + queryImagePage.
 * "db" figures stop there; "api" figures add the presigning of both URLs of every image
 * (listGallery), which is local CPU work with no S3 round trip.
 *
 *   npm run bench:gallery     (BENCH_RUNS=200, BENCH_IMAGES=1000000 to change; BENCH_KEEP=1 keeps the database for EXPLAIN)
 */
import { performance } from 'node:perf_hooks';
import { encodeKeysetCursor } from '@pingvas/core';
import { createTestDatabase } from '@pingvas/testkit';
import { withUser, type DbClient } from '@pingvas/db';
import { ObjectStore } from '../apps/api/src/infra/object-store.js';
import type { AppDeps } from '../apps/api/src/deps.js';
import {
  SEARCH_PLAN_SETTINGS,
  detectSearchStrategy,
  listGallery,
  queryImagePage,
  type PageQuery,
} from '../apps/api/src/modules/gallery/gallery.service.js';
import { benchCounts, benchFlag } from './settings.js';

const { BENCH_IMAGES: TOTAL, BENCH_RUNS: RUNS } = benchCounts({ BENCH_IMAGES: 1_000_000, BENCH_RUNS: 200 });
const USERS = 1000;
const PAGE = 20;
const WANTED_DEEP_PAGE = 2000;

// Every 10th image belongs to the big user (rows spread over the heap as real uploads would
// be); the rest are shared evenly by the other 999. Prompts combine word lists so that
// "lighthouse" is in 1 of 17 prompts and "zeppelin" in 1 of 5,000.
const userOf = (n: string) => `(case when ${n} % 10 = 0 then 0 else 1 + ${n} % ${USERS - 1} end)`;
const userId = (u: string) => `md5('bench-user-' || ${u})::uuid`;
const prompt = (n: string) => `(
  (array['red','blue','golden','misty','neon','ancient','quiet','stormy','frozen','sunlit','violet','emerald','rusty'])[1 + ${n} % 13] || ' ' ||
  (array['fox','harbour','castle','forest','robot','lighthouse','dragon','garden','city','mountain','river','owl','train','desert','temple','whale','meadow'])[1 + (${n} / 13) % 17] || ' ' ||
  (array['at dawn','at night','in the rain','in winter','under stars','in fog','at sunset','in spring','in the snow'])[1 + (${n} / 221) % 9] || ', ' ||
  (array['oil painting','watercolor','photograph','digital art','pencil sketch','35mm film','studio lighting'])[1 + (${n} / 1989) % 7] ||
  (case when ${n} % 5000 = 10 then ' with a zeppelin' else '' end))`;
const createdAt = (n: string) => `(timestamptz '2025-11-26 00:00:00+00' + ${n} * interval '31 seconds')`;

type Stats = ReturnType<typeof stats>;

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), mean: samples.reduce((s, x) => s + x, 0) / samples.length };
}

type Probe = () => Promise<number>;

/** Wall-clock milliseconds of one call of `fn`. */
const wall =
  (fn: () => Promise<unknown>): Probe =>
  async () => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };

/**
 * Runs the probes in rounds, each round calling every probe once (in a rotating order), so
 * that the load of this shared machine, which swings by the second, weighs on all alike.
 */
async function interleaved(probes: [string, Probe][], runs = RUNS): Promise<Map<string, Stats>> {
  const samples = probes.map(() => [] as number[]);
  for (let round = -20; round < runs; round += 1) {
    for (let k = 0; k < probes.length; k += 1) {
      const i = (k + Math.max(round, 0)) % probes.length;
      const ms = await probes[i]![1]();
      if (round >= 0) samples[i]!.push(ms);
    }
  }
  return new Map(probes.map(([label], i) => [label, report(label, samples[i]!)]));
}

function report(label: string, samples: number[]) {
  const s = stats(samples);
  console.log(
    `${label.padEnd(50)} ${String(samples.length).padStart(4)} runs   p50 ${s.p50.toFixed(2).padStart(7)} ms   p95 ${s.p95.toFixed(2).padStart(7)} ms   p99 ${s.p99.toFixed(2).padStart(7)} ms   mean ${s.mean.toFixed(2).padStart(7)} ms`,
  );
  return s;
}

async function main() {
  const database = await createTestDatabase();
  const admin = database.admin;
  try {
    console.log(`seeding ${TOTAL.toLocaleString('en')} images for ${USERS} users…`);
    const seedStart = performance.now();
    await admin.begin(async (tx) => {
      // Bulk-load settings for this transaction only: skip the per-row FK triggers (the rows
      // are consistent by construction) and build the secondary indexes once, after the load.
      await tx`set local session_replication_role = replica`;
      await tx`set local maintenance_work_mem = '512MB'`;
      await tx`set local synchronous_commit = off`;
      const indexes = await tx<{ name: string; def: string }[]>`
        select indexname as name, indexdef as def from pg_indexes
        where tablename in ('images', 'generation_jobs') and indexname not in (select conname from pg_constraint)`;
      for (const index of indexes) await tx.unsafe(`drop index "${index.name}"`);
      await tx.unsafe(
        `insert into users (id, email) select ${userId('u')}, 'bench-' || u || '@example.test' from generate_series(0, ${USERS - 1}) u`,
      );
      await tx.unsafe(`
        insert into generation_jobs (id, user_id, status, prompt, model, width, height, steps, cfg_scale, seed, sampler,
                                     estimated_credits, charged_credits, priority, queue_score, created_at, finished_at)
        select md5('bench-job-' || n)::uuid, ${userId(userOf('n'))}, 'completed', ${prompt('n')}, 'sd15', 512, 512, 20, 7, n, 'euler_a',
               10, 5, 0, 0, ${createdAt('n')}, ${createdAt('n')}
        from generate_series(1, ${TOTAL}) n`);
      console.log(`  jobs inserted at ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
      await tx.unsafe(`
        insert into images (user_id, job_id, original_key, thumb_key, width, height, bytes, prompt, model, steps, cfg_scale,
                            seed, sampler, engine, starred, created_at)
        select ${userId(userOf('n'))}, md5('bench-job-' || n)::uuid,
               'images/' || ${userId(userOf('n'))} || '/' || md5('bench-job-' || n)::uuid || '/original.png',
               'images/' || ${userId(userOf('n'))} || '/' || md5('bench-job-' || n)::uuid || '/thumb.webp',
               512, 512, 400000, ${prompt('n')}, 'sd15', 20, 7, n, 'euler_a', 'reference', n % 7 = 0, ${createdAt('n')}
        from generate_series(1, ${TOTAL}) n`);
      console.log(`  images inserted at ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
      for (const index of indexes) await tx.unsafe(index.def);
      console.log(`  ${indexes.length} indexes rebuilt at ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
    });
    await admin`vacuum analyze users`;
    await admin`vacuum analyze generation_jobs`;
    await admin`vacuum analyze images`;
    console.log(`seeded and analyzed in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);

    const bigUser = (await admin`select ${admin.unsafe(userId('0'))} as id`)[0]!.id as string;
    const count = Number((await admin`select count(*)::int as count from images where user_id = ${bigUser}`)[0]!.count);
    // Page 2,000 at full size; a smaller BENCH_IMAGES run takes the user's last full page.
    const DEEP_PAGE = Math.min(WANTED_DEEP_PAGE, Math.floor(count / PAGE));
    const [row] = await admin`
      select id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as time from images
      where user_id = ${bigUser} order by created_at desc, id desc offset ${PAGE * (DEEP_PAGE - 1) - 1} limit 1`;
    if (!row) throw new Error('the big user has too few images');
    const deepCursor = encodeKeysetCursor('images', { time: row.time as string, id: row.id as string });

    const db = database.db;
    const page = (q: PageQuery) => withUser(db, bigUser, (tx) => queryImagePage(tx, bigUser, q));
    const firstIds = (await page({ limit: PAGE })).items.length;
    const deep = await page({ limit: PAGE, cursor: deepCursor });
    console.log(
      `\nuser with ${count.toLocaleString('en')} images; page 1 has ${firstIds}, page ${DEEP_PAGE} has ${deep.items.length} (rows ${(PAGE * (DEEP_PAGE - 1) + 1).toLocaleString('en')}…)`,
    );
    for (const word of ['lighthouse', 'zeppelin', 'red fox at dawn']) {
      const matches = Number(
        (
          await admin`select count(*)::int as matches from images where user_id = ${bigUser} and search_vector @@ websearch_to_tsquery('english', ${word})`
        )[0]!.matches,
      );
      console.log(`  "${word}" matches ${matches.toLocaleString('en')} of them`);
    }

    await explain(database, bigUser, `page ${DEEP_PAGE}`, () => page({ limit: PAGE, cursor: deepCursor }));
    await explain(database, bigUser, 'search "lighthouse"', () => page({ limit: PAGE, search: 'lighthouse' }));

    // listGallery needs only db and store; presigning is local HMAC work, no request leaves.
    const store = new ObjectStore({
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      bucket: 'pingvas',
      accessKeyId: 'x',
      secretAccessKey: 'y',
      forcePathStyle: true,
      presignSeconds: 900,
    });
    const deps = { db, store } as unknown as AppDeps;

    console.log(`\nAfter 20 warm-up runs each, ${PAGE} images per page.`);
    console.log(
      'db: withUser + queryImagePage as the client sees it (4 round trips: begin, set_config, query, commit);',
    );
    console.log(
      'server: planning + execution of that same query inside PostgreSQL (EXPLAIN ANALYZE), free of client scheduling noise;',
    );
    console.log('api: db + presigning both URLs of each image (listGallery, what gallery.list runs).');
    // The rare-word searches read most of the user's rows each time: fewer runs keep the bench short.
    const RARE_RUNS = Math.min(RUNS, 40);
    const scenarios: [string, PageQuery, number?][] = [
      ['page 1', { limit: PAGE }],
      [`page ${DEEP_PAGE}`, { limit: PAGE, cursor: deepCursor }],
      ['page 1, starred only', { limit: PAGE, starred: true }],
      ['search "lighthouse" (1 in 17)', { limit: PAGE, search: 'lighthouse' }],
      ['search "zeppelin" (1 in 500 of the user\'s)', { limit: PAGE, search: 'zeppelin' }, RARE_RUNS],
      ['search "red fox at dawn" (1 in 2,000)', { limit: PAGE, search: 'red fox at dawn' }, RARE_RUNS],
    ];
    const results = new Map<string, Stats>();
    for (const [label, q, runs] of scenarios) {
      const probes: [string, Probe][] = [
        [`db      ${label}`, wall(() => page(q))],
        [`server  ${label}`, await serverProbe(database, bigUser, () => page(q))],
      ];
      if (!q.search && !q.starred) probes.push([`api     ${label}`, wall(() => listGallery(deps, bigUser, q))]);
      if (label === `page ${DEEP_PAGE}`) continue;
      if (label === 'page 1') {
        // Page 1 and the deep page share rounds: their ratio is what the goal is about.
        const deepQuery = scenarios[1]![1];
        probes.push(
          [`db      page ${DEEP_PAGE}`, wall(() => page(deepQuery))],
          [`server  page ${DEEP_PAGE}`, await serverProbe(database, bigUser, () => page(deepQuery))],
          [`api     page ${DEEP_PAGE}`, wall(() => listGallery(deps, bigUser, deepQuery))],
        );
      }
      console.log('');
      for (const [name, stat] of await interleaved(probes, runs)) results.set(name, stat);
    }
    const ratio = (kind: string) =>
      (results.get(`${kind.padEnd(8)}page ${DEEP_PAGE}`)!.p50 / results.get(`${kind.padEnd(8)}page 1`)!.p50).toFixed(2);
    console.log(
      `\npage ${DEEP_PAGE} / page 1 at p50: db ${ratio('db')}×, server ${ratio('server')}×, api ${ratio('api')}×   (goal ≤ 1.5×, each ≤ 10 ms p50)`,
    );
    store.client.destroy();
  } finally {
    if (benchFlag('BENCH_KEEP')) {
      console.log(`kept database ${new URL(database.adminUrl).pathname.slice(1)} (BENCH_KEEP)`);
      await Promise.all([database.close(), database.admin.end({ timeout: 5 })]);
    } else {
      await database.drop();
    }
  }
}

/** Runs `fn` once (one page through the service) and returns the SQL text and parameters it sent. */
async function capture(client: DbClient, fn: () => Promise<unknown>): Promise<{ text: string; params: unknown[] }> {
  const options = client.sql.options as unknown as {
    debug: ((id: number, text: string, params: unknown[]) => void) | false;
  };
  let captured: { text: string; params: unknown[] } | undefined;
  options.debug = (_id, text, params) => {
    if (/order by/i.test(text)) captured = { text, params };
  };
  try {
    await fn();
  } finally {
    options.debug = false;
  }
  if (!captured) throw new Error('no page query captured');
  return captured;
}

/**
 * EXPLAIN ANALYZE of exactly what the service sends, under RLS as the runtime role — with the
 * fallback plan settings only where the service would apply them (search without LEAKPROOF).
 */
async function explainRows(
  client: DbClient,
  userId: string,
  query: { text: string; params: unknown[] },
  options: string,
) {
  const strategy = await withUser(client.db, userId, detectSearchStrategy);
  return client.sql.begin(async (tx) => {
    await tx`select set_config('app.user_id', ${userId}, true)`;
    if (/@@/.test(query.text) && strategy === 'newest-first-walk') await tx.unsafe(SEARCH_PLAN_SETTINGS);
    return tx.unsafe(`explain (${options}) ${query.text}`, query.params as never[]);
  });
}

async function explain(client: DbClient, userId: string, label: string, fn: () => Promise<unknown>) {
  const plan = await explainRows(client, userId, await capture(client, fn), 'analyze, buffers, costs off');
  console.log(`\nEXPLAIN ${label}:\n${plan.map((r) => `  ${r['QUERY PLAN']}`).join('\n')}`);
}

/** A probe that returns PostgreSQL's own planning + execution time of the query `fn` sends. */
async function serverProbe(client: DbClient, userId: string, fn: () => Promise<unknown>): Promise<Probe> {
  const query = await capture(client, fn);
  return async () => {
    const lines = (await explainRows(client, userId, query, 'analyze, timing off, summary on')).map((r) =>
      String(r['QUERY PLAN']),
    );
    const ms = (name: string) => Number(lines.find((l) => l.startsWith(name))?.match(/([\d.]+) ms/)?.[1] ?? NaN);
    return ms('Planning Time') + ms('Execution Time');
  };
}

await main();
