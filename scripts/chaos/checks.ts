import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { expectLedgerInvariants } from '../../apps/api/src/test/invariants.js';
import type { Cluster } from './cluster.js';
import type { TrackedJob } from './traffic.js';

/**
 * What the run must end with, read from PostgreSQL and the bucket directly:
 * - stuck: a job that is not terminal, or a watcher that never saw its job's final state;
 * - lost: a job the API acknowledged that is missing, a completed job without exactly its
 *   `count` images whose two objects exist, an image of a job that did not complete, a balance that
 *   is not its grants minus its captures, a broken ledger invariant;
 * - double-charged: a charge that differs from its hold's capture, a failed job that was
 *   charged, a hold not closed the way its job ended, a charge above the estimate, more
 *   images than its job makes;
 * - orphans: objects under images/ that no image row points to, left after the end-of-run orphan
 *   sweep (so any orphan here is one the sweep failed to remove).
 */

export interface Findings {
  jobs: { total: number; completed: number; failed: number; cancelled: number; cancelledRunning: number };
  latencyMs: { p50: number; p99: number };
  stuck: string[];
  lost: string[];
  doubleCharged: string[];
  orphans: string[];
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

async function bucketKeys(cluster: Cluster): Promise<Set<string>> {
  const client = new S3Client({
    endpoint: cluster.s3.endpoint,
    region: cluster.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cluster.s3.accessKeyId, secretAccessKey: cluster.s3.secretAccessKey },
  });
  const keys = new Set<string>();
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: cluster.s3.bucket, Prefix: 'images/', ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.add(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return keys;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Lists the jobs still live and the watchers still waiting (the run waits for both to reach zero). */
export async function unsettled(
  cluster: Cluster,
  tracked: Map<string, TrackedJob>,
): Promise<{ liveJobs: number; waitingWatchers: number }> {
  const [row] = await cluster.database
    .admin`select count(*)::int as n from generation_jobs where status in ('pending', 'in_progress')`;
  const waitingWatchers = [...tracked.values()].filter((job) => job.watcher && !job.watcher.ended).length;
  return { liveJobs: Number(row!.n), waitingWatchers };
}

export async function check(cluster: Cluster, tracked: Map<string, TrackedJob>): Promise<Findings> {
  const sql = cluster.database.admin;
  const findings: Findings = {
    jobs: { total: 0, completed: 0, failed: 0, cancelled: 0, cancelledRunning: 0 },
    latencyMs: { p50: 0, p99: 0 },
    stuck: [],
    lost: [],
    doubleCharged: [],
    orphans: [],
  };

  const jobs = await sql<
    {
      id: string;
      status: string;
      started: boolean;
      estimated: number;
      charged: number | null;
      hold_status: string | null;
      captured: number | null;
      latency_ms: number | null;
      count: number;
    }[]
  >`
    select j.id, j.status, j.count, j.started_at is not null as started,
           j.estimated_credits as estimated, j.charged_credits as charged,
           h.status as hold_status, h.captured_amount as captured,
           (extract(epoch from (j.finished_at - j.created_at)) * 1000)::float8 as latency_ms
    from generation_jobs j left join credit_holds h on h.id = j.hold_id`;
  const images = await sql<
    { job_id: string; original_key: string; thumb_key: string }[]
  >`select job_id, original_key, thumb_key from images`;
  const keys = await bucketKeys(cluster);

  const imagesByJob = new Map<string, { original_key: string; thumb_key: string }[]>();
  for (const image of images) imagesByJob.set(image.job_id, [...(imagesByJob.get(image.job_id) ?? []), image]);
  const byId = new Map(jobs.map((job) => [job.id, job]));
  const latencies: number[] = [];

  findings.jobs.total = jobs.length;
  for (const job of jobs) {
    const own = imagesByJob.get(job.id) ?? [];
    if (!TERMINAL.has(job.status)) {
      findings.stuck.push(`job ${job.id} is still ${job.status}`);
      continue;
    }
    findings.jobs[job.status as 'completed' | 'failed' | 'cancelled'] += 1;
    if (job.status === 'cancelled' && job.started) findings.jobs.cancelledRunning += 1;
    const charged = job.charged ?? 0;
    if (charged > job.estimated)
      findings.doubleCharged.push(`job ${job.id} charged ${charged} > estimate ${job.estimated}`);
    if (job.status === 'completed') {
      if (job.latency_ms !== null) latencies.push(job.latency_ms);
      if (own.length === 0) findings.lost.push(`completed job ${job.id} has no image`);
      if (own.length > job.count) {
        findings.doubleCharged.push(`completed job ${job.id} of ${job.count} has ${own.length} images`);
      } else if (own.length > 0 && own.length < job.count) {
        findings.lost.push(`completed job ${job.id} of ${job.count} has ${own.length} images`);
      }
      for (const image of own) {
        for (const key of [image.original_key, image.thumb_key])
          if (!keys.has(key)) findings.lost.push(`object ${key} of job ${job.id} is missing`);
      }
      if (job.hold_status !== 'captured' || job.captured !== charged) {
        findings.doubleCharged.push(
          `completed job ${job.id} charged ${charged}, its hold is ${job.hold_status} with ${job.captured} captured`,
        );
      }
    } else {
      if (own.length > 0) findings.lost.push(`${job.status} job ${job.id} has an image row`);
      const released = job.hold_status === 'released' && charged === 0;
      // A cancel during a run pays for the engine seconds the worker reported, exactly once.
      const paidCancel = job.status === 'cancelled' && job.hold_status === 'captured' && job.captured === charged;
      if (!released && !paidCancel) {
        findings.doubleCharged.push(
          `${job.status} job ${job.id} charged ${charged}, its hold is ${job.hold_status} with ${job.captured} captured`,
        );
      }
    }
  }
  const sorted = latencies.sort((a, b) => a - b);
  findings.latencyMs = { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };

  for (const [jobId, job] of tracked) {
    const row = byId.get(jobId);
    if (!row) {
      findings.lost.push(`job ${jobId} was acknowledged by create but is not in the database`);
      continue;
    }
    const last = job.watcher?.events.at(-1);
    if (job.watcher && TERMINAL.has(row.status) && last?.type !== row.status) {
      findings.stuck.push(`the watcher of job ${jobId} last saw ${last?.type ?? 'nothing'}, the job is ${row.status}`);
    }
  }

  const referenced = new Set(images.flatMap((image) => [image.original_key, image.thumb_key]));
  for (const key of keys) if (!referenced.has(key)) findings.orphans.push(key);

  const balances = await sql<{ user_id: string; available: number; held: number; expected: number }[]>`
    select b.user_id, (b.subscription_credits + b.purchased_credits)::int as available, b.held_credits::int as held,
           (coalesce(g.granted, 0) - coalesce(c.captured, 0))::int as expected
    from credit_balances b
    left join (select user_id, sum(subscription_delta + purchased_delta) as granted from credit_transactions
               where type not in ('hold', 'capture', 'release') group by user_id) g on g.user_id = b.user_id
    left join (select user_id, sum(captured_amount) as captured from credit_holds
               where status = 'captured' group by user_id) c on c.user_id = b.user_id`;
  for (const balance of balances) {
    if (balance.held !== 0 || balance.available !== balance.expected) {
      const { user_id: user, available, held, expected } = balance;
      findings.lost.push(`user ${user} has ${available} available and ${held} held; grants − captures = ${expected}`);
    }
  }

  try {
    await expectLedgerInvariants(sql);
  } catch (error) {
    findings.lost.push(`ledger invariant broken: ${(error as Error).message.split('\n')[0]}`);
  }
  return findings;
}
