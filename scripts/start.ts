import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MissingServiceError } from './studio/services.js';
import { ROOT, startStudio } from './studio.js';

// `npm start`: the whole studio on this machine, Ctrl+C stops everything it started.
if (existsSync(resolve(ROOT, '.env'))) process.loadEnvFile(resolve(ROOT, '.env'));

try {
  const studio = await startStudio({ dataDir: resolve(ROOT, '.data') });
  console.log(
    `\n  Pingvas Studio is running: open ${studio.webUrl}\n  (API ${studio.apiUrl}; reference engine — no model; Ctrl+C stops everything)\n`,
  );
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping…');
    await studio.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
} catch (error) {
  console.error(
    error instanceof MissingServiceError ? error.message : `could not start the studio: ${(error as Error).message}`,
  );
  process.exit(1);
}
