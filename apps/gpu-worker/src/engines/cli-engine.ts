import { execFile, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { engineArgs, engineOutputFiles, UPSCALE_MODEL_ID, type EngineJob } from '@pingvas/core';
import type { ModelRegistry } from '../config.js';
import {
  engineFailure,
  engineImageCount,
  engineOutputSize,
  type ModelAvailability,
  type Engine,
  type EngineFailure,
  type EngineImage,
  type EngineJobFiles,
  type EngineOutcome,
  type EngineRunOptions,
} from './engine.js';
import { ProgressParser, ProgressThrottle } from './progress.js';
import { releaseGroup, trackGroup, killGroup } from './process-groups.js';

export const OOM = /out of memory|failed to allocate the compute buffer/i;
/** sd-cli saves nothing: `(failure)` per image and `0/n images saved`, at INFO level, then exit 1. */
const SAVE_FAILED = /save result image .* \(failure\)|\b0\/\d+ images saved/;
const ERROR_LINE = /^\[ERROR\s*\].*$/m;
/** `--color` wraps the log tag in ANSI codes; progress bars end in `ESC[K`. */
export const ANSI = /\x1b\[[\d;]*[A-Za-z]/g;
const CRASH_SIGNALS = new Set(['SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE']);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Enough of each stream to classify a failure and show its cause, without growing forever. */
const OUTPUT_KEEP = 16 * 1024;

export interface CliEngineOptions {
  bin: string;
  name: string;
  models: ModelRegistry;
  /** The ESRGAN weights `-M upscale` runs with; without them the worker refuses upscale jobs. */
  upscaleModel?: string;
  /** Added to the worker's environment for the engine (tests pass fault switches here). */
  env?: Record<string, string>;
  progressIntervalMs?: number;
}

/** stable-diffusion.cpp's `sd-cli` contract (docs/engine.md): one process per job. */
export class CliEngine implements Engine {
  readonly name: string;

  constructor(private readonly options: CliEngineOptions) {
    this.name = options.name;
  }

  version(): Promise<string> {
    return probeVersion(this.options.bin, this.env());
  }

  /**
   * Nothing stays loaded between jobs: every installed model is equally cold. With ESRGAN
   * weights the upscaler counts as one more model, so that upscales go only to workers that have them.
   */
  models(): ModelAvailability {
    const upscaler = this.options.upscaleModel ? [UPSCALE_MODEL_ID] : [];
    return { warm: [], loadable: [...Object.keys(this.options.models), ...upscaler] };
  }

  /** Each run's process ends with its run. */
  async close(): Promise<void> {}

  /**
   * The command line for one job (core's `engineArgs`, with the model registry's flags for a
   * diffusion kind and the ESRGAN weights for an upscale), or why this worker cannot run it.
   */
  commandFor(
    job: EngineJob,
    files: EngineJobFiles,
  ): { args: string[]; env?: Record<string, string> } | { refused: string } {
    const common = { output: files.output, ...files.inputs, ...(files.preview ? { preview: files.preview } : {}) };
    if (job.kind === 'upscale') {
      if (!this.options.upscaleModel) return { refused: 'this worker has no upscale model (ENGINE_UPSCALE_MODEL)' };
      return { args: engineArgs(job, { ...common, upscaleModel: this.options.upscaleModel }) };
    }
    const model = this.options.models[job.params.model];
    if (!model) {
      const known = Object.keys(this.options.models).join(', ') || 'none';
      return { refused: `model ${job.params.model} is not installed on this worker (it has: ${known})` };
    }
    return { args: engineArgs(job, { ...common, modelArgs: model.args }), ...(model.env ? { env: model.env } : {}) };
  }

  run(job: EngineJob, files: EngineJobFiles, options: EngineRunOptions): Promise<EngineOutcome> {
    let command;
    try {
      command = this.commandFor(job, files);
    } catch (error) {
      // A missing input file is the worker's own bug; the attempt fails rather than the worker.
      command = { refused: (error as Error).message };
    }
    if ('refused' in command) return Promise.resolve(engineFailure('ENGINE_ERROR', command.refused, 0));
    if (options.signal?.aborted)
      return Promise.resolve(engineFailure('CANCELLED', 'stopped before the engine started', 0));
    const { args } = command;
    const imagePaths = engineOutputFiles(files.output, engineImageCount(job));
    const expected = engineOutputSize(job);

    return new Promise((resolve) => {
      const startedAt = performance.now();
      let exitedAt: number | null = null;
      let stoppedBy: 'timeout' | 'abort' | null = null;
      let stdout = '';
      let stderr = '';
      const parser = new ProgressParser();
      const throttle = new ProgressThrottle((p) => options.onProgress?.(p), this.options.progressIntervalMs);

      const env = { ...this.env(), ...command.env };
      const child = spawn(this.options.bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
      const pgid = child.pid;
      if (pgid !== undefined) trackGroup(pgid);
      // Every sd-cli run loads its weights before the first step: the user sees that wait as such.
      if (pgid !== undefined) options.onModelLoading?.();
      const seconds = () => ((exitedAt ?? performance.now()) - startedAt) / 1000;

      const stop = (why: 'timeout' | 'abort') => {
        if (stoppedBy || exitedAt !== null || pgid === undefined) return;
        stoppedBy = why;
        killGroup(pgid);
      };
      const timer = setTimeout(() => stop('timeout'), options.timeoutMs);
      const onAbort = () => stop('abort');
      options.signal?.addEventListener('abort', onAbort, { once: true });

      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout = (stdout + chunk).slice(-OUTPUT_KEEP);
        for (const progress of parser.push(chunk)) throttle.push(progress);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-OUTPUT_KEEP);
      });
      child.on('exit', () => {
        exitedAt = performance.now();
        // Whatever the engine left running would hold its pipes open, and 'close' with them.
        if (pgid !== undefined) killGroup(pgid);
      });

      let settled = false;
      const finish = (outcome: EngineOutcome | Promise<EngineOutcome>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        throttle.stop();
        if (pgid !== undefined) releaseGroup(pgid);
        resolve(outcome);
      };

      child.on('error', (error) =>
        finish(engineFailure('ENGINE_ERROR', `could not run ${this.options.bin}: ${error.message}`, seconds())),
      );
      child.on('close', (code, signal) => {
        const engineSeconds = seconds();
        if (stoppedBy === 'timeout')
          return finish(engineFailure('TIMEOUT', `no result after ${options.timeoutMs / 1000} s`, engineSeconds));
        if (stoppedBy === 'abort') return finish(engineFailure('CANCELLED', 'stopped by the worker', engineSeconds));
        if (code === 0 && !signal) {
          return finish(checkImages(imagePaths, expected, engineSeconds));
        }
        finish(classifyFailure(code, signal, stdout.replace(ANSI, ''), stderr.replace(ANSI, ''), engineSeconds));
      });
    });
  }

  private env(): NodeJS.ProcessEnv {
    return engineEnv(this.options.env);
  }
}

