import { sqlOf, withSystem } from '@pingvas/db';
import type { AppDeps } from '../../deps.js';
import { startLoop, type BackgroundTask } from '../../infra/loop.js';
import { uploadUrlSeconds } from './upload.service.js';

/**
 * Deletes objects that attempts left behind without completing (a worker killed after its
 * upload, a lease lost between upload and complete, a complete refused by the checks).
 *
 * An object under `images/` is an orphan when (1) no image row points at its key, (2) its
 * prefix is not the attempt prefix of an in_progress job, and (3) it is older than an upload
 * URL can live (plus a margin for clock skew between the store and this host).
 *
 * Why a completion can never lose its objects to the sweep: (1) and (2) are decided by one SQL
 * statement, so by one snapshot. worker.complete commits the job's `completed` status and the
 * image row in one transaction, and only while the job is in_progress under that very prefix
 * (checked under the row lock). A snapshot before that commit sees the running attempt (kept by
 * 2), one after it sees the image row (kept by 1). And once a prefix is not a running attempt
 * it never becomes one again: every claim draws a fresh random prefix. So "not referenced and
 * not running" is final, and deleting afterwards is safe however long the delete takes. Any
 * number of sweepers may run at once (every API replica does): each decision is final and
 * deleting a missing key is no error.
 */

/** Added to the upload URL lifetime before an unreferenced object counts as an orphan. */
const CLOCK_SKEW_MARGIN_SECONDS = 60;

export interface OrphanSweepReport {
  /** Objects listed under images/. */
  listed: number;
  deleted: number;
}

/** The objects among `keys` that no image row points at and no running attempt owns. */
async function unreferenced(deps: Pick<AppDeps, 'db'>, keys: string[]): Promise<string[]> {
  const rows = await withSystem(
    deps.db,
    (tx) => sqlOf(tx)<{ key: string }[]>`
    select k.key from unnest(${keys}::text[]) as k(key)
    where not exists (select 1 from images i where i.original_key = k.key)
      and not exists (select 1 from images i where i.thumb_key = k.key)
      and not exists (
        select 1 from generation_jobs j
        where j.attempt_prefix = regexp_replace(k.key, '/[^/]*$', '') and j.status = 'in_progress'
      )`,
  );
  return rows.map((row) => row.key);
}

/**
 * One pass over the bucket's images/ prefix. `olderThanSeconds` defaults to the upload URL
 * lifetime plus a margin; 0 is only right once no worker can upload any more (the end of a
 * chaos run, after every job is terminal).
 */
export async function sweepOrphanObjects(
  deps: Pick<AppDeps, 'db' | 'store' | 'logger'>,
  options: { olderThanSeconds?: number } = {},
): Promise<OrphanSweepReport> {
  const olderThanSeconds = options.olderThanSeconds ?? uploadUrlSeconds(deps.store) + CLOCK_SKEW_MARGIN_SECONDS;
  const report: OrphanSweepReport = { listed: 0, deleted: 0 };
  const cutoff = Date.now() - olderThanSeconds * 1000;
  for await (const page of deps.store.listPages('images/')) {
    report.listed += page.length;
    const old = page.filter((object) => object.lastModified.getTime() <= cutoff).map((object) => object.key);
    if (old.length === 0) continue;
    const orphans = await unreferenced(deps, old);
    await deps.store.deleteKeys(orphans);
    report.deleted += orphans.length;
  }
  if (report.deleted > 0) deps.logger.info({ ...report }, 'orphan objects deleted');
  return report;
}

export function startOrphanSweep(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'orphan-sweep',
    intervalMs: deps.config.ORPHAN_SWEEP_INTERVAL_SECONDS * 1000,
    logger: deps.logger,
    tick: async () => {
      await sweepOrphanObjects(deps);
    },
  });
}
