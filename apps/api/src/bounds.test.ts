import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TRPC_MAX_BATCH_SIZE,
  WS_CLOSE,
  WS_MAX_MESSAGES_PER_FRAME,
  WS_MAX_PAYLOAD_BYTES,
  type HttpTimeouts,
} from './bounds.js';
import type { SessionUser } from './context.js';
import { CSRF_HEADER } from './modules/auth/csrf.js';
import { SESSION_COOKIE, signSession } from './modules/auth/session.js';
import { fundedUser, smallParams } from './test/factories.js';
import { settleAll } from './modules/generation/generation.test-support.js';
import { buildServer } from './server.js';
import { createTestApp, type TestApp } from './test/harness.js';
import { expectLedgerInvariants } from './test/invariants.js';
import { openLiveSocket } from './test/live-socket.test-support.js';

/** Bounded work per request and per connection: each limit refuses before the work is done. */

let app: TestApp;
let server: FastifyInstance;
let port: number;
const servers: FastifyInstance[] = [];

async function listen(
  overrides: Partial<TestApp['config']> = {},
  timeouts?: HttpTimeouts,
): Promise<{ server: FastifyInstance; url: string }> {
  const instance = await buildServer({ ...app.deps, config: { ...app.config, ...overrides } }, timeouts);
  await instance.listen({ port: 0, host: '127.0.0.1' });
  servers.push(instance);
  return { server: instance, url: `ws://127.0.0.1:${(instance.server.address() as AddressInfo).port}/trpc` };
}

let url: string;
beforeAll(async () => {
  app = await createTestApp({ GENERATION_RATE_LIMIT: '1000' });
  ({ server, url } = await listen());
  port = (server.server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await app?.close();
});
afterEach(async () => {
  // Checked while leftover jobs are live too: settling first would hide a live job that lost its hold.
  await expectLedgerInvariants(app.database.admin);
  await settleAll(app);
  await expectLedgerInvariants(app.database.admin);
});

const tokenFor = (user: SessionUser) =>
  signSession(app.config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, 3600);
const origin = () => new URL(app.config.PUBLIC_URL).origin;
const socketFor = async (user: SessionUser, at = url) =>
  openLiveSocket(at, { cookie: `${SESSION_COOKIE}=${await tokenFor(user)}`, origin: origin() });
const boardsOf = async (userId: string) =>
  (await app.database.admin`select count(*)::int as n from boards where user_id = ${userId}`)[0]!.n as number;

describe('tRPC over HTTP', () => {
  it(`refuses a batch of 600 calls (more than ${TRPC_MAX_BATCH_SIZE}) before running any of them`, async () => {
    const user = await app.createUser();
    const token = await tokenFor(user);
    const queries = await server.inject({
      method: 'GET',
      url: `/trpc/${Array(600).fill('user.me').join(',')}?batch=1`,
      cookies: { [SESSION_COOKIE]: token },
    });
    expect(queries.statusCode).toBe(400);
    expect(JSON.stringify(queries.json())).toMatch(/Batch call exceeds maximum size/);

    // Mutations prove nothing ran: not one board exists afterwards. (300 keeps the URL under the path limit.)
    const paths = Array.from({ length: 300 }, () => 'boards.create').join(',');
    const input = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [i, { json: { name: `board ${i}` } }]));
    const res = await server.inject({
      method: 'POST',
      url: `/trpc/${paths}?batch=1`,
      payload: input,
      cookies: { [SESSION_COOKIE]: token },
      headers: { [CSRF_HEADER]: '1' },
    });
    expect(res.statusCode).toBe(400);
    expect(await boardsOf(user.id)).toBe(0);
    // Nothing ran, so nothing counted against the user's mutation limit either.
    expect(await app.deps.redis.get(app.deps.keys.rateLimit('mutation', user.id))).toBeNull();
    // A batch at the limit runs.
    const atLimit = await server.inject({
      method: 'GET',
      url: `/trpc/${Array(TRPC_MAX_BATCH_SIZE).fill('user.me').join(',')}?batch=1`,
      cookies: { [SESSION_COOKIE]: token },
    });
    expect(atLimit.statusCode).toBe(200);
  });

  it('limits every mutation per user: past the limit → 429 with retryAfterSeconds, nothing changed', async () => {
    const limited = await buildServer({
      ...app.deps,
      config: { ...app.config, MUTATION_RATE_LIMIT: 3, MUTATION_RATE_WINDOW_SECONDS: 60 },
    });
    servers.push(limited);
    const [user, other] = [await app.createUser(), await app.createUser()];
    const create = async (who: SessionUser, name: string) =>
      limited.inject({
        method: 'POST',
        url: '/trpc/boards.create',
        payload: { json: { name } },
        cookies: { [SESSION_COOKIE]: await tokenFor(who) },
        headers: { [CSRF_HEADER]: '1' },
      });
    for (let i = 0; i < 3; i++) expect((await create(user, `b${i}`)).statusCode).toBe(200);
    const refused = await create(user, 'one too many');
    expect(refused.statusCode).toBe(429);
    const { error } = refused.json();
    expect(error.json.data).toMatchObject({
      code: 'TOO_MANY_REQUESTS',
      httpStatus: 429,
      domain: { code: 'TOO_MANY_REQUESTS' },
    });
    expect(error.json.data.domain.details.retryAfterSeconds).toBeGreaterThan(0);
    expect(error.json.data.domain.details.retryAfterSeconds).toBeLessThanOrEqual(60);
    expect(await boardsOf(user.id)).toBe(3);
    // Per user: someone else is not affected, and queries are not mutations.
    expect((await create(other, 'mine')).statusCode).toBe(200);
    expect(
      (
        await limited.inject({
          method: 'GET',
          url: '/trpc/user.me',
          cookies: { [SESSION_COOKIE]: await tokenFor(user) },
        })
      ).statusCode,
    ).toBe(200);
  });
});