/** The worker's environment without its API token (the engine has no business with it), plus `extra`. */
export function engineEnv(...extra: (Record<string, string> | undefined)[]): NodeJS.ProcessEnv {
  // The engine inherits the machine's environment (CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH…), minus the secret.
  // eslint-disable-next-line no-restricted-properties
  const { WORKER_TOKEN: _token, ...env } = process.env;
  return Object.assign({ ...env }, ...extra);
}

/**
 * The engine's version line. `--version` exists only in builds since December 2025 (older ones
 * exit 1 on it): then the first line of `--help` (which starts with the version in newer
 * builds), else "unknown". Rejects only when the binary cannot be run at all.
 */
export async function probeVersion(bin: string, env: NodeJS.ProcessEnv): Promise<string> {
  const run = promisify(execFile);
  for (const flag of ['--version', '--help']) {
    try {
      const { stdout } = await run(bin, [flag], { timeout: 10_000, env });
      const line = stdout
        .replace(ANSI, '')
        .split('\n')
        .map((l) => l.trim())
        .find(Boolean);
      if (line) return line.slice(0, 200);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Spawn failures carry a string code (ENOENT, EACCES); an exit status is a number.
      if (typeof code === 'string') throw error;
    }
  }
  return 'unknown';
}

/**
 * A run that did not succeed (exit ≠ 0 or a signal), by its exit first and its words second:
 * text about memory decides OOM only here, because a successful run may print it too (a VAE
 * out-of-memory that `--auto-fit` retried with tiling, a `-v` DEBUG line).
 */
