import { FAILURE_MESSAGES, upscalePlan, type EngineJob, type FailureCode, type PreviewFiles } from '@pingvas/core';

export interface EngineProgress {
  percent: number;
  step: number;
  totalSteps: number;
  secondsPerStep?: number;
}

/** The job's files on disk, all in its own folder. */
export interface EngineJobFiles {
  /**
   * Prepared inputs: img2img/inpaint's init image and inpaint's mask already at the job's size
   * (PNG); an upscale's source as it came (`initImage`).
   */
  inputs: { initImage?: string; mask?: string };
  /** `-o`: with a batch the engine writes `name_0.png … name_{n-1}.png` (core `engineOutputFiles`). Its folder exists. */
  output: string;
  /** Where and how often the engine should rewrite its preview frame; absent: no previews. */
  preview?: PreviewFiles;
}

export interface EngineRunOptions {
  /** Aborting stops the engine; the run then fails with CANCELLED (the reason is kept for the caller). */
  signal?: AbortSignal;
  timeoutMs: number;
  onProgress?: (progress: EngineProgress) => void;
  /** The job waits for its model to load (every CLI run; a server engine whose model was not warm). */
  onModelLoading?: () => void;
}

/** One image the engine wrote, checked: a PNG of the size the job asked the engine for. */
export interface EngineImage {
  path: string;
  width: number;
  height: number;
  bytes: number;
}

export interface EngineSuccess {
  ok: true;
  /** Every image of the job, in index order (`count` of them; one for an upscale). */
  images: EngineImage[];
  /** Wall time of the engine for this job: what the user is charged for. */
  engineSeconds: number;
}

/** The engine failures the worker reports; each is one of core's FAILURE_CODES. */
export type EngineFailureCode = Extract<
  FailureCode,
  'OOM' | 'CRASH' | 'TIMEOUT' | 'BAD_OUTPUT' | 'ENGINE_ERROR' | 'CANCELLED'
>;

export interface EngineFailure {
  code: EngineFailureCode;
  /** What went wrong, for the logs and the job record (the user sees FAILURE_MESSAGES[code]). */
  detail: string;
  engineSeconds: number;
  /**
   * Whether another attempt may succeed. Every engine failure but a cancel is handed back
   * for the API's attempt counter to decide: an OOM or crash can be one GPU's trouble, and a
   * deterministic one ends after MAX_JOB_ATTEMPTS anyway.
   */
  retryable: boolean;
}

export type EngineOutcome = EngineSuccess | ({ ok: false } & EngineFailure);

/** What the worker tells the API at each claim, so that dispatch can prefer jobs whose model is warm here. */
export interface ModelAvailability {
  /** Loaded now: a job for these starts sampling at once. */
  warm: string[];
  /** Everything this worker can run (installed and fitting its GPU memory). */
  loadable: string[];
}

/**
 * A diffusion engine behind the worker: the CLI (one process per job, cli-engine.ts) or
 * `sd-server` kept running per warm model (server-engine.ts).
 */
export interface Engine {
  /** Stored with each image, e.g. `reference` or `sd-cli`. */
  readonly name: string;
  /** Asked once at start and reported with every claim. */
  version(): Promise<string>;
  /** Never rejects: every way a run can end is an outcome. */
  run(job: EngineJob, files: EngineJobFiles, options: EngineRunOptions): Promise<EngineOutcome>;
  models(): ModelAvailability;
  /** Stops whatever the engine keeps running (servers); resolves when it is gone. */
  close(): Promise<void>;
}

export function engineFailure(
  code: EngineFailureCode,
  detail: string,
  engineSeconds: number,
): { ok: false } & EngineFailure {
  return { ok: false, code, detail, engineSeconds, retryable: code !== 'CANCELLED' };
}

/** The message stored with a failed attempt: the user's explanation, then what the engine said. */
export function failureMessage(failure: EngineFailure): string {
  const text = `${FAILURE_MESSAGES[failure.code]} (${failure.detail})`;
  return text.length > 2000 ? `${text.slice(0, 1997)}...` : text;
}

/** The size of each image the engine writes for the job: the job's, or an upscale pass's output. */
export function engineOutputSize(job: EngineJob): { width: number; height: number } {
  if (job.kind === 'upscale') return upscalePlan(job.source, job.scale).engineOutput;
  return { width: job.params.width, height: job.params.height };
}

/** How many images the engine writes for the job. */
export function engineImageCount(job: EngineJob): number {
  return job.kind === 'upscale' ? 1 : job.count;
}
