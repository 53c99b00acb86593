import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnyProcedure } from '@trpc/server';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { isWorkerToken } from '../../context.js';
import { buildServer } from '../../server.js';
import { appRouter } from '../../app.router.js';
import { createCallerFactory } from '../../trpc.js';
import { workerRouter } from '../worker/worker.router.js';
import { CSRF_HEADER } from './csrf.js';
import { SESSION_COOKIE } from './session.js';
import type * as WorkerRouterModule from '../worker/worker.router.js';

// A probe on the worker router that needs nothing but the worker token, so the transport
// check on /internal/trpc is tested whatever procedures the worker module has today.
vi.mock('../worker/worker.router.js', async (importOriginal) => {
  const actual = await importOriginal<typeof WorkerRouterModule>();
  const { mergeRouters, router, workerProcedure } = await import('../../trpc.js');
  return {
    ...actual,
    workerRouter: mergeRouters(actual.workerRouter, router({ authProbe: workerProcedure.query(() => 'worker ok') })),
  };
});

/**
 * Procedures anyone may call signed out. Everything else on appRouter must answer
 * UNAUTHORIZED without a session: a procedure added later is checked by the walk below
 * and fails it unless it is protected (or deliberately listed here).
 */
const PUBLIC_PROCEDURES = new Set(['payments.plans', 'credits.estimate', 'boards.publicView']);

let app: TestApp;
let server: FastifyInstance;
let session: string;
const WORKER_TOKEN = 'worker-token-for-tests-0123456789abcdef';

beforeAll(async () => {
  app = await createTestApp({ WORKER_TOKEN, SIGNIN_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
  const login = await server.inject({
    method: 'POST',
    url: '/api/v1/auth/dev-login',
    payload: { email: 'access@example.test' },
  });
  session = login.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
});
afterAll(async () => {
  await server?.close();
  await app?.close();
});

function proceduresOf(r: { _def: { procedures: object } }): [string, AnyProcedure['_def']['type']][] {
  return Object.entries(r._def.procedures as Record<string, AnyProcedure>).map(([path, p]) => [path, p._def.type]);
}

/** Calls one procedure over HTTP the way a client would; subscriptions through a caller. */
async function call(
  prefix: '/trpc' | '/internal/trpc',
  path: string,
  type: string,
  auth: Pick<InjectOptions, 'cookies' | 'headers'>,
): Promise<string | undefined> {
  const res = await server.inject(
    type === 'query'
      ? { method: 'GET', url: `${prefix}/${path}`, ...auth }
      : {
          method: 'POST',
          url: `${prefix}/${path}`,
          payload: { json: null },
          ...auth,
          headers: { [CSRF_HEADER]: '1', ...auth.headers },
        },
  );
  const body = res.json();
  if (body.error) {
    expect(res.statusCode).toBe(body.error.json.data.httpStatus);
    return body.error.json.data.code;
  }
  return 'OK';
}

describe('every appRouter procedure needs a session', () => {
  const procedures = proceduresOf(appRouter).filter(([path]) => !PUBLIC_PROCEDURES.has(path));

  it('finds the procedures to walk (user.me among them)', () => {
    expect(procedures.map(([path]) => path)).toEqual(
      expect.arrayContaining(['user.me', 'user.signOut', 'user.signOutEverywhere']),
    );
  });

  it.each(procedures.filter(([, type]) => type !== 'subscription'))(
    '%s (%s) → UNAUTHORIZED signed out, and with the worker token as Bearer',
    async (path, type) => {
      expect(await call('/trpc', path, type, {})).toBe('UNAUTHORIZED');
      expect(await call('/trpc', path, type, { headers: { authorization: `Bearer ${WORKER_TOKEN}` } })).toBe(
        'UNAUTHORIZED',
      );
    },
  );

  it('subscriptions too', async () => {
    const caller = createCallerFactory(appRouter)({ deps: app.deps, user: null, isWorker: false });
    for (const [path] of procedures.filter(([, type]) => type === 'subscription')) {
      const fn = path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], caller) as (
        input: unknown,
      ) => Promise<unknown>;
      await expect(fn(undefined), path).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });
});

describe('worker token on /internal/trpc', () => {
  /** Everything that is not the worker token, built per test: the session exists only after beforeAll. */
  const notTheToken: Record<string, () => Pick<InjectOptions, 'cookies' | 'headers'>> = {
    'no token': () => ({}),
    'a user session as cookie': () => ({ cookies: { [SESSION_COOKIE]: session } }),
    'a user session as Bearer': () => ({ headers: { authorization: `Bearer ${session}` } }),
    'a wrong token of the same length': () => ({
      headers: { authorization: `Bearer ${'x'.repeat(WORKER_TOKEN.length)}` },
    }),
    'a short prefix of the token': () => ({ headers: { authorization: `Bearer ${WORKER_TOKEN.slice(0, -1)}` } }),
    'the token with more after it': () => ({ headers: { authorization: `Bearer ${WORKER_TOKEN}0` } }),
    'the token in a cookie': () => ({ cookies: { [SESSION_COOKIE]: WORKER_TOKEN } }),
  };

  it('isWorkerToken compares exactly, refusing missing, wrong, short and long tokens', () => {
    expect(isWorkerToken(WORKER_TOKEN, WORKER_TOKEN)).toBe(true);
    expect(isWorkerToken(undefined, WORKER_TOKEN)).toBe(false);
    expect(isWorkerToken('', WORKER_TOKEN)).toBe(false);
    expect(isWorkerToken('x'.repeat(WORKER_TOKEN.length), WORKER_TOKEN)).toBe(false);
    expect(isWorkerToken(WORKER_TOKEN.slice(0, -1), WORKER_TOKEN)).toBe(false);
    expect(isWorkerToken(`${WORKER_TOKEN}0`, WORKER_TOKEN)).toBe(false);
    expect(isWorkerToken(WORKER_TOKEN.toUpperCase(), WORKER_TOKEN)).toBe(false);
    // Same length in characters, not in bytes: must be refused, not throw inside timingSafeEqual.
    expect(isWorkerToken('é'.repeat(WORKER_TOKEN.length), WORKER_TOKEN)).toBe(false);
  });

  it('lets the right token through', async () => {
    expect(
      await call('/internal/trpc', 'authProbe', 'query', { headers: { authorization: `Bearer ${WORKER_TOKEN}` } }),
    ).toBe('OK');
  });

  for (const [name, auth] of Object.entries(notTheToken)) {
    it(`refuses ${name} on every worker procedure`, async () => {
      const procedures = proceduresOf(workerRouter).filter(([, type]) => type !== 'subscription');
      expect(procedures.length).toBeGreaterThan(0);
      for (const [path, type] of procedures) {
        expect(await call('/internal/trpc', path, type, auth()), path).toBe('UNAUTHORIZED');
      }
    });
  }

  it('the right token still gets no user: user procedures on /trpc stay UNAUTHORIZED', async () => {
    expect(await call('/trpc', 'user.me', 'query', { headers: { authorization: `Bearer ${WORKER_TOKEN}` } })).toBe(
      'UNAUTHORIZED',
    );
    expect(await call('/trpc', 'user.me', 'query', { cookies: { [SESSION_COOKIE]: session } })).toBe('OK');
  });
});
