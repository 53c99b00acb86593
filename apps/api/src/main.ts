import { loadApiConfig, ConfigError } from './config.js';

let config;
try {
  config = loadApiConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

// The rest of the app is loaded only once the config is accepted: a refusal answers at once.
const [{ createAppDeps, closeAppDeps }, { buildServer }, { startBackgroundTasks }] = await Promise.all([
  import('./deps.js'),
  import('./server.js'),
  import('./background.js'),
]);
const deps = createAppDeps(config);
const app = await buildServer(deps);
const tasks = config.DISABLE_BACKGROUND ? [] : startBackgroundTasks(deps);
await app.listen({ port: config.API_PORT, host: config.API_HOST });
deps.logger.info(
  { port: config.API_PORT, google: config.googleEnabled, lemonSqueezy: config.lemonSqueezyEnabled },
  'api listening',
);

const SHUTDOWN_GRACE_MS = 5000;
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  deps.logger.info({ signal }, 'api shutting down');
  await Promise.allSettled(tasks.map((task) => task.stop()));
  // Long-polling claims and WebSockets would hold close() open; give requests a moment, then cut.
  const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  await app.close();
  clearTimeout(cut);
  await closeAppDeps(deps);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
