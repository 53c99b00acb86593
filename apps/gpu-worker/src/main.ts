import pino from 'pino';
import { createWorkerApi } from './api-client.js';
import {
  ConfigError,
  describeConfig,
  loadWorkerConfig,
  modelRegistryProblem,
  upscaleModelProblem,
  REFERENCE_ENGINE_BIN,
  type WorkerConfig,
} from './config.js';
import { CliEngine } from './engines/cli-engine.js';
import type { Engine } from './engines/engine.js';
import { ServerEngine } from './engines/server-engine.js';
import { startStatusServer } from './status-server.js';
import { Worker } from './worker.js';

/** A bad setting stops the worker with one line naming it. */
function exitWith(line: string): never {
  console.error(line);
  process.exit(1);
}

function loadConfig(): WorkerConfig {
  try {
    return loadWorkerConfig();
  } catch (error) {
    if (error instanceof ConfigError) exitWith(error.message);
    throw error;
  }
}

const config = loadConfig();
// Every registry file must exist now: sd-cli itself only warns about a missing VAE or text encoder.
const registryProblem = modelRegistryProblem(config.engineModels) ?? upscaleModelProblem(config.upscaleModel);
if (registryProblem) exitWith(registryProblem);

const logger = pino({ level: config.logLevel, base: { service: 'gpu-worker', workerId: config.workerId } });

// The engine groups die with the process (process-groups.ts); this only makes the crash visible.
const crash = (error: unknown) => {
  logger.fatal({ err: error }, 'worker crashed');
  process.exit(1);
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

const cliEngine = new CliEngine({
  bin: config.engineBin,
  name: config.engineName,
  models: config.engineModels,
  ...(config.upscaleModel ? { upscaleModel: config.upscaleModel } : {}),
});
const serverEngine =
  config.engineMode === 'server'
    ? new ServerEngine({
        bin: config.engineServerBin,
        name: config.engineName,
        models: config.engineModels,
        gpuMemoryMb: config.gpuMemoryMb,
        fallback: cliEngine,
        logger,
      })
    : null;
const engine: Engine = serverEngine ?? cliEngine;
const engineBin = serverEngine ? config.engineServerBin : config.engineBin;
let engineVersion: string;
try {
  engineVersion = await engine.version();
} catch (error) {
  const variable = serverEngine ? 'ENGINE_SERVER_BIN' : 'ENGINE_BIN';
  const hint =
    config.engineBin === REFERENCE_ENGINE_BIN ? '; build it with `npm run build -w @pingvas/gpu-worker`' : '';
  exitWith(`config: ${variable} ${engineBin} cannot run (${(error as Error).message.split('\n')[0]})${hint}`);
}
// Loading happens in the background: the worker claims meanwhile, and says which models are warm.
if (serverEngine && config.prewarm.length) void serverEngine.prewarm(config.prewarm);

const worker = new Worker({
  api: createWorkerApi(config),
  engine,
  engineVersion,
  workerId: config.workerId,
  concurrency: config.concurrency,
  engineTimeoutMs: config.engineTimeoutMs,
  claimWaitMs: config.claimWaitMs,
  logger,
});
let status: Awaited<ReturnType<typeof startStatusServer>>;
try {
  status = await startStatusServer({ port: config.statusPort, host: config.statusHost, status: () => worker.status() });
} catch (error) {
  exitWith(
    `config: WORKER_STATUS_PORT ${config.statusPort} cannot be used (${(error as Error).message}); pick another, or 0 for any free port`,
  );
}
logger.info({ config: describeConfig(config), engineVersion, statusPort: status.port }, 'worker started');
worker.start();

let signals = 0;
async function shutdown(signal: string): Promise<void> {
  signals++;
  // A second signal means "now": the running jobs are handed back at once.
  const grace = signals === 1 ? config.graceMs : 0;
  logger.info({ signal, graceMs: grace }, 'worker stopping');
  if (signals > 1) return void worker.stop(0);
  await worker.stop(grace);
  await engine.close();
  status.server.close();
  logger.info('worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
