import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  effectiveSteps,
  type ClaimedJob,
  type CompletedImage,
  type FailureCode,
  type PreviewFiles,
} from '@pingvas/core';
import { apiErrorKind, type WorkerApi } from './api-client.js';
import { Backoff, sleep } from './backoff.js';
import {
  engineFailure,
  failureMessage,
  type Engine,
  type EngineFailure,
  type EngineJobFiles,
  type EngineOutcome,
  type EngineProgress,
  type EngineSuccess,
} from './engines/engine.js';
import { engineJobOf } from './claimed-job.js';
import { makeThumbnail, uploadObject } from './image-upload.js';
import { InputError, prepareInputs } from './job-inputs.js';
import { deliveredImages, type DeliveredImage } from './job-outputs.js';
import { PreviewGate, PreviewWatcher, previewIntervalSteps, StepSpeeds, type PreviewFrame } from './preview.js';

/** A made image that sharp cannot read: the engine's output is bad, not the store. */
class ThumbnailError extends Error {}

/** Why a job stopped before its natural end. */
type StopReason = 'cancel' | 'lease-lost' | 'shutdown';

export interface JobRecord {
  jobId: string;
  result: 'completed' | 'failed' | 'cancelled' | 'released' | 'dropped';
  code?: FailureCode;
  engineSeconds: number;
  /** From the engine's exit to the API acknowledging the result. */
  finishMs: number;
  /** For a completed job, where the finish went: thumbnail and uploads, then `worker.complete`. */
  storeMs?: number;
  completeMs?: number;
}

/** How the worker left a job; the rest of its record is measured around it. */
type Settled = Omit<JobRecord, 'jobId' | 'finishMs' | 'engineSeconds'>;

export interface WorkerOptions {
  api: WorkerApi;
  engine: Engine;
  engineVersion: string;
  workerId: string;
  concurrency: number;
  /** The worker's own cap on one engine run; each job's deadline from the claim is usually shorter. */
  engineTimeoutMs: number;
  claimWaitMs: number;
  logger: Logger;
  /** Where each job gets its scratch folder (the engine's output); the system temp folder by default. */
  scratchDir?: string;
  /** Told about every job once the worker is done with it. */
  onJobSettled?: (record: JobRecord) => void;
  /** How often the engine's preview file is checked (tests shorten it). */
  previewPollMs?: number;
}

export interface WorkerStatus {
  workerId: string;
  engineVersion: string;
  currentJobs: {
    jobId: string;
    phase: 'claimed' | 'running' | 'finishing';
    loadingModel: boolean;
    percent: number;
    step: number;
    totalSteps: number;
  }[];
  /** The engine's models: loaded now, and runnable at all. */
  models: { warm: string[]; loadable: string[] };
  jobsDone: number;
  jobsFailed: number;
  startedAt: string;
}

/** One API call: long enough for a busy API, short enough that a dead connection is noticed. */
const CALL_TIMEOUT_MS = 15_000;
/**
 * How long before the engine's expected end the next job is claimed. Long enough to cover a
 * claim's round trip; short, because the claimed job waits (heartbeating) meanwhile.
 */
const CLAIM_AHEAD_SECONDS = 0.5;
/** How long a result is retried against an unreachable API before the lease is assumed gone. */
const REPORT_DEADLINE_MS = 60_000;

/** The job's own engine share from its hold (the API's jobDeadline), never above the worker's cap. */
function engineTimeoutMs(claimed: ClaimedJob, capMs: number): number {
  return Math.min(capMs, claimed.deadline.engineSeconds * 1000);
}

class ActiveJob {
  readonly stopper = new AbortController();
  readonly log: Logger;
  phase: 'claimed' | 'running' | 'finishing' = 'claimed';
  progress: EngineProgress | null = null;
  /** Waiting for the engine to load the job's model (until the first step). */
  loadingModel = false;
  dir: string | null = null;
  engineExitedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly previews = new PreviewGate<PreviewFrame & { step: number }>();
  private previewTimer: NodeJS.Timeout | null = null;
  private beating = false;
  private beatAgain = false;
  private ended = false;
  private readonly endHooks: (() => void)[] = [];

