import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import type { FastifyInstance } from 'fastify';
import superjson from 'superjson';
import WebSocket from 'ws';
import type { JobEvent } from '@pingvas/core';
import type { SessionUser } from '../../context.js';
import type { AppRouter } from '../../app.router.js';
import { buildServer } from '../../server.js';
import { signSession } from '../auth/session.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { expectLedgerInvariants } from '../../test/invariants.js';
import type { Redis } from '../../infra/redis.js';
import { busFor } from './bus.js';
import { fundedUser, smallParams } from '../../test/factories.js';
import { claim, completeClaimed, settleAll } from './generation.test-support.js';

/** Waiting, not timing: a loaded machine can take seconds to deliver an event over the socket. */
const EVENTUALLY = { timeout: 15_000 };

let app: TestApp;
let server: FastifyInstance;
let url: string;
const clients: { close(): void }[] = [];

beforeAll(async () => {
  app = await createTestApp({ GENERATION_RATE_LIMIT: '1000' });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  url = `ws://127.0.0.1:${(server.server.address() as AddressInfo).port}/trpc`;
});
afterAll(async () => {
  await server.close();
  await app.close();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  // Checked while leftover jobs are live too: settling first would hide a live job that lost its hold.
  await expectLedgerInvariants(app.database.admin);
  await settleAll(app);
  await expectLedgerInvariants(app.database.admin);
});

async function cookieFor(user: SessionUser): Promise<string> {
  return `pingvas_session=${await signSession(app.config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, 3600)}`;
}

/** A browser-like tRPC client over WebSocket, carrying the session cookie on the upgrade. */
async function liveClient(user: SessionUser) {
  const cookie = await cookieFor(user);
  class CookieWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { cookie, origin: new URL(app.config.PUBLIC_URL).origin } });
    }
  }
  const wsClient = createWSClient({ url, WebSocket: CookieWebSocket as unknown as typeof globalThis.WebSocket });
  clients.push(wsClient);
  return createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient, transformer: superjson })] });
}

function follow(client: Awaited<ReturnType<typeof liveClient>>, jobId: string) {
  const events: JobEvent[] = [];
  const state = { done: false, error: null as unknown };
  client.generation.onJob.subscribe(
    { jobId },
    {
      onData: (event) => events.push(event as JobEvent),
      onError: (error) => {
        state.error = error;
      },
      onComplete: () => {
        state.done = true;
      },
    },
  );
  return { events, state };
}

