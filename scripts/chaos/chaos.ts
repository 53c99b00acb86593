/**
 * The chaos run: several real API and worker processes on their own Redis, database and
 * S3, users paying and generating while an injector kills, stops and slows things; then
 * quiet, and checks that nothing was lost, charged twice or left stuck (see README.md here).
 *
 *   npm run chaos -- [--seconds 60] [--seed 1] [--apis 2] [--workers 4]
 *
 * Prints a table and ends with one line:
 *   chaos: <n> jobs, <f> faults, <l> lost, <d> double-charged, <s> stuck, <o> orphans
 * Exit code 0 when lost, double-charged and stuck are all 0.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { ObjectStore } from '../../apps/api/src/infra/object-store.js';
import { sweepOrphanObjects } from '../../apps/api/src/modules/worker/orphan-sweep.task.js';
import { check, unsettled, type Findings } from './checks.js';
import { Cluster } from './cluster.js';
import { Injector } from './injector.js';
import { Random } from './random.js';
import { Traffic, type FaultKind, type TrafficStats } from './traffic.js';

const optionsSchema = z.object({
  seconds: z.coerce
    .number()
    .int()
    .min(5)
    .max(24 * 3600)
    .default(60),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(1),
  apis: z.coerce.number().int().min(1).max(8).default(2),
  workers: z.coerce.number().int().min(1).max(32).default(4),
  users: z.coerce.number().int().min(3).max(500).default(50),
  /** The longest the run waits, after the faults stop, for every job and watcher to settle. */
  quietSeconds: z.coerce.number().int().min(10).max(3600).default(90),
});
type ChaosOptions = z.infer<typeof optionsSchema>;

const LEASE_SECONDS = 6;

function readOptions(): ChaosOptions {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      seed: { type: 'string' },
      apis: { type: 'string' },
      workers: { type: 'string' },
      users: { type: 'string' },
      'quiet-seconds': { type: 'string' },
    },
  });
  const parsed = optionsSchema.safeParse({ ...values, quietSeconds: values['quiet-seconds'] });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    console.error(`chaos: --${String(issue.path[0])} ${issue.message}`);
    process.exit(2);
  }
  return parsed.data;
}

/**
 * Runs once the faults have stopped and everything settled, just before the final checks.
 * The place for end-of-run housekeeping the checks should see done (e.g. an orphan sweep).
 */
