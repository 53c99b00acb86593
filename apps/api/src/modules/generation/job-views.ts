import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { schema, withUser, type Tx } from '@pingvas/db';
import {
  decodeKeysetCursor,
  encodeKeysetCursor,
  FAILURE_CODES,
  FAILURE_MESSAGES,
  KEYSET_TIME_FORMAT,
  notFound,
  type FailureCode,
  type JobKind,
  type JobState,
  type StoredParams,
  type UpscaleScale,
} from '@pingvas/core';
import type { AppDeps } from '../../deps.js';
import type { ObjectStore } from '../../infra/object-store.js';
import type { JobRow } from './jobs.js';
import { standing } from './queue.js';

const jobs = schema.generationJobs;
const images = schema.images;

/** An input of a job: where it came from and its stored PNG (`url` null once the source is gone). */
export interface JobSource {
  uploadId: string | null;
  imageId: string | null;
  width: number;
  height: number;
  url: string | null;
}

export interface JobSources {
  initImage: JobSource | null;
  mask: JobSource | null;
}

export interface JobImageView {
  id: string;
  /** Its place in the job (0 … count − 1). */
  index: number;
  width: number;
  height: number;
  thumbUrl: string;
  url: string;
}

/**
 * What `generation.get` and `generation.list` show of a job (docs/image-tools.md): its stored
 * parameters (an upscale's width and height are the delivered size) and its state.
 */
export interface JobView extends StoredParams {
  id: string;
  status: JobState;
  kind: JobKind;
  /** Images the job makes (1–4). */
  count: number;
  /** img2img and inpaint: how far from the init image the result may go. */
  strength: number | null;
  upscale: { scale: UpscaleScale } | null;
  estimatedCredits: number;
  chargedCredits: number | null;
  /** Failed attempts so far. */
  retryCount: number;
  progress: number;
  /** Running, and waiting for its model to load on the worker. */
  loadingModel: boolean;
  cancelRequested: boolean;
  /** Why it failed or was cancelled, in words for the user. */
  failure: { code: FailureCode; message: string } | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The first image (index 0), as before batches. */
  image: JobImageView | null;
  /** Every image made, in index order (empty until it completes). */
  images: JobImageView[];
  sources: JobSources;
}

type SourceColumns = Pick<
  JobRow,
  'initUploadId' | 'initImageId' | 'initKey' | 'initWidth' | 'initHeight' | 'maskUploadId' | 'maskKey'
>;

/**
 * A job's inputs as the user sees them. The source rows are gone when their ids were nulled
 * (a deleted gallery image takes its objects with it), and then so is the URL.
 */
export async function sourcesOf(store: ObjectStore, job: SourceColumns): Promise<JobSources> {
  if (!job.initKey) return { initImage: null, mask: null };
  const size = { width: job.initWidth!, height: job.initHeight! };
  const urlOf = (key: string, present: boolean) => (present ? store.readUrl(key) : Promise.resolve(null));
  const [initUrl, maskUrl] = await Promise.all([
    urlOf(job.initKey, job.initUploadId !== null || job.initImageId !== null),
    job.maskKey ? urlOf(job.maskKey, job.maskUploadId !== null) : null,
  ]);
  return {
    initImage: { uploadId: job.initUploadId, imageId: job.initImageId, ...size, url: initUrl },
    mask: job.maskKey ? { uploadId: job.maskUploadId, imageId: null, ...size, url: maskUrl } : null,
  };
}

function failureOf(job: Pick<JobRow, 'status' | 'failureCode'>): { code: FailureCode; message: string } | null {
  if (job.status !== 'failed' && job.status !== 'cancelled') return null;
  const code = (FAILURE_CODES as readonly string[]).includes(job.failureCode ?? '')
    ? (job.failureCode as FailureCode)
    : 'ENGINE_ERROR';
  return { code, message: FAILURE_MESSAGES[code] };
}

const imageColumns = {
  jobId: images.jobId,
  id: images.id,
  index: images.jobIndex,
  width: images.width,
  height: images.height,
  thumbKey: images.thumbKey,
  originalKey: images.originalKey,
};
type ImageRow = { [K in keyof typeof imageColumns]: (typeof imageColumns)[K]['_']['data'] };