  constructor(
    readonly claimed: ClaimedJob,
    private readonly api: WorkerApi,
    logger: Logger,
  ) {
    this.log = logger.child({ jobId: claimed.job.id, attempt: claimed.job.attempt });
  }

  get id(): string {
    return this.claimed.job.id;
  }

  get stopReason(): StopReason | null {
    return this.stopper.signal.aborted ? (this.stopper.signal.reason as StopReason) : null;
  }

  stop(reason: StopReason): void {
    if (!this.stopper.signal.aborted) this.stopper.abort(reason);
  }

  /** Heartbeats from claim to report: the lease must outlive the uploads too. */
  startHeartbeats(): void {
    this.timer = setInterval(() => this.beat(), this.claimed.lease.heartbeatIntervalMs);
  }

  onEnd(hook: () => void): void {
    this.endHooks.push(hook);
  }

  /** The worker is done with the job: no more heartbeats. */
  end(): void {
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    if (this.previewTimer) clearTimeout(this.previewTimer);
    for (const hook of this.endHooks.splice(0)) hook();
  }

  onProgress(progress: EngineProgress): void {
    this.progress = progress;
    this.loadingModel = false;
    this.beat();
  }

  onModelLoading(): void {
    this.loadingModel = true;
    this.beat();
  }

  /**
   * A new preview frame rides on the next heartbeat, or on one sent when the pacing allows. Its
   * step is the progress so far, but never below the first frame's: the engine can write a
   * frame before its progress line for that step has been read.
   */
  onPreview(frame: PreviewFrame, intervalSteps: number): void {
    this.previews.offer({ ...frame, step: Math.max(this.progress?.step ?? 0, intervalSteps) });
    const wait = this.previews.waitMs() ?? 0;
    if (wait === 0) return this.beat();
    this.previewTimer ??= setTimeout(() => {
      this.previewTimer = null;
      this.beat();
    }, wait);
  }

  /** One heartbeat in flight at a time; progress arriving meanwhile rides on the next one. */
  private beat(): void {
    if (this.ended) return;
    if (this.beating) {
      this.beatAgain = true;
      return;
    }
    this.beating = true;
    // Once the engine is done a frame is stale: the image itself is on its way.
    const frame = this.phase === 'running' ? this.previews.take() : undefined;
    this.api.heartbeat
      .mutate(
        {
          jobId: this.id,
          leaseToken: this.claimed.lease.token,
          progress: this.progress ?? undefined,
          ...(this.loadingModel ? { loadingModel: true } : {}),
          ...(frame ? { preview: frame } : {}),
        },
        { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) },
      )
      .then((reply) => {
        // A cancel that arrives after the engine is done changes nothing: the image is made.
        if (reply.cancel && this.phase !== 'finishing') {
          this.log.info('cancelled by the user');
          this.stop('cancel');
        }
      })
      .catch((error: unknown) => {
        if (apiErrorKind(error) === 'lease-lost') {
          this.log.warn({ err: error }, 'lease lost: dropping the job');
          this.stop('lease-lost');
        } else {
          this.log.warn({ err: error }, 'heartbeat failed');
        }
      })
      .finally(() => {
        this.beating = false;
        if (this.beatAgain) {
          this.beatAgain = false;
          this.beat();
        }
      });
  }
}

/**
 * The worker loop: each slot (one per GPU) claims a job, runs the engine while heartbeating,
 * and hands the finished image to a finisher (thumbnail, uploads, `worker.complete`) so the
 * GPU is already on the next job while the last one is being delivered.
 */