describe('generation.onJob over WebSocket', () => {
  it('streams snapshot, started, progress, queued (retry), started, progress… and completed in order, then ends', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const live = follow(await liveClient(user), jobId);
    await vi.waitFor(
      () => expect(live.events[0]).toMatchObject({ type: 'snapshot', status: 'pending', queuePosition: 0 }),
      EVENTUALLY,
    );

    // A first run crashes: the job goes back to the queue and is claimed again.
    const crashed = (await claim(app))!;
    await app
      .workerCaller()
      .heartbeat({ jobId, leaseToken: crashed.lease.token, progress: { percent: 10, step: 2, totalSteps: 20 } });
    await app.workerCaller().fail({ jobId, leaseToken: crashed.lease.token, code: 'CRASH', message: 'segfault' });
    const claimed = (await claim(app))!;
    for (const step of [5, 10, 15]) {
      await app
        .workerCaller()
        .heartbeat({ jobId, leaseToken: claimed.lease.token, progress: { percent: step * 5, step, totalSteps: 20 } });
    }
    await completeClaimed(app, claimed, 6);
    await vi.waitFor(() => expect(live.state.done).toBe(true), EVENTUALLY);
    expect(live.events.map((e) => e.type)).toEqual([
      'snapshot',
      'started',
      'progress',
      'queued',
      'started',
      'progress',
      'progress',
      'progress',
      'completed',
    ]);
    expect(live.events.filter((e) => e.type === 'progress').map((e) => (e as { step: number }).step)).toEqual([
      2, 5, 10, 15,
    ]);
    expect(live.events[3]).toMatchObject({ type: 'queued', position: 0 });
    expect(live.events.at(-1)).toMatchObject({
      type: 'completed',
      creditsCharged: 6,
      balance: 94,
      image: { width: 512, height: 512 },
    });
  });

  it('a late subscriber gets the current state first', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    await app
      .workerCaller()
      .heartbeat({ jobId, leaseToken: claimed.lease.token, progress: { percent: 60, step: 12, totalSteps: 20 } });
    const client = await liveClient(user);
    const running = follow(client, jobId);
    await vi.waitFor(
      () => expect(running.events[0]).toMatchObject({ type: 'snapshot', status: 'in_progress', progress: 60 }),
      EVENTUALLY,
    );

    await completeClaimed(app, claimed, 2);
    await vi.waitFor(() => expect(running.state.done).toBe(true), EVENTUALLY);
    expect(running.events.map((e) => e.type)).toEqual(['snapshot', 'completed']);
    // After the end: the snapshot, then the terminal event with its details, then done.
    const after = follow(client, jobId);
    await vi.waitFor(() => expect(after.state.done).toBe(true), EVENTUALLY);
    expect(after.events).toEqual([
      expect.objectContaining({ type: 'snapshot', status: 'completed', progress: 100 }),
      expect.objectContaining({ type: 'completed', creditsCharged: 2, balance: 98 }),
    ]);
  });

  it('sends the state afresh when the process lost its subscriber connection meanwhile', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const claimed = (await claim(app))!;
    const live = follow(await liveClient(user), jobId);
    await vi.waitFor(() => expect(live.events).toHaveLength(1), EVENTUALLY);
    const subscriber = (busFor(app.deps) as unknown as { subscriber: Redis }).subscriber;
    subscriber.disconnect();
    await completeClaimed(app, claimed, 2); // its `completed` is published while nobody listens
    await subscriber.connect();
    await vi.waitFor(() => expect(live.state.done).toBe(true), EVENTUALLY);
    expect(live.events.map((e) => e.type)).toEqual(['snapshot', 'snapshot', 'completed']);
    expect(live.events[1]).toMatchObject({ status: 'completed' });
  });

  it('tells a subscriber about a cancel', async () => {
    const user = await fundedUser(app, 'free', 100);
    const { jobId } = await app.callerFor(user).generation.create(smallParams());
    const live = follow(await liveClient(user), jobId);
    await vi.waitFor(() => expect(live.events).toHaveLength(1), EVENTUALLY);
    await app.callerFor(user).generation.cancel({ jobId });
    await vi.waitFor(() => expect(live.state.done).toBe(true), EVENTUALLY);
    expect(live.events.at(-1)).toEqual({ type: 'cancelled', jobId, refunded: 10 });
  });

  it("refuses another user's job", async () => {
    const owner = await fundedUser(app);
    const stranger = await fundedUser(app);
    const { jobId } = await app.callerFor(owner).generation.create(smallParams());
    const live = follow(await liveClient(stranger), jobId);
    await vi.waitFor(() => expect(live.state.error).toBeTruthy(), EVENTUALLY);
    expect(live.state.error).toMatchObject({ data: { code: 'NOT_FOUND' } });
    expect(live.events).toEqual([]);
  });

  it('refuses an upgrade without a valid session, or from a foreign origin', async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const socket = new WebSocket(url, { headers });
        socket.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          socket.terminate();
        });
        socket.on('open', () => {
          resolve(101);
          socket.close();
        });
        socket.on('error', () => undefined);
      });
    const origin = new URL(app.config.PUBLIC_URL).origin;
    expect(await status({ origin })).toBe(401);
    expect(await status({ cookie: 'pingvas_session=forged', origin })).toBe(401);
    const user = await fundedUser(app);
    expect(await status({ cookie: await cookieFor(user), origin: 'https://evil.example' })).toBe(403);
    expect(await status({ cookie: await cookieFor(user), origin })).toBe(101);
  });
});
