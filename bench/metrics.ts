/**
 * What one /metrics scrape costs the database as job history grows. The jobs-by-state gauge
 * counts pending/in_progress on every scrape (partial index) and the finished states only
 * every METRICS_FINISHED_JOBS_TTL_SECONDS (a full scan, RLS evaluated per row); this prints
 * both paths' times so the TTL can be judged against real figures.
 *
 *   npm run bench:metrics        (BENCH_JOBS=1000000 to change the history size)
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createTestDatabase, createTestRedis } from '@pingvas/testkit';
import { loadApiConfig } from '../apps/api/src/config.js';
import { closeAppDeps, createAppDeps } from '../apps/api/src/deps.js';
import { scrape } from '../apps/api/src/modules/metrics/collectors.js';
import { benchCounts } from './settings.js';

const { BENCH_JOBS: JOBS } = benchCounts({ BENCH_JOBS: 1_000_000 });
const LIVE_JOBS = 500;
const ROUNDS = 5;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const [database, redis] = await Promise.all([createTestDatabase(), createTestRedis()]);
try {
  const seeding = performance.now();
  await database.admin`insert into users (email) select 'bench-' || g || '@example.test' from generate_series(1, 1000) g`;
  await database.admin`
    with u as (select array_agg(id) as ids from users)
    insert into generation_jobs (user_id, status, prompt, model, width, height, steps, cfg_scale, seed, sampler,
                                 estimated_credits, priority, queue_score, created_at, finished_at)
    select u.ids[1 + g % 1000], (array['completed','completed','completed','completed','completed','completed','completed','completed','failed','cancelled'])[1 + g % 10],
           'a lighthouse at dusk, volumetric light, highly detailed ' || g, 'sdxl', 1024, 1024, 30, 7, g, 'euler_a', 90, 0, g,
           now() - make_interval(secs => g), now()
    from u, generate_series(1, ${JOBS}::int) g`;
  await database.admin`
    with u as (select array_agg(id) as ids from users)
    insert into generation_jobs (user_id, status, prompt, model, width, height, steps, cfg_scale, seed, sampler, estimated_credits, priority, queue_score)
    select u.ids[1 + g % 1000], (array['pending','in_progress'])[1 + g % 2], 'p', 'sd15', 512, 512, 20, 7, g, 'euler_a', 10, 0, g
    from u, generate_series(1, ${LIVE_JOBS}::int) g`;
  await database.admin`vacuum analyze generation_jobs`;
  console.log(
    `seeded ${JOBS.toLocaleString('en')} finished + ${LIVE_JOBS} live jobs in ${((performance.now() - seeding) / 1000).toFixed(1)} s`,
  );

  for (const ttl of [0, 300]) {
    const config = loadApiConfig({
      NODE_ENV: 'test',
      DATABASE_URL: database.runtimeUrl,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.prefix,
      METRICS_FINISHED_JOBS_TTL_SECONDS: String(ttl),
    });
    const deps = createAppDeps(config, pino({ level: 'silent' }));
    try {
      await scrape(deps); // warms connections (and, with a TTL, the finished-job counts)
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const start = performance.now();
        await scrape(deps);
        times.push(performance.now() - start);
      }
      const what =
        ttl === 0
          ? 'every state counted (a scrape whose finished-job counts are due)'
          : 'live states only (finished counts cached)';
      console.log(`scrape, ${what}: median ${median(times).toFixed(1)} ms over ${ROUNDS}`);
    } finally {
      await closeAppDeps(deps);
    }
  }
} finally {
  await Promise.all([database.drop(), redis.cleanup()]);
}
