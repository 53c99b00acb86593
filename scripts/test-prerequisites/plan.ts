/**
 * What `npm test` needs from the machine, and what to do when some of it is missing.
 * Pure: the facts come from machine.ts, which also carries the plan out.
 *
 * As root on Debian (or a derivative) the missing pieces are installed from the
 * distribution's packages and the local services started; anywhere else, or when an
 * override points at something absent, the run stops with one line saying what to do.
 */

export interface ServiceFacts {
  /** host:port the tests connect to. */
  address: string;
  port: number;
  /** The environment variable that sets where it is. */
  variable: string;
  /** On this machine (loopback), so starting a local server can make it answer. */
  local: boolean;
  answers: boolean;
  /** The server binaries (and, for PostgreSQL, a cluster) are installed here. */
  installed: boolean;
}

export interface MachineFacts {
  root: boolean;
  /** apt-get is on PATH and /etc/debian_version exists. */
  debian: boolean;
  /** `overridden`: CHROMIUM_PATH chose the path. */
  chromium: { path: string; overridden: boolean; present: boolean };
  /** `fromEnv`: the value of CC, when set (then only it is tried). */
  compiler: { fromEnv: string | null; found: boolean };
  postgres: ServiceFacts;
  redis: ServiceFacts;
}

export type Step =
  { kind: 'install'; packages: string[] } | { kind: 'start-postgres' } | { kind: 'start-redis'; port: number };

export type Plan = { kind: 'ready' } | { kind: 'provision'; steps: Step[] } | { kind: 'stop'; line: string };

interface Need {
  problem: string;
  /** Debian packages that provide it; empty when it is installed and only needs starting. */
  packages: string[];
  start: Step | null;
  /** A shell command that starts it once installed, for the instruction line. */
  startCommand: string | null;
  /** Elsewhere than Debian: what to install or do, in words (an imperative). */
  elsewhere: string;
  /** Set when packages cannot help (an override points at something absent): what to do instead. */
  fixOverride: string | null;
}

function needs(facts: MachineFacts): Need[] {
  const found: Need[] = [];
  const { chromium, compiler, postgres, redis } = facts;
  const sudo = facts.root ? '' : 'sudo ';
  if (!chromium.present) {
    found.push({
      problem: `no Chromium at ${chromium.path}${chromium.overridden ? ' (CHROMIUM_PATH)' : ''}`,
      packages: ['chromium'],
      start: null,
      startCommand: null,
      elsewhere: 'install Chromium and point CHROMIUM_PATH at it',
      fixOverride: chromium.overridden ? 'point CHROMIUM_PATH at an installed Chromium' : null,
    });
  }
  if (!compiler.found) {
    found.push({
      problem: compiler.fromEnv
        ? `the C compiler CC=${compiler.fromEnv} does not run`
        : 'no C compiler (cc, gcc or clang)',
      packages: ['gcc', 'libc6-dev'],
      start: null,
      startCommand: null,
      elsewhere: 'install a C compiler (gcc or clang)',
      fixOverride: compiler.fromEnv ? 'point CC at a working compiler' : null,
    });
  }
  if (!postgres.answers) {
    found.push({
      problem: `PostgreSQL does not answer at ${postgres.address}`,
      packages: postgres.installed ? [] : ['postgresql'],
      start: { kind: 'start-postgres' },
      startCommand: `${sudo}service postgresql start`,
      elsewhere: postgres.installed ? 'start PostgreSQL' : 'install and start PostgreSQL ≥ 15',
      fixOverride: postgres.local ? null : `start PostgreSQL there or point ${postgres.variable} at a running one`,
    });
  }
  if (!redis.answers) {
    found.push({
      problem: `Redis does not answer at ${redis.address}`,
      packages: redis.installed ? [] : ['redis-server'],
      start: { kind: 'start-redis', port: redis.port },
      startCommand: `redis-server --daemonize yes --port ${redis.port} --save ''`,
      elsewhere: redis.installed ? 'start Redis' : 'install and start Redis ≥ 7',
      fixOverride: redis.local ? null : `start Redis there or point ${redis.variable} at a running one`,
    });
  }
  return found;
}

export function planPrerequisites(facts: MachineFacts): Plan {
  const missing = needs(facts);
  if (!missing.length) return { kind: 'ready' };
  const fixable = missing.every((need) => need.fixOverride === null);
  if (facts.root && facts.debian && fixable) {
    const packages = missing.flatMap((need) => need.packages);
    const steps: Step[] = packages.length ? [{ kind: 'install', packages }] : [];
    for (const need of missing) if (need.start) steps.push(need.start);
    return { kind: 'provision', steps };
  }
  return { kind: 'stop', line: instructionLine(facts, missing) };
}

/** The instruction line for whatever is still missing, or null when nothing is. */
export function describeMissing(facts: MachineFacts): string | null {
  const missing = needs(facts);
  return missing.length ? instructionLine(facts, missing) : null;
}

/** One line: what is missing, then exactly what to run or change. */
function instructionLine(facts: MachineFacts, missing: Need[]): string {
  const problems = missing.map((need) => need.problem).join('; ');
  const overrides = missing.flatMap((need) => (need.fixOverride ? [need.fixOverride] : []));
  const byPackages = missing.filter((need) => need.fixOverride === null);
  const remedies: string[] = [];
  if (byPackages.length && facts.debian) {
    const sudo = facts.root ? '' : 'sudo ';
    const packages = byPackages.flatMap((need) => need.packages);
    const commands = [
      ...(packages.length ? [`${sudo}apt-get install -y ${packages.join(' ')}`] : []),
      ...byPackages.flatMap((need) => (need.startCommand ? [need.startCommand] : [])),
    ];
    const itself = facts.root ? '' : ' (npm test run as root does this itself)';
    remedies.push(`run: ${commands.join(' && ')}${itself}`);
  } else {
    remedies.push(...byPackages.map((need) => need.elsewhere));
  }
  remedies.push(...overrides);
  return `npm test cannot start: ${problems} — ${remedies.join('; ')}.`;
}