export class Worker {
  private readonly active = new Map<string, ActiveJob>();
  private readonly softStop = new AbortController();
  private readonly hardStop = new AbortController();
  private hardTimer: NodeJS.Timeout | null = null;
  private slots: Promise<void>[] = [];
  private jobsDone = 0;
  private jobsFailed = 0;
  private readonly startedAt = new Date();
  /** Measured step times, to choose each job's preview interval before it starts. */
  private readonly stepSpeeds = new StepSpeeds();

  constructor(private readonly options: WorkerOptions) {}

  start(): void {
    for (let i = 0; i < this.options.concurrency; i++) this.slots.push(this.slot(i));
  }

  /**
   * Stops claiming; jobs that finish within the grace period are delivered, the rest are
   * killed and handed back. Resolves when every slot is idle. Calling it again with a
   * shorter grace (a second SIGTERM) cuts the wait.
   */
  async stop(graceMs: number): Promise<void> {
    this.softStop.abort();
    if (this.hardTimer) clearTimeout(this.hardTimer);
    this.hardTimer = setTimeout(() => this.hardStop.abort(), graceMs);
    await Promise.all(this.slots);
    clearTimeout(this.hardTimer);
  }

  status(): WorkerStatus {
    return {
      workerId: this.options.workerId,
      engineVersion: this.options.engineVersion,
      currentJobs: [...this.active.values()].map((job) => ({
        jobId: job.id,
        phase: job.phase,
        loadingModel: job.loadingModel,
        percent: job.progress?.percent ?? 0,
        step: job.progress?.step ?? 0,
        totalSteps: job.progress?.totalSteps ?? job.claimed.job.params.steps,
      })),
      models: this.options.engine.models(),
      jobsDone: this.jobsDone,
      jobsFailed: this.jobsFailed,
      startedAt: this.startedAt.toISOString(),
    };
  }

  private get stopping(): boolean {
    return this.softStop.signal.aborted;
  }

  private async slot(index: number): Promise<void> {
    const log = this.options.logger.child({ slot: index });
    const backoff = { error: new Backoff(250, 30_000), idle: new Backoff(250, 2_000) };
    // At most one delivery in flight per slot: the next engine run overlaps it, nothing more.
    let delivering: Promise<void> = Promise.resolve();
    // The next job, claimed while the engine finishes the current one.
    const ahead: { claim: Promise<ActiveJob | null> | null } = { claim: null };
    while (!this.stopping) {
      const job = await (ahead.claim ?? this.claimOne(log, backoff));
      ahead.claim = null;
      if (!job) continue;
      // Claimed just as the worker began to stop: hand it straight back rather than start it.
      if (this.stopping) job.stop('shutdown');
      const outcome = await this.runEngine(job, () => {
        if (!this.stopping) ahead.claim ??= this.claimOne(log, backoff);
      });
      await delivering;
      delivering = this.deliver(job, outcome);
    }
    const unstarted = await ahead.claim;
    if (unstarted) {
      unstarted.stop('shutdown');
      unstarted.phase = 'finishing';
      unstarted.engineExitedAt = performance.now();
      await delivering;
      delivering = this.deliver(unstarted, engineFailure('CANCELLED', 'not started: the worker is stopping', 0));
    }
    await delivering;
  }

