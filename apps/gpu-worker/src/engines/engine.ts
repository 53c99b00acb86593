import { FAILURE_MESSAGES, type EngineParams, type FailureCode } from '@pingvas/core';

export interface EngineProgress {
  percent: number;
  step: number;
  totalSteps: number;
  secondsPerStep?: number;
}

export interface EngineRunOptions {
  /** Where the PNG must be written; its folder exists. */
  outputPath: string;
  /** Aborting stops the engine; the run then fails with CANCELLED (the reason is kept for the caller). */
  signal?: AbortSignal;
  timeoutMs: number;
  onProgress?: (progress: EngineProgress) => void;
  /** The job waits for its model to load (a server engine whose model was not warm). */
  onModelLoading?: () => void;
}

export interface EngineImage {
  outputPath: string;
  /** Wall time of the engine for this job: what the user is charged for. */
  engineSeconds: number;
  width: number;
  height: number;
  bytes: number;
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

export type EngineOutcome = ({ ok: true } & EngineImage) | ({ ok: false } & EngineFailure);

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
  run(params: EngineParams, options: EngineRunOptions): Promise<EngineOutcome>;
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
