import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { migrateDatabase, databaseUrlsFromEnv } from '@pingvas/db';
import { freePort, startEmbeddedS3, type EmbeddedS3 } from '@pingvas/local-services';
import { ensurePostgres, ensureRedis, type StartedService } from './studio/services.js';
import { startProcess, waitForHttp, type ManagedProcess } from './studio/processes.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface StudioOptions {
  /** Where local data lives (S3 objects, mail, a local database cluster): `.data/` for `npm start`. */
  dataDir: string;
  /** Extra environment for every process (overrides process.env). */
  env?: Record<string, string>;
  /** Pick free ports instead of API_PORT / WEB_PORT / S3_PORT (tests). */
  randomPorts?: boolean;
  /** Skip the web and engine builds (already built). */
  skipBuild?: boolean;
  log?: (line: string) => void;
}

export interface Studio {
  webUrl: string;
  apiUrl: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Brings up the whole studio: PostgreSQL and Redis (found or started), migrations, the
 * embedded S3 server, the API, one GPU worker on the reference engine, and the web.
 * `npm start` and the end-to-end tests both start it through here.
 */
export async function startStudio(options: StudioOptions): Promise<Studio> {
  const log = options.log ?? ((line: string) => console.log(line));
  const base = { ...process.env, ...options.env } as Record<string, string>;
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const started: StartedService[] = [];
  const processes: ManagedProcess[] = [];
  let s3: EmbeddedS3 | undefined;

  async function stop(): Promise<void> {
    for (const p of [...processes].reverse()) await p.stop();
    await s3?.close();
    for (const service of started.reverse()) await service.stop().catch(() => {});
  }

  try {
    const { adminUrl, runtimeUrl } = databaseUrlsFromEnv(base);
    const redisUrl = base.REDIS_URL || 'redis://127.0.0.1:6379';
    const pg = await ensurePostgres(adminUrl, dataDir, log);
    if (pg) started.push(pg);
    const redis = await ensureRedis(redisUrl, dataDir, log);
    if (redis) started.push(redis);
    await migrateDatabase({ adminUrl, runtimeUrl, log: (line) => log(`[db] ${line}`) });

    const apiPort = options.randomPorts ? await freePort() : Number(base.API_PORT || 3000);
    const webPort = options.randomPorts ? await freePort() : Number(base.WEB_PORT || 5173);
    const s3Port = options.randomPorts ? 0 : Number(base.S3_PORT || 9000);
    const embedS3 = !base.S3_ENDPOINT;
    if (embedS3) {
      s3 = await startEmbeddedS3({
        directory: resolve(dataDir, 's3'),
        port: s3Port,
        bucket: base.S3_BUCKET || 'pingvas',
      });
      log(`[s3] embedded S3-compatible server at ${s3.endpoint} (data in ${resolve(dataDir, 's3')})`);
    }
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const webUrl = base.PUBLIC_URL || `http://localhost:${webPort}`;
    const env: Record<string, string> = {
      ...base,
      DATABASE_URL: runtimeUrl,
      DATABASE_ADMIN_URL: adminUrl,
      REDIS_URL: redisUrl,
      API_PORT: String(apiPort),
      WEB_PORT: String(webPort),
      PUBLIC_URL: webUrl,
      API_URL: apiUrl,
      MAIL_DIR: base.MAIL_DIR || resolve(dataDir, 'mail'),
      // Several studios on one machine (parallel e2e files) must not race for the worker's status port.
      ...(options.randomPorts ? { WORKER_STATUS_PORT: '0' } : {}),
      ...(s3
        ? {
            S3_ENDPOINT: s3.endpoint,
            S3_BUCKET: s3.bucket,
            S3_ACCESS_KEY_ID: s3.accessKeyId,
            S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
          }
        : {}),
    };

    if (!options.skipBuild) {
      log('[build] reference engine and web');
      execFileSync('npm', ['run', 'build', '-w', '@pingvas/gpu-worker', '-w', '@pingvas/web'], {
        cwd: ROOT,
        stdio: 'inherit',
        env,
      });
    }

    const tsx = ['--import', 'tsx'];
    // The API and the worker run on development defaults only when told so by name (an unset
    // NODE_ENV is production, and refuses them); this launcher serves loopback only.
    const services = { ...env, NODE_ENV: env.NODE_ENV || 'development' };
    const apiDir = resolve(ROOT, 'apps/api');
    const api = startProcess('api', process.execPath, [...tsx, 'src/main.ts'], { cwd: apiDir, env: services, log });
    processes.push(api);
    await waitForHttp(`${apiUrl}/readyz`, 60_000, api);
    const workerDir = resolve(ROOT, 'apps/gpu-worker');
    processes.push(
      startProcess('worker', process.execPath, [...tsx, 'src/main.ts'], { cwd: workerDir, env: services, log }),
    );
    const web = startProcess(
      'web',
      process.execPath,
      [
        resolve(ROOT, 'node_modules/vite/bin/vite.js'),
        'preview',
        '--port',
        String(webPort),
        '--strictPort',
        '--host',
        '127.0.0.1',
      ],
      {
        cwd: resolve(ROOT, 'apps/web'),
        env,
        log,
      },
    );
    processes.push(web);
    await waitForHttp(`http://127.0.0.1:${webPort}/`, 60_000, web);
    return { webUrl, apiUrl, env, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