  /** One claim (a long poll); null when there was nothing, or after waiting out an error. */
  private async claimOne(log: Logger, backoff: { error: Backoff; idle: Backoff }): Promise<ActiveJob | null> {
    const askedAt = performance.now();
    let claimed: ClaimedJob | null;
    try {
      claimed = await this.options.api.claim.mutate(
        {
          workerId: this.options.workerId,
          engineVersion: this.options.engineVersion,
          waitMs: this.options.claimWaitMs,
          models: this.options.engine.models(),
        },
        // Stopping hangs up a waiting claim at once: the API hands back a job it claimed for a caller that left.
        {
          signal: AbortSignal.any([
            this.softStop.signal,
            AbortSignal.timeout(this.options.claimWaitMs + CALL_TIMEOUT_MS),
          ]),
        },
      );
      backoff.error.reset();
    } catch (error) {
      if (this.stopping) return null;
      const kind = apiErrorKind(error);
      const wait = backoff.error.next();
      log[kind === 'rejected' ? 'error' : 'warn']({ err: error, retryInMs: Math.round(wait) }, 'claim failed');
      await sleep(wait, this.softStop.signal);
      return null;
    }
    if (!claimed) {
      // An API that answers "nothing" at once (no long poll) must not turn this into a spin.
      if (performance.now() - askedAt < 250) await sleep(backoff.idle.next(), this.softStop.signal);
      return null;
    }
    backoff.idle.reset();
    const job = new ActiveJob(claimed, this.options.api, log);
    this.active.set(job.claimed.lease.token, job);
    job.startHeartbeats();
    const onHardStop = () => job.stop('shutdown');
    this.hardStop.signal.addEventListener('abort', onHardStop);
    job.onEnd(() => this.hardStop.signal.removeEventListener('abort', onHardStop));
    const { params, kind, count } = claimed.job;
    job.log.info(
      { kind, count, model: params.model, width: params.width, height: params.height, steps: params.steps },
      'job claimed',
    );
    return job;
  }

  /**
   * Runs the engine for the job. `nearlyDone` fires once the engine is expected to end within
   * CLAIM_AHEAD_SECONDS (judged from its progress), so that the next claim's round trip
   * overlaps the end of this run instead of leaving the GPU idle.
   */
  private async runEngine(job: ActiveJob, nearlyDone: () => void): Promise<EngineOutcome> {
    let watcher: PreviewWatcher | null = null;
    try {
      job.dir = await mkdtemp(join(this.options.scratchDir ?? tmpdir(), 'pingvas-job-'));
      const engineJob = engineJobOf(job.claimed.job);
      const prepared = await this.prepareInputs(job);
      if (!prepared.ok) return prepared;
      const preview = this.previewFor(job);
      if (preview) {
        watcher = new PreviewWatcher(
          preview.path,
          (frame) => job.onPreview(frame, preview.intervalSteps),
          this.options.previewPollMs,
          (error) => job.log.debug({ err: error }, 'preview frame skipped'),
        );
        watcher.start();
      }
      job.phase = 'running';
      job.log.debug('engine starting');
      const { params } = job.claimed.job;
      const outcome = await this.options.engine.run(
        engineJob,
        { inputs: prepared.inputs, output: join(job.dir, 'original.png'), ...(preview ? { preview } : {}) },
        {
          signal: job.stopper.signal,
          timeoutMs: engineTimeoutMs(job.claimed, this.options.engineTimeoutMs),
          onModelLoading: () => job.onModelLoading(),
          onProgress: (progress) => {
            job.onProgress(progress);
            if (progress.secondsPerStep !== undefined) {
              this.stepSpeeds.record(params.model, params, progress.secondsPerStep);
            }
            const left = (progress.totalSteps - progress.step) * (progress.secondsPerStep ?? Infinity);
            if (progress.step === progress.totalSteps || left <= CLAIM_AHEAD_SECONDS) nearlyDone();
          },
        },
      );
      job.log.debug({ ok: outcome.ok, engineSeconds: outcome.engineSeconds }, 'engine exited');
      return outcome;
    } catch (error) {
      return engineFailure('ENGINE_ERROR', `could not run the engine: ${(error as Error).message}`, 0);
    } finally {
      watcher?.stop();
      job.engineExitedAt = performance.now();
      job.phase = 'finishing';
    }
  }

