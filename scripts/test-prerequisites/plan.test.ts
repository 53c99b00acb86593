import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeMissing, planPrerequisites, type MachineFacts, type ServiceFacts } from './plan.js';

function service(address: string, variable: string, overrides: Partial<ServiceFacts> = {}): ServiceFacts {
  const port = Number(address.split(':')[1]);
  return { address, port, variable, local: true, answers: true, installed: true, ...overrides };
}

/** A machine with everything the tests need, root on Debian unless a case says otherwise. */
function machine(
  overrides: {
    root?: boolean;
    debian?: boolean;
    chromium?: Partial<MachineFacts['chromium']>;
    compiler?: Partial<MachineFacts['compiler']>;
    postgres?: Partial<ServiceFacts>;
    redis?: Partial<ServiceFacts>;
  } = {},
): MachineFacts {
  return {
    root: overrides.root ?? true,
    debian: overrides.debian ?? true,
    chromium: { path: '/usr/bin/chromium', overridden: false, present: true, ...overrides.chromium },
    compiler: { fromEnv: null, found: true, ...overrides.compiler },
    postgres: service('127.0.0.1:5432', 'TEST_DATABASE_SERVER_URL', overrides.postgres),
    redis: service('127.0.0.1:6379', 'TEST_REDIS_URL', overrides.redis),
  };
}

const bareDebian = {
  chromium: { present: false },
  compiler: { found: false },
  postgres: { answers: false, installed: false },
  redis: { answers: false, installed: false },
};

describe('root on Debian', () => {
  it('does nothing when everything is there', () => {
    expect(planPrerequisites(machine())).toEqual({ kind: 'ready' });
  });

  it('installs Chromium when only Chromium is missing', () => {
    expect(planPrerequisites(machine({ chromium: { present: false } }))).toEqual({
      kind: 'provision',
      steps: [{ kind: 'install', packages: ['chromium'] }],
    });
  });

  it('installs everything in one apt-get call, then starts both servers, on a bare machine', () => {
    expect(planPrerequisites(machine({ ...bareDebian, redis: { ...bareDebian.redis, port: 6390 } }))).toEqual({
      kind: 'provision',
      steps: [
        { kind: 'install', packages: ['chromium', 'gcc', 'libc6-dev', 'postgresql', 'redis-server'] },
        { kind: 'start-postgres' },
        { kind: 'start-redis', port: 6390 },
      ],
    });
  });

  it('only starts an installed server that is stopped', () => {
    expect(planPrerequisites(machine({ postgres: { answers: false } }))).toEqual({
      kind: 'provision',
      steps: [{ kind: 'start-postgres' }],
    });
  });

  it('installs nothing when an override points at something packages cannot provide', () => {
    const plan = planPrerequisites(
      machine({ chromium: { path: '/opt/chrome', overridden: true, present: false }, compiler: { found: false } }),
    );
    expect(plan).toEqual({
      kind: 'stop',
      line:
        'npm test cannot start: no Chromium at /opt/chrome (CHROMIUM_PATH); no C compiler (cc, gcc or clang)' +
        ' — run: apt-get install -y gcc libc6-dev; point CHROMIUM_PATH at an installed Chromium.',
    });
  });

  it('does not try to start a server on another machine', () => {
    const remote = { address: 'cache.internal:6379', local: false, answers: false };
    const plan = planPrerequisites(machine({ redis: remote }));
    expect(plan).toEqual({
      kind: 'stop',
      line:
        'npm test cannot start: Redis does not answer at cache.internal:6379' +
        ' — start Redis there or point TEST_REDIS_URL at a running one.',
    });
  });
});

describe('anyone else', () => {
  it('a non-root user on Debian gets the exact sudo command', () => {
    expect(planPrerequisites(machine({ root: false, chromium: { present: false } }))).toEqual({
      kind: 'stop',
      line:
        'npm test cannot start: no Chromium at /usr/bin/chromium' +
        ' — run: sudo apt-get install -y chromium (npm test run as root does this itself).',
    });
  });

  it('a non-root user on a bare Debian gets one command for everything', () => {
    expect(planPrerequisites(machine({ root: false, ...bareDebian }))).toEqual({
      kind: 'stop',
      line:
        'npm test cannot start: no Chromium at /usr/bin/chromium; no C compiler (cc, gcc or clang);' +
        ' PostgreSQL does not answer at 127.0.0.1:5432; Redis does not answer at 127.0.0.1:6379' +
        ' — run: sudo apt-get install -y chromium gcc libc6-dev postgresql redis-server' +
        " && sudo service postgresql start && redis-server --daemonize yes --port 6379 --save ''" +
        ' (npm test run as root does this itself).',
    });
  });

  it('root elsewhere than Debian is told what to install, not an apt-get command', () => {
    expect(
      planPrerequisites(machine({ debian: false, chromium: { present: false }, redis: { answers: false } })),
    ).toEqual({
      kind: 'stop',
      line:
        'npm test cannot start: no Chromium at /usr/bin/chromium; Redis does not answer at 127.0.0.1:6379' +
        ' — install Chromium and point CHROMIUM_PATH at it; start Redis.',
    });
  });
});

describe('for any machine', () => {
  const facts = fc.record({
    root: fc.boolean(),
    debian: fc.boolean(),
    chromium: fc.record({
      path: fc.constantFrom('/usr/bin/chromium', '/opt/chrome'),
      overridden: fc.boolean(),
      present: fc.boolean(),
    }),
    compiler: fc.record({ fromEnv: fc.constantFrom(null, 'clang-19'), found: fc.boolean() }),
    postgres: fc
      .record({ local: fc.boolean(), answers: fc.boolean(), installed: fc.boolean() })
      .map((s) => service('127.0.0.1:5432', 'TEST_DATABASE_SERVER_URL', s)),
    redis: fc
      .record({ local: fc.boolean(), answers: fc.boolean(), installed: fc.boolean() })
      .map((s) => service('127.0.0.1:6379', 'TEST_REDIS_URL', s)),
  });

  it('is ready exactly when nothing is missing, provisions only as root on Debian, and stops with one line', () => {
    fc.assert(
      fc.property(facts, (machineFacts) => {
        const plan = planPrerequisites(machineFacts);
        const { chromium, compiler, postgres, redis } = machineFacts;
        const missing = {
          Chromium: !chromium.present,
          'C compiler': !compiler.found,
          PostgreSQL: !postgres.answers,
          Redis: !redis.answers,
        };
        expect(plan.kind === 'ready').toBe(!Object.values(missing).some(Boolean));
        if (plan.kind === 'provision') expect(machineFacts.root && machineFacts.debian).toBe(true);
        const line = describeMissing(machineFacts);
        if (plan.kind === 'stop') expect(line).toBe(plan.line);
        if (line === null) return;
        expect(line).not.toContain('\n');
        for (const [name, isMissing] of Object.entries(missing)) expect(line.includes(name)).toBe(isMissing);
      }),
    );
  });
});
