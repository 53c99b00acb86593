import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { DEFAULT_TEST_DATABASE_SERVER_URL } from '@pingvas/db/urls';
import { DEFAULT_TEST_REDIS_URL } from '@pingvas/testkit/redis';
import { postgresAnswers, redisAnswers } from '../studio/services.js';
import type { MachineFacts, ServiceFacts, Step } from './plan.js';

/**
 * The machine side of the test prerequisites: reading the facts plan.ts decides on, and
 * carrying out its steps. The service defaults are the tests' own (imported from packages/db
 * and packages/testkit); Chromium's and the compiler's are those of the e2e journeys and the
 * engine build.
 */

const DEFAULT_CHROMIUM = '/usr/bin/chromium';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && isExecutable(join(dir, command)));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The same search as the reference engine's build: $CC alone when set, else cc, gcc, clang. */
function compilerRuns(fromEnv: string | null): boolean {
  return (fromEnv ? [fromEnv] : ['cc', 'gcc', 'clang']).some((cc) => {
    const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    return !probe.error && probe.status === 0;
  });
}

function postgresClusters(): string[] {
  return existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql').sort() : [];
}

function serviceFacts(
  url: string,
  variable: string,
  defaultPort: number,
  answers: boolean,
  installed: boolean,
): ServiceFacts {
  const parsed = new URL(url);
  return {
    address: `${parsed.hostname}:${parsed.port || defaultPort}`,
    port: Number(parsed.port || defaultPort),
    variable,
    local: LOOPBACK.has(parsed.hostname),
    answers,
    installed,
  };
}

export async function readMachine(): Promise<MachineFacts> {
  const env = process.env;
  const chromiumPath = env.CHROMIUM_PATH || DEFAULT_CHROMIUM;
  const compiler = env.CC || null;
  const postgresUrl = env.TEST_DATABASE_SERVER_URL || DEFAULT_TEST_DATABASE_SERVER_URL;
  const redisUrl = env.TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
  const [postgresUp, redisUp] = await Promise.all([postgresAnswers(postgresUrl), redisAnswers(redisUrl)]);
  return {
    root: process.getuid?.() === 0,
    debian: existsSync('/etc/debian_version') && onPath('apt-get'),
    chromium: { path: chromiumPath, overridden: Boolean(env.CHROMIUM_PATH), present: isExecutable(chromiumPath) },
    compiler: { fromEnv: compiler, found: compilerRuns(compiler) },
    postgres: serviceFacts(
      postgresUrl,
      'TEST_DATABASE_SERVER_URL',
      5432,
      postgresUp,
      onPath('pg_ctlcluster') && postgresClusters().length > 0,
    ),
    redis: serviceFacts(redisUrl, 'TEST_REDIS_URL', 6379, redisUp, onPath('redis-server')),
  };
}

export class StepFailed extends Error {}

/** Runs a command quietly; on failure, the error carries the last lines it printed. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  const result = spawnSync(command, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error || result.status !== 0) {
    const said = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new StepFailed(`${command} ${args.join(' ')} failed${said ? `: ${said}` : ''}`);
  }
}

async function waitUntil(answers: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await answers()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new StepFailed(`${what} was started but does not answer`);
}

let aptUpdated = false;

export async function carryOut(step: Step, log: (line: string) => void): Promise<void> {
  switch (step.kind) {
    case 'install': {
      log(`installing ${step.packages.join(' ')} (apt-get)`);
      if (!aptUpdated) run('apt-get', ['update', '-qq']);
      aptUpdated = true;
      run('apt-get', ['install', '-y', '-qq', ...step.packages], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
      return;
    }
    case 'start-postgres': {
      const version = postgresClusters()[0];
      if (!version) throw new StepFailed('PostgreSQL is installed but has no cluster under /etc/postgresql');
      log(`starting PostgreSQL ${version}`);
      run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
      await waitUntil(
        () => postgresAnswers(process.env.TEST_DATABASE_SERVER_URL || DEFAULT_TEST_DATABASE_SERVER_URL),
        'PostgreSQL',
      );
      return;
    }
    case 'start-redis': {
      log(`starting Redis on 127.0.0.1:${step.port}`);
      run('redis-server', [
        '--daemonize',
        'yes',
        '--bind',
        '127.0.0.1',
        '--port',
        String(step.port),
        '--save',
        '',
        '--appendonly',
        'no',
      ]);
      await waitUntil(() => redisAnswers(process.env.TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL), 'Redis');
      return;
    }
  }
}
