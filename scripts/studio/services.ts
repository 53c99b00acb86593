import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, chownSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { Redis } from 'ioredis';

/**
 * Finding (or, failing that, starting) the PostgreSQL and Redis the studio needs.
 * A server that answers at the configured URL wins; else one is started from installed
 * binaries with its data under .data/; else we say exactly how to install one.
 */

export interface StartedService {
  url: string;
  stop(): Promise<void>;
}

export class MissingServiceError extends Error {}

/** Whether the PostgreSQL server at this URL accepts a connection (its `postgres` database). */
export async function postgresAnswers(adminUrl: string): Promise<boolean> {
  const url = new URL(adminUrl);
  url.pathname = '/postgres';
  const sql = postgres(url.toString(), { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

function findPostgresBin(name: string): string | null {
  const candidates = [
    ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, name)),
    ...(existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql')
          .sort()
          .reverse()
          .map((v) => `/usr/lib/postgresql/${v}/bin/${name}`)
      : []),
  ];
  return candidates.find((path) => existsSync(path)) ?? null;
}

/** initdb and postgres refuse to run as root: run them as the `postgres` system user then. */
function asServiceUser(command: string, args: string[]): [string, string[]] {
  if (userInfo().uid !== 0) return [command, args];
  return ['runuser', ['-u', 'postgres', '--', command, ...args]];
}

export async function ensurePostgres(
  adminUrl: string,
  dataDir: string,
  log: (line: string) => void,
): Promise<StartedService | null> {
  if (await postgresAnswers(adminUrl)) {
    log(`PostgreSQL answers at ${new URL(adminUrl).host}`);
    return null;
  }
  const initdb = findPostgresBin('initdb');
  const pgCtl = findPostgresBin('pg_ctl');
  if (!initdb || !pgCtl) {
    throw new MissingServiceError(
      `PostgreSQL does not answer at ${new URL(adminUrl).host} and is not installed.\n` +
        '  Install it:  apt-get install -y postgresql   (Debian/Ubuntu)   or   brew install postgresql@16   (macOS)\n' +
        '  or point DATABASE_ADMIN_URL / DATABASE_URL at a running server.',
    );
  }
  const dir = resolve(dataDir, 'postgres');
  const port = new URL(adminUrl).port || '5432';
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    mkdirSync(dir, { recursive: true });
    if (userInfo().uid === 0)
      chownSync(
        dir,
        Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
        Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
      );
    log(`initialising a local PostgreSQL cluster in ${dir}`);
    const [cmd, args] = asServiceUser(initdb, ['-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    execFileSync(cmd, args, { stdio: 'ignore' });
  }
  const [cmd, args] = asServiceUser(pgCtl, [
    '-D',
    dir,
    '-o',
    `-p ${port} -k /tmp -c listen_addresses=127.0.0.1`,
    '-l',
    join(dir, 'server.log'),
    '-w',
    'start',
  ]);
  execFileSync(cmd, args, { stdio: 'ignore' });
  log(`started a local PostgreSQL on 127.0.0.1:${port} (data in ${dir})`);
  return {
    url: adminUrl,
    async stop() {
      const [stopCmd, stopArgs] = asServiceUser(pgCtl, ['-D', dir, '-m', 'fast', 'stop']);
      execFileSync(stopCmd, stopArgs, { stdio: 'ignore' });
    },
  };
}

/** Whether the Redis at this URL answers PING. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function ensureRedis(
  url: string,
  dataDir: string,
  log: (line: string) => void,
): Promise<StartedService | null> {
  if (await redisAnswers(url)) {
    log(`Redis answers at ${new URL(url).host}`);
    return null;
  }
  const binary = (process.env.PATH ?? '')
    .split(':')
    .map((dir) => join(dir, 'redis-server'))
    .find((p) => existsSync(p));
  if (!binary) {
    throw new MissingServiceError(
      `Redis does not answer at ${new URL(url).host} and redis-server is not installed.\n` +
        '  Install it:  apt-get install -y redis-server   (Debian/Ubuntu)   or   brew install redis   (macOS)\n' +
        '  or point REDIS_URL at a running server.',
    );
  }
  const dir = resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const port = new URL(url).port || '6379';
  const child: ChildProcess = spawn(
    binary,
    ['--port', port, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50 && !(await redisAnswers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  log(`started a local Redis on 127.0.0.1:${port}`);
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
    },
  };
}
