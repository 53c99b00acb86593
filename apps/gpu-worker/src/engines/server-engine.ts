import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { engineOutputFiles, type EngineJob, type EngineParams } from '@pingvas/core';
import type { ModelEntry, ModelRegistry } from '../config.js';
import { sleep } from '../backoff.js';
import { ANSI, checkImages, classifyFailure, engineEnv, OOM, probeVersion } from './cli-engine.js';
import {
  engineFailure,
  type Engine,
  type EngineFailure,
  type EngineJobFiles,
  type EngineOutcome,
  type EngineRunOptions,
  type ModelAvailability,
} from './engine.js';
import { killGroup, releaseGroup, trackGroup } from './process-groups.js';
import { ProgressParser, ProgressThrottle } from './progress.js';

/** Enough of a server's output to classify a failure, without growing forever. */
const OUTPUT_KEEP = 16 * 1024;
/** One HTTP call to a local server; a server that does not answer within this is hung or busy loading. */
const CALL_TIMEOUT_MS = 5_000;
/**
 * Polls while the job samples only watch for a cancel or a lost job (stdout shows the steps);
 * once the last step is drawn, the image is close and the status is polled quickly.
 */
const POLL_SAMPLING_MS = 200;
const POLL_FINISHING_MS = 10;
/** After a cancel, how long the server may take to stop the job before it is killed (and restarted). */
const CANCEL_GRACE_MS = 5_000;

export interface ServerEngineOptions {
  /** stable-diffusion.cpp's `sd-server` (or the reference engine's `refengine-server`). */
  bin: string;
  name: string;
  models: ModelRegistry;
  /** What the warm models may take together; 0 = no limit. */
  gpuMemoryMb: number;
  /** Added to every server's environment (tests pass fault switches here). */
  env?: Record<string, string>;
  /**
   * Runs the kinds the servers are not given: image-to-image, inpainting and upscaling (the CLI
   * engine beside them, with the same registry). Why: the README's server mode.
   */
  fallback: Engine;
  /** Poll interval while sampling (default 200 ms); after the last step it is 10 ms. */
  pollIntervalMs?: number;
  progressIntervalMs?: number;
  logger?: Logger;
}

interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type OutputListener = (stream: 'stdout' | 'stderr', chunk: string) => void;

/** One sd-server process holding one model, on a loopback port of its own. */
class ModelServer {
  state: 'loading' | 'ready' | 'dead' = 'loading';
  /** It served at some point: dying later is an accident worth a restart, not a model that cannot load. */
  wasReady = false;
  lastUsedAt = performance.now();
  /** Jobs running on it or waiting for it: a server with any is never evicted. */
  jobs = 0;
  readonly ready: Promise<void>;
  readonly exited: Promise<ServerExit>;
  private readonly listeners = new Set<OutputListener>();
  private turn: Promise<void> = Promise.resolve();
  private output = '';