  /** The job's inputs in its folder, or the failure that ends the attempt (a stop is CANCELLED: settle sorts out why). */
  private async prepareInputs(
    job: ActiveJob,
  ): Promise<{ ok: true; inputs: EngineJobFiles['inputs'] } | ({ ok: false } & EngineFailure)> {
    try {
      return { ok: true, inputs: await prepareInputs(job.claimed.job, job.dir!, job.stopper.signal) };
    } catch (error) {
      if (job.stopper.signal.aborted) return engineFailure('CANCELLED', 'stopped while fetching the inputs', 0);
      if (!(error instanceof InputError)) throw error;
      job.log.warn({ err: error }, 'input refused');
      return engineFailure('ENGINE_ERROR', error.message, 0);
    }
  }

  /** Previews for the diffusion kinds; the interval follows this worker's measured step time for the model. */
  private previewFor(job: ActiveJob): PreviewFiles | undefined {
    const { kind, params, strength } = job.claimed.job;
    if (kind === 'upscale') return undefined;
    // An image-to-image job samples only the tail of its schedule, and its progress counts those steps.
    const steps = strength === undefined ? params.steps : effectiveSteps(params.steps, strength);
    const intervalSteps = previewIntervalSteps(steps, this.stepSpeeds.expected(params.model, params));
    return { path: join(job.dir!, 'preview.png'), intervalSteps };
  }

  /** Reports the job's end to the API; never rejects. */
  private async deliver(job: ActiveJob, outcome: EngineOutcome): Promise<void> {
    let record: Settled;
    try {
      record = await this.settle(job, outcome);
    } catch (error) {
      job.log.error({ err: error }, 'could not report the job');
      record = { result: 'dropped' };
    } finally {
      job.end();
      this.active.delete(job.claimed.lease.token);
      if (job.dir) await rm(job.dir, { recursive: true, force: true }).catch(() => {});
    }
    if (record.result === 'completed') this.jobsDone++;
    else if (record.result !== 'released') this.jobsFailed++;
    const full: JobRecord = {
      jobId: job.id,
      ...record,
      engineSeconds: outcome.engineSeconds,
      finishMs: performance.now() - job.engineExitedAt,
    };
    const ms = (value?: number) => (value === undefined ? undefined : Math.round(value));
    job.log.info(
      { ...full, finishMs: ms(full.finishMs), storeMs: ms(full.storeMs), completeMs: ms(full.completeMs) },
      `job ${record.result}`,
    );
    this.options.onJobSettled?.(full);
  }

  private async settle(job: ActiveJob, outcome: EngineOutcome): Promise<Settled> {
    const reason = job.stopReason;
    if (reason === 'lease-lost') return { result: 'dropped' };
    if (reason === 'shutdown') return this.release(job);
    if (reason === 'cancel')
      return this.fail(job, engineFailure('CANCELLED', 'cancelled by the user', outcome.engineSeconds));
    if (!outcome.ok) {
      job.log.warn(
        { code: outcome.code, detail: outcome.detail, engineSeconds: outcome.engineSeconds },
        'engine failed',
      );
      return this.fail(job, outcome);
    }

    let images: DeliveredImage[];
    try {
      images = await deliveredImages(job.claimed.job, outcome.images);
    } catch (error) {
      return this.fail(
        job,
        engineFailure('BAD_OUTPUT', `the image could not be read: ${(error as Error).message}`, outcome.engineSeconds),
      );
    }
    const stored = await Promise.allSettled(images.map((image, index) => this.storeImage(job, index, image.png)));
    const failed = stored.find((result) => result.status === 'rejected');
    if (failed) {
      const error = failed.reason as Error;
      if (error instanceof ThumbnailError) {
        return this.fail(
          job,
          engineFailure('BAD_OUTPUT', `the image could not be read: ${error.message}`, outcome.engineSeconds),
        );
      }
      const late = job.stopReason;
      if (
        late === 'lease-lost' ||
        stored.some((r) => r.status === 'rejected' && apiErrorKind(r.reason) === 'lease-lost')
      )
        return { result: 'dropped' };
      if (late === 'shutdown') return this.release(job);
      // Storage trouble is not the job's fault, but retrying it forever is worse: the attempt counts.
      return this.fail(
        job,
        engineFailure('ENGINE_ERROR', `the image could not be stored: ${error.message}`, outcome.engineSeconds),
      );
    }
    const storeMs = performance.now() - job.engineExitedAt;
    const reported = images.map(({ png, width, height }) => ({ width, height, bytes: png.length }));
    return { ...(await this.complete(job, outcome, reported)), storeMs };
  }