/** The images of several jobs in one query, grouped by job, each group in index order. */
async function imagesOfJobs(tx: Tx, jobIds: string[]): Promise<Map<string, ImageRow[]>> {
  const byJob = new Map<string, ImageRow[]>();
  if (jobIds.length === 0) return byJob;
  const rows = await tx
    .select(imageColumns)
    .from(images)
    .where(inArray(images.jobId, jobIds))
    .orderBy(asc(images.jobId), asc(images.jobIndex));
  for (const row of rows) byJob.set(row.jobId, [...(byJob.get(row.jobId) ?? []), row]);
  return byJob;
}

async function toView(store: ObjectStore, job: JobRow, rows: ImageRow[]): Promise<JobView> {
  const [shown, sources] = await Promise.all([
    Promise.all(
      rows.map(async (row) => ({
        id: row.id,
        index: row.index,
        width: row.width,
        height: row.height,
        thumbUrl: await store.readUrl(row.thumbKey),
        url: await store.readUrl(row.originalKey),
      })),
    ),
    sourcesOf(store, job),
  ]);
  return {
    id: job.id,
    status: job.status,
    kind: job.kind,
    count: job.count,
    strength: job.strength,
    upscale: job.upscaleScale ? { scale: job.upscaleScale as UpscaleScale } : null,
    prompt: job.prompt,
    negativePrompt: job.negativePrompt,
    model: job.model,
    width: job.width,
    height: job.height,
    steps: job.steps,
    cfgScale: job.cfgScale,
    seed: job.seed,
    sampler: job.sampler,
    estimatedCredits: job.estimatedCredits,
    chargedCredits: job.chargedCredits,
    retryCount: job.retryCount,
    progress: job.progress,
    loadingModel: job.status === 'in_progress' && job.loadingModel,
    cancelRequested: job.cancelRequested,
    failure: failureOf(job),
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    image: shown[0] ?? null,
    images: shown,
    sources,
  };
}

/** The user's own job (another user's reads as not found), with its queue standing while pending. */
export async function getJob(
  deps: AppDeps,
  userId: string,
  jobId: string,
): Promise<JobView & { queuePosition: number | null; estimatedWaitSeconds: number | null }> {
  const found = await withUser(deps.db, userId, async (tx) => {
    const [job] = await tx.select().from(jobs).where(eq(jobs.id, jobId));
    return job ? { job, images: (await imagesOfJobs(tx, [job.id])).get(job.id) ?? [] } : null;
  });
  if (!found) throw notFound('Job');
  const where = found.job.status === 'pending' ? await standing(deps, jobId) : null;
  return {
    ...(await toView(deps.store, found.job, found.images)),
    queuePosition: where?.position ?? null,
    estimatedWaitSeconds: where?.estimatedWaitSeconds ?? null,
  };
}

/** The user's jobs newest first, keyset-paginated on (created_at, id) (page N costs what page 1 costs). */
export async function listJobs(
  deps: AppDeps,
  userId: string,
  input: { cursor?: string; limit: number; status?: JobState },
): Promise<{ items: JobView[]; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(jobs.userId, userId)];
  if (input.status) conditions.push(eq(jobs.status, input.status));
  if (input.cursor) {
    const after = decodeKeysetCursor('jobs', input.cursor);
    conditions.push(sql`(${jobs.createdAt}, ${jobs.id}) < (${after.time}::timestamptz, ${after.id}::uuid)`);
  }
  const position = sql<string>`to_char(${jobs.createdAt} at time zone 'UTC', ${KEYSET_TIME_FORMAT})`;
  const { rows, imagesByJob } = await withUser(deps.db, userId, async (tx) => {
    const rows = await tx
      .select({ job: jobs, position })
      .from(jobs)
      .where(and(...conditions))
      .orderBy(desc(jobs.createdAt), desc(jobs.id))
      .limit(input.limit + 1);
    // One query for the whole page's images, not one per job.
    const imagesByJob = await imagesOfJobs(
      tx,
      rows.slice(0, input.limit).map((r) => r.job.id),
    );
    return { rows, imagesByJob };
  });
  const page = rows.slice(0, input.limit);
  const last = page.at(-1);
  return {
    items: await Promise.all(page.map((r) => toView(deps.store, r.job, imagesByJob.get(r.job.id) ?? []))),
    nextCursor:
      rows.length > input.limit && last ? encodeKeysetCursor('jobs', { time: last.position, id: last.job.id }) : null,
  };
}
