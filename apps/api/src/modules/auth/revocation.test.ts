import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { schema, withSystem } from '@pingvas/db';
import { WS_CLOSE } from '../../bounds.js';
import { buildServer } from '../../server.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { openLiveSocket, type LiveSocket } from '../../test/live-socket.test-support.js';
import { CSRF_HEADER } from './csrf.js';
import { SESSION_COOKIE, signSession, verifySession } from './session.js';

/**
 * Revocation reaches every channel: a signed-out session is refused over HTTP at once, and
 * an open WebSocket of it is refused on its next call and closed within the check period.
 */

const CHECK_SECONDS = 0.3;
let app: TestApp;
/** Re-checks open sockets every CHECK_SECONDS. */
let server: FastifyInstance;
/** Re-checks only per call (the timer is a minute away): shows the per-call check on its own. */
const closeServers: (() => Promise<unknown>)[] = [];

async function listen(overrides: Partial<TestApp['config']>): Promise<{ server: FastifyInstance; url: string }> {
  const instance = await buildServer({ ...app.deps, config: { ...app.config, ...overrides } });
  await instance.listen({ port: 0, host: '127.0.0.1' });
  closeServers.push(() => instance.close());
  return { server: instance, url: `ws://127.0.0.1:${(instance.server.address() as AddressInfo).port}/trpc` };
}

let url: string;
let slowUrl: string;
beforeAll(async () => {
  app = await createTestApp({ SIGNIN_RATE_LIMIT: '1000', SESSION_RECHECK_SECONDS: String(CHECK_SECONDS) });
  ({ server, url } = await listen({}));
  ({ url: slowUrl } = await listen({ SESSION_RECHECK_SECONDS: 60 }));
});
afterAll(async () => {
  for (const close of closeServers) await close();
  await app?.close();
});

async function signIn(email: string): Promise<string> {
  const res: LightMyRequestResponse = await server.inject({
    method: 'POST',
    url: '/api/v1/auth/dev-login',
    payload: { email },
  });
  return res.cookies.find((c) => c.name === SESSION_COOKIE)!.value;
}
const origin = () => new URL(app.config.PUBLIC_URL).origin;
const socketFor = (token: string, at = url) =>
  openLiveSocket(at, { cookie: `${SESSION_COOKIE}=${token}`, origin: origin() });
const httpMe = (token: string) =>
  server.inject({ method: 'GET', url: '/trpc/user.me', cookies: { [SESSION_COOKIE]: token } });
const mutate = (path: string, token: string) =>
  server.inject({
    method: 'POST',
    url: `/trpc/${path}`,
    payload: { json: null },
    cookies: { [SESSION_COOKIE]: token },
    headers: { [CSRF_HEADER]: '1' },
  });
const isOpen = (socket: LiveSocket) => socket.ws.readyState === socket.ws.OPEN;

describe('sign-out of one session', () => {
  it('refuses the old cookie over HTTP and closes its open socket (4401 revoked) within the check period', async () => {
    const token = await signIn('one@example.test');
    const sibling = await signIn('one@example.test');
    const socket = await socketFor(token);
    const siblingSocket = await socketFor(sibling);
    expect((await socket.call('query', 'user.me')).result?.data).toMatchObject({ json: { email: 'one@example.test' } });

    expect((await mutate('user.signOut', token)).statusCode).toBe(200);
    expect((await httpMe(token)).statusCode).toBe(401);
    expect(await socket.closed).toEqual(WS_CLOSE.revoked);
    // The user's other session is untouched, over HTTP and over its socket.
    expect((await httpMe(sibling)).statusCode).toBe(200);
    expect(isOpen(siblingSocket)).toBe(true);
    expect((await siblingSocket.call('query', 'user.me')).result?.type).toBe('data');
    siblingSocket.ws.close();
  });

  it('a call on the socket right after sign-out is refused and closes it, without waiting for the timer', async () => {
    const token = await signIn('per-call@example.test');
    const socket = await socketFor(token, slowUrl);
    expect((await socket.call('query', 'user.me')).result?.type).toBe('data');
    expect((await mutate('user.signOut', token)).statusCode).toBe(200);
    const refused = await socket.call('query', 'user.me');
    expect(refused.error?.json.data.code).toBe('UNAUTHORIZED');
    expect(await socket.closed).toEqual(WS_CLOSE.revoked);
  });

  it('POST /api/v1/auth/logout revokes the session the same way', async () => {
    const token = await signIn('logout@example.test');
    const socket = await socketFor(token);
    const res = await server.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      cookies: { [SESSION_COOKIE]: token },
      headers: { [CSRF_HEADER]: '1' },
    });
    expect(res.statusCode).toBe(200);
    expect((await httpMe(token)).statusCode).toBe(401);
    expect(await socket.closed).toEqual(WS_CLOSE.revoked);
    // A new upgrade with the revoked cookie never becomes a socket.
    await expect(socketFor(token)).rejects.toThrow(/401/);
  });

  it('signing out over the socket itself revokes it too', async () => {
    const token = await signIn('ws-signout@example.test');
    const socket = await socketFor(token);
    expect((await socket.call('mutation', 'user.signOut')).result?.type).toBe('data');
    expect(await socket.closed).toEqual(WS_CLOSE.revoked);
    expect((await httpMe(token)).statusCode).toBe(401);
  });
});

