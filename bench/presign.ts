/**
 * Presigned URL cost: what one gallery page's 40 URLs (thumb + original of 20 images) cost
 * through ObjectStore, next to the SDK's getSignedUrl, which the store called per URL before
 * (kept here only as the baseline). Local CPU work: no request leaves the process.
 * Both run in the same rounds, alternating, so the load of a shared machine weighs on both alike.
 *
 *   npm run bench:presign     (BENCH_ROUNDS=300 to change)
 */
import { performance } from 'node:perf_hooks';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ObjectStore } from '../apps/api/src/infra/object-store.js';
import { benchCounts } from './settings.js';

const { BENCH_ROUNDS: ROUNDS } = benchCounts({ BENCH_ROUNDS: 300 });
const URLS_PER_PAGE = 40;

const store = new ObjectStore({
  endpoint: 'http://127.0.0.1:9',
  region: 'us-east-1',
  bucket: 'pingvas',
  accessKeyId: 'x',
  secretAccessKey: 'y',
  forcePathStyle: true,
  presignSeconds: 900,
});
const keys = Array.from(
  { length: URLS_PER_PAGE },
  (_, i) => `images/0b5b5c8e-1111-4a4a-9f9f-${String(i).padStart(12, '0')}/${i % 2 ? 'original.png' : 'thumb.webp'}`,
);
const expiresIn = store.config.presignSeconds;

type Page = () => Promise<unknown>;
const cases: [string, Page][] = [
  [
    'before  getSignedUrl GET',
    () =>
      Promise.all(
        keys.map((Key) =>
          getSignedUrl(store.client, new GetObjectCommand({ Bucket: store.bucket, Key }), { expiresIn }),
        ),
      ),
  ],
  ['after   readUrl', () => Promise.all(keys.map((key) => store.readUrl(key)))],
  [
    'before  getSignedUrl PUT',
    () =>
      Promise.all(
        keys.map((Key) =>
          getSignedUrl(store.client, new PutObjectCommand({ Bucket: store.bucket, Key, ContentType: 'image/png' }), {
            expiresIn,
          }),
        ),
      ),
  ],
  ['after   presignPut', () => Promise.all(keys.map((key) => store.presignPut(key, 'image/png')))],
];

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p95: at(0.95), mean: samples.reduce((s, x) => s + x, 0) / samples.length };
}

const samples = cases.map(() => [] as number[]);
for (let round = -20; round < ROUNDS; round += 1) {
  for (let k = 0; k < cases.length; k += 1) {
    const i = (k + Math.max(round, 0)) % cases.length;
    const start = performance.now();
    await cases[i]![1]();
    if (round >= 0) samples[i]!.push(performance.now() - start);
  }
}

console.log(
  `${ROUNDS} rounds after 20 warm-up rounds; one sample = ${URLS_PER_PAGE} URLs signed concurrently (one gallery page of 20 images).`,
);
const p50 = new Map<string, number>();
cases.forEach(([label], i) => {
  const s = stats(samples[i]!);
  p50.set(label, s.p50);
  const perUrl = (ms: number) => `${((ms / URLS_PER_PAGE) * 1000).toFixed(1).padStart(8)} µs`;
  console.log(
    `${label.padEnd(26)} page p50 ${s.p50.toFixed(3).padStart(8)} ms  p95 ${s.p95.toFixed(3).padStart(8)} ms   per URL p50 ${perUrl(s.p50)}  p95 ${perUrl(s.p95)}  mean ${perUrl(s.mean)}`,
  );
});
const speedup = (before: string, after: string) => (p50.get(before)! / p50.get(after)!).toFixed(0);
console.log(
  `speed-up at p50: GET ${speedup('before  getSignedUrl GET', 'after   readUrl')}×, PUT ${speedup('before  getSignedUrl PUT', 'after   presignPut')}×`,
);
store.client.destroy();
