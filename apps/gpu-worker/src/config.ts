import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  ConfigError,
  DEV_WORKER_TOKEN,
  isExplicitDevelopment,
  MIN_SECRET_LENGTH,
  parseEnv,
  refuseInsecureSettings,
} from '@pingvas/core';

/** The reference engine as `npm run build -w @pingvas/gpu-worker` leaves it. */
export const REFERENCE_ENGINE_BIN = fileURLToPath(new URL('../reference-engine/bin/refengine', import.meta.url));
/**
 * The reference engine's "model": a small committed file. Like sd-cli, the engine requires a
 * model flag and checks that the file exists (it never reads it).
 */
export const REFERENCE_MODEL_FILE = fileURLToPath(new URL('../reference-engine/procedural-model.txt', import.meta.url));
/** The reference engine under its sd-server name (the build links it beside the CLI). */
export const REFERENCE_SERVER_BIN = fileURLToPath(new URL('../reference-engine/bin/refengine-server', import.meta.url));

/**
 * One entry of the model registry: the engine flags that select a model's files.
 * `files` is the readable form for stable-diffusion.cpp; `args` is passed as is, after them.
 */
const modelEntrySchema = z
  .object({
    files: z
      .object({
        model: z.string().min(1),
        diffusionModel: z.string().min(1),
        vae: z.string().min(1),
        clipL: z.string().min(1),
        clipG: z.string().min(1),
        t5xxl: z.string().min(1),
      })
      .partial()
      .strict()
      .default({}),
    args: z.array(z.string()).default([]),
    /** GPU memory the model takes while loaded (weights and working buffers), for the memory budget. */
    memoryMb: z.number().int().positive().optional(),
    /** Added to the engine's environment for this model only (the reference engine's REFENGINE_LOAD_MS). */
    env: z.record(z.string(), z.string()).default({}),
  })
  .strict();

const FILE_FLAGS = {
  model: '-m',
  diffusionModel: '--diffusion-model',
  vae: '--vae',
  clipL: '--clip_l',
  clipG: '--clip_g',
  t5xxl: '--t5xxl',
} as const;

export interface ModelEntry {
  args: string[];
  /** Without a size the model is assumed to take the whole GPU: it is kept warm alone. */
  memoryMb?: number;
  env?: Record<string, string>;
}
export type ModelRegistry = Record<string, ModelEntry>;

const modelsSchema = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be JSON, e.g. {"sdxl":{"files":{"model":"/models/sdxl.safetensors"}}}',
      });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().min(1), modelEntrySchema))
  .transform((entries): ModelRegistry =>
    Object.fromEntries(
      Object.entries(entries).map(([id, entry]) => [
        id,
        {
          args: [
            ...Object.entries(entry.files).flatMap(([name, file]) => [
              FILE_FLAGS[name as keyof typeof FILE_FLAGS],
              file,
            ]),
            ...entry.args,
          ],
          ...(entry.memoryMb === undefined ? {} : { memoryMb: entry.memoryMb }),
          ...(Object.keys(entry.env).length ? { env: entry.env } : {}),
        },
      ]),
    ),
  );

/** Development and tests: every model id runs the reference engine on its stand-in model file. */
/** Sizes as on a real GPU (SDXL ≈ 7 GB, SD 1.5 ≈ 2.5 GB loaded), so the memory budget behaves as there. */
const REFERENCE_MODELS = JSON.stringify({
  sdxl: { files: { model: REFERENCE_MODEL_FILE }, memoryMb: 7000 },
  sd15: { files: { model: REFERENCE_MODEL_FILE }, memoryMb: 2500 },
});
/** The same registry in its parsed form, for tests that drive an engine directly. */
export const REFERENCE_REGISTRY: ModelRegistry = {
  sdxl: { args: ['-m', REFERENCE_MODEL_FILE], memoryMb: 7000 },
  sd15: { args: ['-m', REFERENCE_MODEL_FILE], memoryMb: 2500 },
};

/** Engine flags whose value is a file the engine loads (sd-cli's names). */
const FILE_ARGS = new Set([
  '-m',
  '--model',
  '--diffusion-model',
  '--vae',
  '--clip_l',
  '--clip_g',
  '--t5xxl',
  '--llm',
  '--llm_vision',
  '--taesd',
  '--upscale-model',
]);
const MAIN_MODEL_ARGS = new Set(['-m', '--model', '--diffusion-model']);

