import { asc, eq } from 'drizzle-orm';
import { schema, withUser } from '@pingvas/db';
import {
  FAILURE_CODES,
  FAILURE_MESSAGES,
  notFound,
  TERMINAL_JOB_STATES,
  type FailureCode,
  type JobEvent,
  type JobState,
} from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import { busFor, type JobEnvelope } from './bus.js';
import { availableBalance } from './generation.service.js';
import { jobVersion } from './jobs.js';
import { standing } from './queue.js';

const jobs = schema.generationJobs;
const images = schema.images;
const TERMINAL_EVENTS = new Set<JobEvent['type']>(['completed', 'failed', 'cancelled']);
/**
 * Events that may come with the version of the row the subscriber already saw: `queued` (no DB
 * change), and `preview`, published after the `progress` of the same heartbeat (stored nowhere,
 * so a snapshot never contains it). An older one is stale and dropped like any other.
 */
const SAME_VERSION_EVENTS = new Set<JobEvent['type']>(['queued', 'preview']);

/**
 * The job as it is now: the `snapshot` event, plus the terminal event if it has ended. Never a
 * `preview`: frames are live only, and a late subscriber waits for the next one.
 */
async function snapshot(
  deps: AppDeps,
  userId: string,
  jobId: string,
): Promise<{ version: number; status: JobState; events: JobEvent[] }> {
  const row = await withUser(deps.db, userId, async (tx) => {
    const [found] = await tx.select({ job: jobs, version: jobVersion }).from(jobs).where(eq(jobs.id, jobId));
    if (!found || found.job.status !== 'completed') return found;
    const made = await tx
      .select({ id: images.id, width: images.width, height: images.height })
      .from(images)
      .where(eq(images.jobId, jobId))
      .orderBy(asc(images.jobIndex));
    return { ...found, images: made };
  });
  // Row-level security hides other users' jobs: theirs and missing ones look the same.
  if (!row) throw notFound('Job');
  const { job } = row;
  const where = job.status === 'pending' ? await standing(deps, jobId) : null;
  const events: JobEvent[] = [
    {
      type: 'snapshot',
      jobId,
      status: job.status,
      progress: job.progress,
      queuePosition: where?.position ?? null,
      estimatedWaitSeconds: where?.estimatedWaitSeconds ?? null,
      ...(job.status === 'in_progress' && job.loadingModel ? { loadingModel: true } : {}),
    },
  ];
  const refunded = job.estimatedCredits - (job.chargedCredits ?? 0);
  const made = 'images' in row ? row.images : [];
  if (job.status === 'completed' && made[0]) {
    events.push({
      type: 'completed',
      jobId,
      image: made[0],
      images: made,
      creditsCharged: job.chargedCredits ?? 0,
      balance: await availableBalance(deps, userId),
    });
  } else if (job.status === 'failed') {
    const code = (FAILURE_CODES as readonly string[]).includes(job.failureCode ?? '')
      ? (job.failureCode as FailureCode)
      : 'ENGINE_ERROR';
    events.push({ type: 'failed', jobId, code, message: FAILURE_MESSAGES[code], refunded });
  } else if (job.status === 'cancelled') {
    events.push({ type: 'cancelled', jobId, refunded });
  }
  return { version: Number(row.version), status: job.status, events };
}

/**
 * A follower that heard nothing for this long re-reads its job. Events can be lost without
 * the subscriber noticing: an API process killed between its commit and its PUBLISH, a
 * PUBLISH that failed while Redis restarted. The re-read bounds how long a watcher can miss
 * its job's end; it costs one query per quiet follower per period.
 */
export const IDLE_RESYNC_MS = 30_000;
/** After a failed re-read (database or Redis unreachable), the next one comes this soon. */
const RESYNC_RETRY_MS = 1_000;

/**
 * The live events of one of the user's jobs: a snapshot first, then what happens, ending
 * after a terminal event. It listens before it reads the snapshot, so nothing falls in
 * between; buffered events the snapshot already contains (version ≤ the snapshot's) are
 * dropped. `queued` and `preview` carry no DB change of their own, so one with the snapshot's
 * version still passes (SAME_VERSION_EVENTS). When the
 * process's subscriber connection comes back after a drop, or nothing was heard for
 * `idleResyncMs`, the job is re-read and a fresh snapshot follows if it moved.
 */
export async function* jobEvents(
  deps: AppDeps,
  userId: string,
  jobId: string,
  signal?: AbortSignal,
  options: { idleResyncMs?: number } = {},
): AsyncGenerator<JobEvent> {
  const idleResyncMs = options.idleResyncMs ?? IDLE_RESYNC_MS;
  const buffer: (JobEnvelope | 'resync')[] = [];
  let wake: (() => void) | null = null;
  const stop = await busFor(deps).listen(deps.keys.jobChannel(jobId), (message) => {
    try {
      buffer.push(message === null ? 'resync' : (JSON.parse(message) as JobEnvelope));
    } catch {
      return;
    }
    wake?.();
  });
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    const snap = await snapshot(deps, userId, jobId);
    for (const event of snap.events) yield event;
    if (TERMINAL_JOB_STATES.includes(snap.status)) return;
    let last = snap.version;
    let quietMs = idleResyncMs;
    while (!signal?.aborted) {
      const envelope = buffer.shift();
      if (!envelope) {
        let idle: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          idle = setTimeout(() => {
            buffer.push('resync');
            resolve();
          }, quietMs);
        });
        clearTimeout(idle);
        wake = null;
        continue;
      }
      if (envelope === 'resync') {
        let fresh: Awaited<ReturnType<typeof snapshot>>;
        try {
          fresh = await snapshot(deps, userId, jobId);
        } catch (err) {
          deps.logger.warn({ err, jobId }, 'job re-read failed; retrying');
          quietMs = RESYNC_RETRY_MS;
          continue;
        }
        quietMs = idleResyncMs;
        if (fresh.version <= last) continue;
        last = fresh.version;
        for (const event of fresh.events) yield event;
        if (TERMINAL_JOB_STATES.includes(fresh.status)) return;
        continue;
      }
      if (envelope.v < last || (envelope.v === last && !SAME_VERSION_EVENTS.has(envelope.e.type))) continue;
      last = envelope.v;
      yield envelope.e;
      if (TERMINAL_EVENTS.has(envelope.e.type)) return;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await stop();
  }
}