export function classifyFailure(
  code: number | null,
  signal: NodeJS.Signals | null,
  stdout: string,
  stderr: string,
  engineSeconds: number,
): { ok: false } & EngineFailure {
  if (OOM.test(stderr) || OOM.test(stdout)) {
    return engineFailure('OOM', lastLines(`${stderr}\n${stdout}`, OOM) ?? 'out of memory', engineSeconds);
  }
  if (signal) {
    const kind = CRASH_SIGNALS.has(signal) ? 'crashed' : 'was killed';
    return engineFailure('CRASH', `engine ${kind} (${signal})${tail(stderr)}`, engineSeconds);
  }
  if (SAVE_FAILED.test(stdout)) {
    return engineFailure('BAD_OUTPUT', `the engine could not save the image (exit ${code})`, engineSeconds);
  }
  const cause = ERROR_LINE.exec(stderr)?.[0] ?? ERROR_LINE.exec(stdout)?.[0] ?? lastLines(stderr) ?? 'no message';
  return engineFailure('ENGINE_ERROR', `engine exited with ${code}: ${cause}`, engineSeconds);
}

/** Every image of a successful run, checked in index order; the first bad one fails the run. */
export async function checkImages(
  paths: string[],
  expected: { width: number; height: number },
  engineSeconds: number,
): Promise<EngineOutcome> {
  const images: EngineImage[] = [];
  for (const [index, path] of paths.entries()) {
    const image = await checkPng(path, expected);
    if (typeof image === 'string') {
      const which = paths.length > 1 ? ` (image ${index} of ${paths.length})` : '';
      return engineFailure('BAD_OUTPUT', `${image}${which}`, engineSeconds);
    }
    images.push({ path, ...image });
  }
  return { ok: true, images, engineSeconds };
}

/** Reads the PNG's signature and header: a missing, truncated or foreign file is no image. */
export async function checkPng(
  path: string,
  expected: { width: number; height: number },
): Promise<{ width: number; height: number; bytes: number } | string> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return 'the engine exited successfully but wrote no image';
  }
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(24);
    const { bytesRead } = await file.read(head, 0, 24, 0);
    if (bytesRead < 24 || !head.subarray(0, 8).equals(PNG_SIGNATURE) || head.toString('latin1', 12, 16) !== 'IHDR') {
      return 'the engine wrote a file that is not a PNG image';
    }
    const width = head.readUInt32BE(16);
    const height = head.readUInt32BE(20);
    if (width !== expected.width || height !== expected.height) {
      return `the engine wrote a ${width}×${height} image, ${expected.width}×${expected.height} was asked for`;
    }
    return { width, height, bytes: size };
  } finally {
    await file.close();
  }
}

function lastLines(text: string, matching?: RegExp): string | null {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const picked = matching ? lines.filter((l) => matching.test(l)) : lines.slice(-2);
  return picked.length ? picked.slice(-2).join(' | ').slice(0, 500) : null;
}

function tail(stderr: string): string {
  const last = lastLines(stderr);
  return last ? `: ${last}` : '';
}
