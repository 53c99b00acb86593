import { sqlOf, withSystem } from '@pingvas/db';
import type { BackgroundTask } from '../../infra/loop.js';
import type { AppDeps } from '../../deps.js';
import { startLoop } from '../../infra/loop.js';
import { checkedKeyFor, INCOMING_PREFIX, pendingUploadSeconds } from './uploads.service.js';

/**
 * Deletes uploads past their expiry (never completed, refused, or checked but never used by a
 * job) with their objects, and raw files nobody can complete any more.
 *
 * Safe on every API replica at once: each batch locks its rows (FOR UPDATE SKIP LOCKED), so two
 * sweepers never take the same upload, and deleting objects before the rows means a crash in
 * between only leaves rows the next pass deletes again. A job that starts using an upload sets
 * its expiry to NULL only while it has not passed (under the row lock), so the sweep and a job
 * never both own one.
 */

/** Added to the pending lifetime before a raw object is deleted by its age alone (clock skew with the store). */
const CLOCK_SKEW_MARGIN_SECONDS = 60;
const BATCH = 200;

export interface UploadSweepReport {
  uploadsDeleted: number;
  rawObjectsDeleted: number;
}

async function deleteExpiredBatch(deps: Pick<AppDeps, 'db' | 'store'>): Promise<number> {
  return withSystem(deps.db, async (tx) => {
    const rows = await sqlOf(tx)<{ id: string; raw_key: string; image_key: string | null }[]>`
      select id, raw_key, image_key from uploads
      where expires_at <= now()
      order by expires_at
      limit ${BATCH}
      for update skip locked`;
    if (rows.length === 0) return 0;
    const keys = rows.flatMap((row) => [row.raw_key, row.image_key ?? checkedKeyFor(row.raw_key)]);
    await deps.store.deleteKeys(keys);
    await sqlOf(tx)`delete from uploads where id = any(${rows.map((row) => row.id)}::uuid[])`;
    return rows.length;
  });
}

/**
 * A raw object older than an upload can stay pending is never needed: completing is refused by
 * then. This also catches a PUT that arrived after its upload was refused or completed.
 */
async function deleteStaleRawObjects(deps: Pick<AppDeps, 'store'>, olderThanSeconds: number): Promise<number> {
  const cutoff = Date.now() - olderThanSeconds * 1000;
  let deleted = 0;
  for await (const page of deps.store.listPages(INCOMING_PREFIX)) {
    const stale = page.filter((object) => object.lastModified.getTime() <= cutoff).map((object) => object.key);
    await deps.store.deleteKeys(stale);
    deleted += stale.length;
  }
  return deleted;
}

/**
 * One pass. `rawOlderThanSeconds` defaults to the pending lifetime plus a margin; 0 (tests, or
 * once no client can upload any more) deletes every raw object.
 */
export async function sweepExpiredUploads(
  deps: Pick<AppDeps, 'db' | 'store' | 'logger'>,
  options: { rawOlderThanSeconds?: number } = {},
): Promise<UploadSweepReport> {
  const rawOlderThanSeconds = options.rawOlderThanSeconds ?? pendingUploadSeconds(deps) + CLOCK_SKEW_MARGIN_SECONDS;
  const report: UploadSweepReport = { uploadsDeleted: 0, rawObjectsDeleted: 0 };
  for (;;) {
    const deleted = await deleteExpiredBatch(deps);
    report.uploadsDeleted += deleted;
    if (deleted < BATCH) break;
  }
  report.rawObjectsDeleted = await deleteStaleRawObjects(deps, rawOlderThanSeconds);
  if (report.uploadsDeleted + report.rawObjectsDeleted > 0) deps.logger.info({ ...report }, 'expired uploads deleted');
  return report;
}

export function startUploadExpiry(deps: AppDeps): BackgroundTask {
  return startLoop({
    name: 'upload-expiry',
    intervalMs: deps.config.UPLOAD_SWEEP_INTERVAL_SECONDS * 1000,
    logger: deps.logger,
    tick: async () => {
      await sweepExpiredUploads(deps);
    },
  });
}