  /**
   * Stores one image of the job: the original goes up while its thumbnail is made, so the two
   * overlap instead of queueing (and the images of a batch go up side by side).
   */
  private async storeImage(job: ActiveJob, index: number, png: Buffer): Promise<void> {
    const lease = { jobId: job.id, leaseToken: job.claimed.lease.token };
    const original = uploadObject(this.options.api, lease, { object: 'original', index }, png, job.stopper.signal);
    original.catch(() => {});
    let thumb: Buffer;
    try {
      thumb = await makeThumbnail(png);
    } catch (error) {
      await original.catch(() => {});
      throw new ThumbnailError((error as Error).message);
    }
    await Promise.all([
      original,
      uploadObject(this.options.api, lease, { object: 'thumb', index }, thumb, job.stopper.signal),
    ]);
  }

  private async complete(job: ActiveJob, outcome: EngineSuccess, images: CompletedImage[]): Promise<Settled> {
    const startedAt = performance.now();
    const result = await this.report(job, 'complete', (signal) =>
      this.options.api.complete.mutate(
        {
          jobId: job.id,
          leaseToken: job.claimed.lease.token,
          engineSeconds: outcome.engineSeconds,
          images,
          engine: this.options.engine.name,
        },
        { signal },
      ),
    );
    if (!result) return { result: 'dropped' };
    job.log.info({ creditsCharged: result.creditsCharged, replayed: result.replayed }, 'charged');
    return { result: 'completed', completeMs: performance.now() - startedAt };
  }

  private async fail(job: ActiveJob, failure: EngineFailure): Promise<Settled> {
    const reply = await this.report(job, 'fail', (signal) =>
      this.options.api.fail.mutate(
        {
          jobId: job.id,
          leaseToken: job.claimed.lease.token,
          code: failure.code,
          message: failureMessage(failure),
          engineSeconds: failure.engineSeconds,
        },
        { signal },
      ),
    );
    if (!reply) return { result: 'dropped', code: failure.code };
    job.log.info({ outcome: reply.outcome, code: failure.code }, 'failure reported');
    return { result: failure.code === 'CANCELLED' ? 'cancelled' : 'failed', code: failure.code };
  }

  private async release(job: ActiveJob): Promise<Settled> {
    const reply = await this.report(job, 'release', (signal) =>
      this.options.api.release.mutate({ jobId: job.id, leaseToken: job.claimed.lease.token }, { signal }),
    );
    return { result: reply === null ? 'dropped' : 'released' };
  }

  /**
   * Sends a result, retrying while the API is unreachable. Gives up when the job is no longer
   * ours, when the API refuses the call, at the deadline (the lease is gone by then and the
   * reconciler has the job), or after one more try once the worker is past its grace period.
   */
  private async report<T>(job: ActiveJob, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T | null> {
    const backoff = new Backoff(250, 5_000);
    const deadline = performance.now() + REPORT_DEADLINE_MS;
    for (;;) {
      try {
        return await call(AbortSignal.timeout(CALL_TIMEOUT_MS));
      } catch (error) {
        const kind = apiErrorKind(error);
        if (kind !== 'unreachable' || performance.now() > deadline || this.hardStop.signal.aborted) {
          job.log[kind === 'lease-lost' ? 'warn' : 'error']({ err: error, kind }, `${what} not accepted`);
          return null;
        }
        const wait = backoff.next();
        job.log.warn({ err: error, retryInMs: Math.round(wait) }, `${what} failed, retrying`);
        await sleep(wait, this.hardStop.signal);
      }
    }
  }
}