async function beforeFinalChecks(cluster: Cluster): Promise<void> {
  // Every job is terminal now, so no attempt can still be uploading: sweep without the age margin
  // the periodic task keeps, and the checks then see whether any object of a dead attempt survived.
  const store = new ObjectStore({
    endpoint: cluster.s3.endpoint,
    region: cluster.s3.region,
    bucket: cluster.s3.bucket,
    accessKeyId: cluster.s3.accessKeyId,
    secretAccessKey: cluster.s3.secretAccessKey,
    forcePathStyle: true,
    presignSeconds: 60,
  });
  const { listed, deleted } = await sweepOrphanObjects(
    { db: cluster.database.db, store, logger: pino({ level: 'silent' }) },
    { olderThanSeconds: 0 },
  );
  console.log(`chaos: orphan sweep listed ${listed} objects, deleted ${deleted}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function printReport(
  options: ChaosOptions,
  findings: Findings,
  faults: Record<string, number>,
  traffic: TrafficStats,
  crashes: string[],
  runDir: string,
): number {
  const totalFaults = Object.values(faults).reduce((a, b) => a + b, 0);
  const rows: [string, string][] = [
    ['creates sent', String(traffic.createsSent)],
    ['  refused: no credits (402)', String(traffic.paymentRequired)],
    ['  failed (API down…)', String(traffic.createErrors)],
    ['cancels sent', String(traffic.cancelsSent)],
    ['webhooks delivered', String(traffic.webhooksDelivered)],
    ['  deliveries retried', String(traffic.webhookRetries)],
    ['jobs created', String(findings.jobs.total)],
    ['  completed', String(findings.jobs.completed)],
    ['  failed', String(findings.jobs.failed)],
    ['  cancelled', String(findings.jobs.cancelled)],
    ['    of them after starting', String(findings.jobs.cancelledRunning)],
    ...Object.entries(faults).map(([kind, n]): [string, string] => [`fault ${kind}`, String(n)]),
    ['create → completed p50', `${(findings.latencyMs.p50 / 1000).toFixed(2)} s`],
    ['create → completed p99', `${(findings.latencyMs.p99 / 1000).toFixed(2)} s`],
  ];
  const { seconds, seed, apis, workers, users } = options;
  console.log(
    `\nchaos run: ${seconds} s, seed ${seed}, ${apis} APIs, ${workers} workers, ${users} users (logs: ${runDir})`,
  );
  for (const [label, value] of rows) console.log(`  ${label.padEnd(30)} ${value.padStart(8)}`);
  const show = (title: string, items: string[]) => {
    if (items.length === 0) return;
    console.log(`${title} (${items.length}):`);
    for (const item of items.slice(0, 20)) console.log(`  ${item}`);
  };
  show('processes that died on their own (started again)', crashes);
  show('lost', findings.lost);
  show('double-charged', findings.doubleCharged);
  show('stuck', findings.stuck);
  show('orphans (objects without an image row)', findings.orphans);
  console.log(
    `chaos: ${findings.jobs.total} jobs, ${totalFaults} faults, ${findings.lost.length} lost, ` +
      `${findings.doubleCharged.length} double-charged, ${findings.stuck.length} stuck, ${findings.orphans.length} orphans`,
  );
  const failures =
    findings.lost.length + findings.doubleCharged.length + findings.stuck.length + findings.orphans.length;
  return failures === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  const options = readOptions();
  const random = new Random(options.seed);
  const runDir = mkdtempSync(join(tmpdir(), `pingvas-chaos-${options.seed}-`));
  console.log(`chaos: starting ${options.apis} APIs and ${options.workers} workers (logs in ${runDir})`);
  const cluster = await Cluster.start({
    apis: options.apis,
    workers: options.workers,
    runDir,
    leaseSeconds: LEASE_SECONDS,
  });
  const traffic = new Traffic(cluster, random);
  const injector = new Injector(cluster, random, 3000);
  try {
    await traffic.signIn(options.users);
    console.log(`chaos: ${options.users} users signed in and paid; traffic and faults for ${options.seconds} s`);
    injector.start();
    // About what the workers can finish, so queues stay short and every fault meets running jobs.
    const createsPerSecond = Math.max(1, options.workers * 0.6);
    const end = Date.now() + options.seconds * 1000;
    let nextPayment = Date.now() + 2000;
    while (Date.now() < end) {
      traffic.create();
      if (Date.now() >= nextPayment) {
        traffic.payment();
        nextPayment = Date.now() + random.int(1000, 3000);
      }
      await sleep(random.int(0, Math.round(2000 / createsPerSecond)));
    }

    console.log('chaos: stopping faults, waiting for quiet');
    await injector.stop();
    await cluster.heal();
    await traffic.drain();
    const quietBy = Date.now() + options.quietSeconds * 1000;
    for (;;) {
      const { liveJobs, waitingWatchers } = await unsettled(cluster, traffic.jobs);
      if ((liveJobs === 0 && waitingWatchers === 0) || Date.now() > quietBy) break;
      await sleep(1000);
    }
    await beforeFinalChecks(cluster);
    const findings = await check(cluster, traffic.jobs);
    const engineFaults: Record<FaultKind, number> = { oom: 0, abort: 0, hang: 0 };
    for (const job of traffic.jobs.values()) if (job.fault) engineFaults[job.fault] += 1;
    const faults: Record<string, number> = { ...injector.counts };
    for (const [kind, n] of Object.entries(engineFaults)) faults[`engine-${kind}`] = n;
    for (const [reason, n] of traffic.createErrorReasons) console.log(`chaos: ${n} creates failed: ${reason}`);
    return printReport(options, findings, faults, traffic.stats, cluster.crashes, runDir);
  } finally {
    traffic.close();
    await injector.stop().catch(() => undefined);
    await cluster.stop();
  }
}

process.exitCode = await main();