describe('sign-out everywhere', () => {
  it("closes every socket of every session of the user, and no one else's", async () => {
    const laptop = await signIn('everywhere@example.test');
    const phone = await signIn('everywhere@example.test');
    const bystander = await signIn('bystander@example.test');
    const sockets = await Promise.all([socketFor(laptop), socketFor(phone), socketFor(phone)]);
    const other = await socketFor(bystander);

    expect((await mutate('user.signOutEverywhere', laptop)).statusCode).toBe(200);
    for (const socket of sockets) expect(await socket.closed).toEqual(WS_CLOSE.revoked);
    expect((await httpMe(laptop)).statusCode).toBe(401);
    expect((await httpMe(phone)).statusCode).toBe(401);
    expect(isOpen(other)).toBe(true);
    expect((await other.call('query', 'user.me')).result?.type).toBe('data');
    other.ws.close();
  });
});

describe('expiry and lifetime', () => {
  it('a session that expires with its socket open closes it (4401 expired); HTTP refuses it too', async () => {
    const user = await app.createUser();
    const token = await signSession(
      app.config.SESSION_SECRET,
      { userId: user.id, sessionVersion: user.sessionVersion },
      1,
    );
    const socket = await socketFor(token);
    expect(await socket.closed).toEqual(WS_CLOSE.expired);
    expect(await verifySession(app.config.SESSION_SECRET, token)).toBeNull();
    expect((await httpMe(token)).statusCode).toBe(401);
  });

  it('a socket lives at most WS_MAX_LIFETIME_SECONDS (4000), even with a good session', async () => {
    const { url: shortLived } = await listen({ WS_MAX_LIFETIME_SECONDS: 0.5 });
    const token = await signIn('lifetime@example.test');
    const socket = await socketFor(token, shortLived);
    expect(await socket.closed).toEqual(WS_CLOSE.lifetime);
    expect((await httpMe(token)).statusCode).toBe(200);
  });
});

describe('tier-dependent limits on an open socket', () => {
  it('are read fresh on each call: an upgrade applies without reconnecting', async () => {
    const token = await signIn('tier@example.test');
    const socket = await socketFor(token, slowUrl);
    const big = { prompt: 'a lighthouse', model: 'sd15', width: 2048, height: 2048, steps: 20, cfgScale: 7 };
    const asFree = await socket.call('mutation', 'generation.create', big);
    expect(asFree.error?.json.data).toMatchObject({ code: 'FORBIDDEN', domain: { code: 'PLAN_LIMIT' } });

    const [me] = await app.database.admin`select id from users where email = 'tier@example.test'`;
    await withSystem(app.deps.db, (tx) =>
      tx
        .update(schema.users)
        .set({ tier: 'pro' })
        .where(eq(schema.users.id, me!.id as string)),
    );
    // Now within the plan; refused only for want of credits (nothing is held or created).
    const asPro = await socket.call('mutation', 'generation.create', big);
    expect(asPro.error?.json.data).toMatchObject({ code: 'PAYMENT_REQUIRED' });
    socket.ws.close();
  });
});