describe('WebSocket', () => {
  it('closes the socket on a 1 MiB frame (1009) without answering it', async () => {
    const socket = await socketFor(await app.createUser());
    socket.send(
      JSON.stringify({ id: 1, method: 'query', params: { path: 'user.me', input: { json: 'x'.repeat(1024 * 1024) } } }),
    );
    expect((await socket.closed).code).toBe(1009);
  });

  it('refuses 10^4 subscriptions in one frame: the socket closes and no Redis subscription is made', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const socket = await socketFor(user);
    const frame = Array.from({ length: 10_000 }, (_, i) => ({
      id: i + 1,
      method: 'subscription',
      params: { path: 'generation.onJob', input: { json: { jobId } } },
    }));
    socket.send(JSON.stringify(frame));
    expect([1008, 1009]).toContain((await socket.closed).code);
    const channels = await app.deps.redis.pubsub('CHANNELS', `${app.deps.keys.prefix}job:*`);
    expect(channels).toEqual([]);
  });

  it(`closes the socket (1008) on a frame of over ${WS_MAX_MESSAGES_PER_FRAME} messages, before any runs`, async () => {
    const user = await app.createUser();
    const socket = await socketFor(user);
    const frame = Array.from({ length: WS_MAX_MESSAGES_PER_FRAME + 1 }, (_, i) => ({
      id: i + 1,
      method: 'mutation',
      params: { path: 'boards.create', input: { json: { name: `b${i}` } } },
    }));
    const text = JSON.stringify(frame);
    expect(text.length).toBeLessThan(WS_MAX_PAYLOAD_BYTES);
    socket.send(text);
    expect(await socket.closed).toEqual(WS_CLOSE.tooManyMessages);
    expect(await boardsOf(user.id)).toBe(0);
  });

  it('caps subscriptions per socket: past the cap → TOO_MANY_REQUESTS; a stopped one frees its slot', async () => {
    const { url: capped } = await listen({ WS_MAX_SUBSCRIPTIONS_PER_SOCKET: 2 });
    const user = await fundedUser(app, 'free', 100);
    const jobIds: string[] = [];
    for (let i = 0; i < 3; i++) jobIds.push((await app.callerFor(user).generation.create(smallParams())).jobId);
    const socket = await socketFor(user, capped);
    expect((await socket.call('subscription', 'generation.onJob', { jobId: jobIds[0] })).result?.type).toBe('started');
    expect((await socket.call('subscription', 'generation.onJob', { jobId: jobIds[1] })).result?.type).toBe('started');
    const third = await socket.call('subscription', 'generation.onJob', { jobId: jobIds[2] });
    expect(third.error?.json.data.code).toBe('TOO_MANY_REQUESTS');
    socket.send(JSON.stringify({ id: 1, method: 'subscription.stop' }));
    await expect
      .poll(async () => (await socket.call('subscription', 'generation.onJob', { jobId: jobIds[2] })).result?.type)
      .toBe('started');
    socket.ws.close();
  });

  it('caps sockets per user on a replica: past the cap the upgrade gets 429; a closed one frees its slot', async () => {
    const { url: capped } = await listen({ WS_MAX_SOCKETS_PER_USER: 2 });
    const user = await app.createUser();
    const [a, b] = [await socketFor(user, capped), await socketFor(user, capped)];
    await expect(socketFor(user, capped)).rejects.toThrow(/429/);
    const someoneElse = await socketFor(await app.createUser(), capped);
    a.ws.close();
    await a.closed;
    await expect
      .poll(async () =>
        socketFor(user, capped).then(
          (s) => {
            s.ws.close();
            return 'open';
          },
          () => 'refused',
        ),
      )
      .toBe('open');
    b.ws.close();
    someoneElse.ws.close();
  });

  it('destroys an upgrade to any other path (/nope) at once, with no answer', async () => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      'GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    await closed;
    expect(received).toBe('');
  });
});

describe('slow HTTP clients', () => {
  // The real limits (10 s for headers, 30 s for a request) scaled down, so the test need not wait them out.
  const quick: HttpTimeouts = { headersMs: 400, requestMs: 800, keepAliveMs: 400, checkIntervalMs: 50 };

  /** Opens a raw connection, sends `start`, then `trickle` every 100 ms; resolves with all it received once closed. */
  async function exchange(at: number, start: string, trickle: string): Promise<string> {
    const socket = connect(at, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('error', () => {});
    socket.write(start);
    const dripping = setInterval(() => socket.writable && socket.write(trickle), 100);
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    clearInterval(dripping);
    return received;
  }

  const portOf = (instance: FastifyInstance) => (instance.server.address() as AddressInfo).port;

  it('answers 408 and closes a connection that trickles its headers and never ends them (slowloris)', async () => {
    const { server: slow } = await listen({}, quick);
    const answer = await exchange(portOf(slow), 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 408 and closes a request whose body keeps trickling past the request limit', async () => {
    const { server: slow } = await listen({}, quick);
    const answer = await exchange(
      portOf(slow),
      'POST /trpc/user.signOut HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n',
      ' ',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('still answers a client that sends its request in time, on the same server', async () => {
    const { server: slow } = await listen({}, quick);
    const response = await fetch(`http://127.0.0.1:${portOf(slow)}/healthz`);
    expect(await response.json()).toEqual({ ok: true });
  });
});