/**
 * Checks the registry against the disk. sd-cli refuses to run without `-m` or
 * `--diffusion-model`, but a missing `--vae`, `--clip_l`, … is only a warning to it (a bad VAE
 * silently falls back to the built-in one), so a wrong registry would pass unnoticed in
 * production: the worker checks every file when it starts. Returns one line naming what is
 * wrong, or null.
 */
export function modelRegistryProblem(registry: ModelRegistry): string | null {
  for (const [id, { args }] of Object.entries(registry)) {
    if (!args.some((arg) => MAIN_MODEL_ARGS.has(arg))) {
      const want = 'give files.model or files.diffusionModel, i.e. -m or --diffusion-model';
      return `config: ENGINE_MODELS ${id} has no model file (${want})`;
    }
    for (let i = 0; i < args.length; i++) {
      if (!FILE_ARGS.has(args[i]!)) continue;
      const file = args[i + 1];
      if (file === undefined) return `config: ENGINE_MODELS ${id} gives ${args[i]} without a file`;
      let isFile = false;
      try {
        isFile = statSync(file).isFile();
      } catch {
        // missing or unreadable: reported below
      }
      if (!isFile) return `config: ENGINE_MODELS ${id}: ${args[i]} ${file} does not exist or is not a file`;
    }
  }
  return null;
}

/** The upscale model must be a file, checked at start like the registry's; null when it is (or none is set). */
export function upscaleModelProblem(file: string | undefined): string | null {
  if (file === undefined) return null;
  try {
    if (statSync(file).isFile()) return null;
  } catch {
    // missing or unreadable: reported below
  }
  return `config: ENGINE_UPSCALE_MODEL ${file} does not exist or is not a file`;
}

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined));

const workerEnvSchema = z.object({
  /** Unset means production: the development token needs NODE_ENV=development (or test) and a loopback API_URL. */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  API_URL: z.url().default('http://127.0.0.1:3000'),
  WORKER_TOKEN: optionalString,
  ENGINE_BIN: z.string().trim().min(1).default(REFERENCE_ENGINE_BIN),
  /** cli: one engine process per job (loads the model every time); server: one sd-server per warm model. */
  ENGINE_MODE: z.enum(['cli', 'server']).default('cli'),
  /** sd-server for ENGINE_MODE=server; the reference engine's server when ENGINE_BIN is the reference engine. */
  ENGINE_SERVER_BIN: optionalString,
  /** The GPU memory the warm models may take together (server mode); 0 = unlimited. */
  WORKER_GPU_MEMORY_MB: z.coerce.number().int().min(0).default(0),
  /** Models to load at start in server mode, comma-separated (as many as fit, in order). */
  ENGINE_PREWARM: optionalString,
  /** Recorded on each image; derived from ENGINE_BIN when unset (`refengine` → `reference`). */
  ENGINE_NAME: optionalString,
  ENGINE_MODELS: optionalString,
  /** ESRGAN weights for upscale jobs (`--upscale-model`); the reference engine's stand-in without ENGINE_MODELS. */
  ENGINE_UPSCALE_MODEL: optionalString,
  /** The cap on one engine run; each job brings its own, shorter deadline from its hold. */
  ENGINE_TIMEOUT_SECONDS: z.coerce.number().positive().default(3600),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  WORKER_GRACE_SECONDS: z.coerce.number().min(0).default(30),
  WORKER_ID: optionalString,
  /** The status endpoint's port; 0 lets the system pick one (it is logged). */
  WORKER_STATUS_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  WORKER_STATUS_HOST: z.string().default('127.0.0.1'),
  /** How long one `worker.claim` may wait for a job on the API (long poll). */
  WORKER_CLAIM_WAIT_MS: z.coerce.number().int().min(0).max(20_000).default(10_000),
});