  constructor(
    readonly model: string,
    readonly memoryMb: number,
    readonly url: string,
    private readonly child: ChildProcess,
  ) {
    const pgid = child.pid;
    if (pgid !== undefined) trackGroup(pgid);
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream]!.setEncoding('utf8').on('data', (chunk: string) => {
        if (this.state === 'loading') this.output = (this.output + chunk).slice(-OUTPUT_KEEP);
        for (const listener of this.listeners) listener(stream, chunk);
      });
    }
    this.exited = new Promise((resolve) => {
      child.on('error', (error) => {
        this.output += `\n${error.message}`;
        this.state = 'dead';
        resolve({ code: null, signal: null });
      });
      child.on('exit', (code, signal) => {
        this.state = 'dead';
        if (pgid !== undefined) releaseGroup(pgid);
        resolve({ code, signal });
      });
    });
    this.ready = this.waitUntilListening();
    this.ready.catch(() => undefined);
  }

  /** What it printed while loading: why a load failed. */
  get loadOutput(): string {
    return this.output.replace(ANSI, '');
  }

  /** sd-server loads its model before it listens: any HTTP answer means it is ready. */
  private async waitUntilListening(): Promise<void> {
    for (;;) {
      if (this.state === 'dead') throw new Error('the server exited while loading its model');
      try {
        await fetch(`${this.url}/sdcpp/v1/capabilities`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
        if ((this.state as ModelServer['state']) === 'dead') continue;
        this.state = 'ready';
        this.wasReady = true;
        this.output = '';
        return;
      } catch {
        await Promise.race([sleep(50), this.exited]);
      }
    }
  }

  listen(listener: OutputListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One job at a time, so that the progress bar on stdout is always the current job's. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const before = this.turn;
    let done!: () => void;
    this.turn = new Promise((resolve) => (done = resolve));
    await before;
    try {
      return await work();
    } finally {
      done();
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  kill(): void {
    if (this.child.pid !== undefined) killGroup(this.child.pid);
  }
}

async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

interface JobStatus {
  status: 'queued' | 'generating' | 'completed' | 'failed' | 'cancelled';
  result?: { images?: { index: number; b64_json: string }[] } | null;
  error?: { code?: string; message?: string } | null;
}

/**
 * stable-diffusion.cpp's `sd-server` behind the Engine interface: one server per warm model,
 * kept within the GPU memory budget by unloading the least recently used idle model. Jobs go
 * through the native async API (submit, poll, cancel); the job status carries no step
 * progress, so progress comes from the server's own stdout bar, as with the CLI.
 */
export class ServerEngine implements Engine {
  readonly name: string;
  private readonly servers = new Map<string, ModelServer>();
  private closed = false;

  constructor(private readonly options: ServerEngineOptions) {
    this.name = options.name;
  }

  version(): Promise<string> {
    return probeVersion(this.options.bin, engineEnv(this.options.env));
  }

  /** The diffusion models that fit, and whatever else the engine it hands other kinds to can run (the upscaler). */
  models(): ModelAvailability {
    const diffusion = Object.keys(this.options.models);
    return {
      warm: [...this.servers.values()].filter((s) => s.state === 'ready').map((s) => s.model),
      loadable: [
        ...diffusion.filter((id) => this.fits(this.options.models[id]!)),
        ...this.options.fallback.models().loadable.filter((id) => !diffusion.includes(id)),
      ],
    };
  }

  /** Loads the listed models, in order, as far as they fit without unloading one another. */
  async prewarm(ids: string[]): Promise<void> {
    const starting: Promise<void>[] = [];
    for (const id of ids) {
      const entry = this.options.models[id];
      if (!entry || this.servers.has(id) || this.usedMb() + this.sizeOf(entry) > this.budget()) continue;
      starting.push(this.start(id, entry).then((server) => server.ready));
    }
    await Promise.allSettled(starting);
  }

  async close(): Promise<void> {
    this.closed = true;
    const servers = [...this.servers.values()];
    this.servers.clear();
    for (const server of servers) server.kill();
    await Promise.all(servers.map((s) => s.exited));
  }

  async run(job: EngineJob, files: EngineJobFiles, options: EngineRunOptions): Promise<EngineOutcome> {
    if (job.kind !== 'txt2img') return this.options.fallback.run(job, files, options);
    const { params, count } = job;
    const entry = this.options.models[params.model];
    if (!entry) {
      const known = Object.keys(this.options.models).join(', ') || 'none';
      return engineFailure(
        'ENGINE_ERROR',
        `model ${params.model} is not installed on this worker (it has: ${known})`,
        0,
      );
    }
    if (!this.fits(entry)) {
      return engineFailure(
        'ENGINE_ERROR',
        `model ${params.model} needs ${entry.memoryMb} MB, this worker's GPU budget is ${this.budget()} MB`,
        0,
      );
    }
    if (this.closed) return engineFailure('CANCELLED', 'the engine is shutting down', 0);
    if (options.signal?.aborted) return engineFailure('CANCELLED', 'stopped before the engine started', 0);
    const deadline = performance.now() + options.timeoutMs;
    const stop = AbortSignal.any([
      options.signal ?? new AbortController().signal,
      AbortSignal.timeout(options.timeoutMs),
    ]);

    let server = this.servers.get(params.model);
    if (server?.state !== 'ready') options.onModelLoading?.();
    try {
      server ??= await this.startWithRoom(params.model, entry, stop);
    } catch {
      if (this.closed) return engineFailure('CANCELLED', 'the engine is shutting down', 0);
      return this.stopped(options, 0, 'while waiting for GPU memory to load the model');
    }
    server.jobs++;
    try {
      return await server.exclusive(async () => {
        const loaded = await Promise.race([
          server!.ready.then(
            () => true,
            () => false,
          ),
          abortOf(stop),
        ]);
        if (loaded === 'stopped') return this.stopped(options, 0, 'while the model was loading');
        if (!loaded) return this.loadFailed(server!);
        return this.generate(server!, params, count, files.output, options, deadline);
      });
    } finally {
      server.jobs--;
      server.lastUsedAt = performance.now();
    }
  }

  private stopped(options: EngineRunOptions, engineSeconds: number, when: string): EngineOutcome {
    if (options.signal?.aborted) return engineFailure('CANCELLED', `stopped by the worker ${when}`, engineSeconds);
    return engineFailure(
      'TIMEOUT',
      `no result after ${options.timeoutMs / 1000} s (${when.replace(/^while /, '')})`,
      engineSeconds,
    );
  }

  private async loadFailed(server: ModelServer): Promise<EngineOutcome> {
    const { code, signal } = await server.exited;
    this.forget(server);
    const text = server.loadOutput;
    if (code === null && signal === null)
      return engineFailure('ENGINE_ERROR', `could not run ${this.options.bin}: ${text.trim()}`, 0);
    const failure = classifyFailure(code, signal, text, text, 0);
    return { ...failure, detail: `the model server stopped while loading ${server.model}: ${failure.detail}` };
  }

  private async generate(
    server: ModelServer,
    params: EngineParams,
    count: number,
    output: string,
    options: EngineRunOptions,
    deadline: number,
  ): Promise<EngineOutcome> {
    let stdout = '';
    let stderr = '';
    const parser = new ProgressParser();
    const throttle = new ProgressThrottle((p) => options.onProgress?.(p), this.options.progressIntervalMs);
    let sampled = false;
    let wake: (() => void) | null = null;
    const detach = server.listen((stream, chunk) => {
      if (stream === 'stderr') {
        stderr = (stderr + chunk).slice(-OUTPUT_KEEP);
        return;
      }
      stdout = (stdout + chunk).slice(-OUTPUT_KEEP);
      for (const progress of parser.push(chunk)) {
        throttle.push(progress);
        if (progress.step === progress.totalSteps) {
          sampled = true;
          wake?.();
        }
      }
    });
    // A cancel is sent at once, not at the next poll.
    const onAbort = () => wake?.();
    options.signal?.addEventListener('abort', onAbort);
    const submittedAt = performance.now();
    const seconds = () => (performance.now() - submittedAt) / 1000;
    const died = async (): Promise<EngineFailure & { ok: false }> => {
      const { code, signal } = await server.exited;
      this.restart(server);
      return classifyFailure(code, signal, stdout.replace(ANSI, ''), stderr.replace(ANSI, ''), seconds());
    };
    try {
      let submitted: Response;
      try {
        submitted = await fetch(`${server.url}/sdcpp/v1/img_gen`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(requestBody(params, count)),
          signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
      } catch (error) {
        if (server.state === 'dead') return await died();
        this.restart(server);
        return engineFailure('ENGINE_ERROR', `the model server did not take the job: ${(error as Error).message}`, 0);
      }
      const accepted = (await submitted.json().catch(() => ({}))) as { id?: string; error?: { message?: string } };
      if (submitted.status !== 202 || !accepted.id) {
        return engineFailure(
          'ENGINE_ERROR',
          `the model server refused the job (${submitted.status}): ${accepted.error?.message ?? 'no message'}`,
          0,
        );
      }
      const jobUrl = `${server.url}/sdcpp/v1/jobs/${encodeURIComponent(accepted.id)}`;
      let cancelBy: number | null = null;
      for (;;) {
        if (options.signal?.aborted && cancelBy === null) {
          cancelBy = performance.now() + CANCEL_GRACE_MS;
          await fetch(`${jobUrl}/cancel`, { method: 'POST', signal: AbortSignal.timeout(CALL_TIMEOUT_MS) }).catch(
            () => undefined,
          );
        }
        const now = performance.now();
        if (now >= deadline || (cancelBy !== null && now >= cancelBy)) {
          // Hung, or deaf to the cancel: the only way to free the GPU is to kill it.
          server.kill();
          await server.exited;
          this.restart(server);
          return cancelBy !== null
            ? engineFailure('CANCELLED', 'stopped by the worker (the model server was killed)', seconds())
            : engineFailure('TIMEOUT', `no result after ${options.timeoutMs / 1000} s`, seconds());
        }
        const interval = sampled ? POLL_FINISHING_MS : (this.options.pollIntervalMs ?? POLL_SAMPLING_MS);
        const wait = Math.min(interval, deadline - now);
        await Promise.race([sleep(wait), server.exited, new Promise<void>((resolve) => (wake = resolve))]);
        wake = null;
        if (server.state === 'dead') return await died();
        const status = await pollJob(jobUrl);
        if (status === 'gone')
          return engineFailure('ENGINE_ERROR', 'the model server no longer knows the job', seconds());
        if (!status) continue;
        if (status.status === 'completed') {
          return await this.saveImages(status, params, engineOutputFiles(output, count), seconds());
        }
        if (status.status === 'cancelled') return engineFailure('CANCELLED', 'stopped by the worker', seconds());
        if (status.status === 'failed') {
          const message = status.error?.message ?? status.error?.code ?? 'no message';
          const text = `${stderr}\n${stdout}\n${message}`.replace(ANSI, '');
          if (OOM.test(text)) {
            // What is left on the GPU after an out-of-memory is not to be trusted: a fresh server.
            server.kill();
            await server.exited;
            this.restart(server);
            return classifyFailure(
              1,
              null,
              stdout.replace(ANSI, ''),
              `${stderr.replace(ANSI, '')}\n${message}`,
              seconds(),
            );
          }
          return engineFailure('ENGINE_ERROR', `the model server failed the job: ${message}`, seconds());
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      detach();
      throttle.stop();
    }
  }

  /** Writes the batch's images where the CLI would have (`name_<index>.png`), then checks them as the CLI's. */
  private async saveImages(
    status: JobStatus,
    params: EngineParams,
    paths: string[],
    engineSeconds: number,
  ): Promise<EngineOutcome> {
    const images = status.result?.images ?? [];
    for (const [index, path] of paths.entries()) {
      // Each image carries its index; a server that omits it lists them in order.
      const b64 = (images.find((image) => image.index === index) ?? images[index])?.b64_json;
      if (!b64) {
        const which = paths.length > 1 ? ` ${index} of ${paths.length}` : '';
        return engineFailure('BAD_OUTPUT', `the model server completed the job without image${which}`, engineSeconds);
      }
      await writeFile(path, Buffer.from(b64, 'base64'));
    }
    const outcome = await checkImages(paths, params, engineSeconds);
    return outcome.ok ? outcome : { ...outcome, detail: outcome.detail.replace('the engine', 'the model server') };
  }

  private budget(): number {
    return this.options.gpuMemoryMb > 0 ? this.options.gpuMemoryMb : Infinity;
  }

  /** A model without a size is taken to fill the GPU. */
  private sizeOf(entry: ModelEntry): number {
    return entry.memoryMb ?? (this.options.gpuMemoryMb > 0 ? this.options.gpuMemoryMb : 0);
  }

  private fits(entry: ModelEntry): boolean {
    return this.sizeOf(entry) <= this.budget();
  }

  private usedMb(): number {
    let used = 0;
    for (const server of this.servers.values()) used += server.memoryMb;
    return used;
  }

  /** Unloads idle models, least recently used first, until this one fits; waits while the others are busy. */
  private async startWithRoom(model: string, entry: ModelEntry, stop: AbortSignal): Promise<ModelServer> {
    const need = this.sizeOf(entry);
    const stopped = abortOf(stop);
    for (;;) {
      const existing = this.servers.get(model);
      if (existing) return existing;
      if (this.usedMb() + need <= this.budget()) return this.start(model, entry);
      const idle = [...this.servers.values()]
        .filter((s) => s.jobs === 0)
        .sort((a, b) => a.lastUsedAt - b.lastUsedAt)[0];
      if (idle) {
        this.options.logger?.info({ model: idle.model, for: model }, 'unloading the least recently used model');
        this.forget(idle);
        idle.kill();
        await idle.exited;
        continue;
      }
      if (stop.aborted) throw new Error('stopped');
      await Promise.race([sleep(100), stopped]);
    }
  }

  private async start(model: string, entry: ModelEntry): Promise<ModelServer> {
    const port = await freeLoopbackPort();
    // close() may have run while the port was found (a crashed server's replacement, a prewarm):
    // a server spawned now would outlive the engine, detached in its own process group.
    if (this.closed) throw new Error('the engine is closed');
    const existing = this.servers.get(model);
    if (existing) return existing;
    const args = [...entry.args, '--listen-ip', '127.0.0.1', '--listen-port', String(port)];
    const child = spawn(this.options.bin, args, {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: engineEnv(this.options.env, entry.env),
    });
    const server = new ModelServer(model, this.sizeOf(entry), `http://127.0.0.1:${port}`, child);
    this.servers.set(model, server);
    this.options.logger?.info({ model, port }, 'loading model');
    const startedAt = performance.now();
    server.ready.then(
      () => this.options.logger?.info({ model, loadMs: Math.round(performance.now() - startedAt) }, 'model loaded'),
      () => this.options.logger?.warn({ model, output: server.loadOutput.slice(-500) }, 'model server failed to load'),
    );
    void server.exited.then(() => {
      // Still in the pool: nobody stopped it on purpose (unloading, replacing and closing forget it first).
      if (this.servers.get(model) === server && server.wasReady) this.restart(server);
      else this.forget(server);
    });
    return server;
  }

  private forget(server: ModelServer): void {
    if (this.servers.get(server.model) === server) this.servers.delete(server.model);
  }

  /** A server that died, hung or ran out of memory is replaced at once, so the model stays warm. */
  private restart(server: ModelServer): void {
    this.forget(server);
    server.kill();
    if (this.closed) return;
    const entry = this.options.models[server.model]!;
    this.options.logger?.warn({ model: server.model }, 'restarting the model server');
    void server.exited
      .then(() => {
        if (this.closed || this.servers.has(server.model) || this.usedMb() + this.sizeOf(entry) > this.budget()) return;
        return this.start(server.model, entry);
      })
      .catch((error: unknown) => {
        if (!this.closed)
          this.options.logger?.error({ err: error, model: server.model }, 'could not restart the model server');
      });
  }

  /** The servers' process groups, for tests that check nothing is left behind. */
  processGroups(): number[] {
    return [...this.servers.values()].map((s) => s.pid).filter((pid): pid is number => pid !== undefined);
  }
}

/** The img_gen body: the same names as the CLI's options (sample_params nests the sampler's). */
function requestBody(params: EngineParams, count: number): Record<string, unknown> {
  return {
    prompt: params.prompt,
    negative_prompt: params.negativePrompt ?? '',
    width: params.width,
    height: params.height,
    seed: params.seed,
    batch_count: count,
    sample_params: {
      sample_method: params.sampler,
      sample_steps: params.steps,
      guidance: { txt_cfg: params.cfgScale },
    },
    output_format: 'png',
  };
}

async function pollJob(url: string): Promise<JobStatus | 'gone' | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
    if (response.status === 404 || response.status === 410) return 'gone';
    if (!response.ok) return null;
    return (await response.json()) as JobStatus;
  } catch {
    // Busy or hung: the deadline decides.
    return null;
  }
}

/** Resolves 'stopped' once the signal aborts (never, without one). */
function abortOf(signal: AbortSignal | undefined): Promise<'stopped'> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) return resolve('stopped');
    signal.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
}