/** Outside explicit development, one line per setting that would leave a development default in force. */
function insecureSettings(e: z.infer<typeof workerEnvSchema>): string[] {
  const lines: string[] = [];
  if (!e.WORKER_TOKEN) {
    lines.push('WORKER_TOKEN is unset: the worker would present the development token from the repository');
  } else if (e.WORKER_TOKEN === DEV_WORKER_TOKEN) {
    lines.push('WORKER_TOKEN is the development value from the repository');
  } else if (e.WORKER_TOKEN.length < MIN_SECRET_LENGTH) {
    lines.push(`WORKER_TOKEN must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  if (!e.ENGINE_MODELS) {
    lines.push('ENGINE_MODELS is unset: every model would run the reference engine with no weights');
  }
  if (e.ENGINE_MODE === 'server' && !e.ENGINE_SERVER_BIN) {
    lines.push('ENGINE_SERVER_BIN is required in production with ENGINE_MODE=server');
  }
  return lines;
}

/** Every variable name the worker reads (`.env.example` must document each: a test checks). */
export const WORKER_ENV_VARIABLES = Object.keys(workerEnvSchema.shape);

export interface WorkerConfig {
  nodeEnv: 'development' | 'test' | 'production';
  logLevel: string;
  apiUrl: string;
  workerToken: string;
  engineBin: string;
  engineName: string;
  engineModels: ModelRegistry;
  /** Without one the worker refuses upscale jobs. */
  upscaleModel: string | undefined;
  engineMode: 'cli' | 'server';
  engineServerBin: string;
  gpuMemoryMb: number;
  prewarm: string[];
  engineTimeoutMs: number;
  concurrency: number;
  graceMs: number;
  workerId: string;
  statusPort: number;
  statusHost: string;
  claimWaitMs: number;
}

export { ConfigError };

function engineNameFor(bin: string): string {
  const name = basename(bin);
  return name === 'refengine' ? 'reference' : name;
}

/** Parses the environment; a bad or missing variable throws one line naming it. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = parseEnv(workerEnvSchema, env);
  if (!isExplicitDevelopment(e.NODE_ENV, e.API_URL)) refuseInsecureSettings(insecureSettings(e));
  const models = modelsSchema.safeParse(e.ENGINE_MODELS ?? REFERENCE_MODELS);
  if (!models.success) {
    const issue = models.error.issues[0]!;
    const where = issue.path.length ? ` (at ${issue.path.join('.')})` : '';
    throw new ConfigError(`config: ENGINE_MODELS ${issue.message}${where}`);
  }
  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    apiUrl: e.API_URL.replace(/\/$/, ''),
    workerToken: e.WORKER_TOKEN ?? DEV_WORKER_TOKEN,
    engineBin: e.ENGINE_BIN,
    engineName: e.ENGINE_NAME ?? engineNameFor(e.ENGINE_BIN),
    engineModels: models.data,
    upscaleModel: e.ENGINE_UPSCALE_MODEL ?? (e.ENGINE_MODELS ? undefined : REFERENCE_MODEL_FILE),
    engineMode: e.ENGINE_MODE,
    engineServerBin:
      e.ENGINE_SERVER_BIN ?? (e.ENGINE_BIN === REFERENCE_ENGINE_BIN ? REFERENCE_SERVER_BIN : `${e.ENGINE_BIN}-server`),
    gpuMemoryMb: e.WORKER_GPU_MEMORY_MB,
    prewarm: prewarmList(e.ENGINE_PREWARM, models.data),
    engineTimeoutMs: Math.round(e.ENGINE_TIMEOUT_SECONDS * 1000),
    concurrency: e.WORKER_CONCURRENCY,
    graceMs: Math.round(e.WORKER_GRACE_SECONDS * 1000),
    workerId: e.WORKER_ID ?? `${hostname()}-${process.pid}`,
    statusPort: e.WORKER_STATUS_PORT,
    statusHost: e.WORKER_STATUS_HOST,
    claimWaitMs: e.WORKER_CLAIM_WAIT_MS,
  };
}

function prewarmList(text: string | undefined, registry: ModelRegistry): string[] {
  const ids = (text ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  const unknown = ids.find((id) => !registry[id]);
  if (unknown) throw new ConfigError(`config: ENGINE_PREWARM names ${unknown}, which is not in ENGINE_MODELS`);
  return ids;
}

/** The config as it is safe to log: the token never leaves the process. */
export function describeConfig(config: WorkerConfig): Record<string, unknown> {
  const { workerToken: _token, ...rest } = config;
  return rest;
}
