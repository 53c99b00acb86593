// @vitest-environment node
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_BATCH_CALLS, SESSION_ENDED_CLOSE_CODE } from '@pingvas/core';
import { createClient } from './trpc.js';

/**
 * A stand-in API origin: it records the calls of each batched HTTP request (and refuses them),
 * and closes every live-events socket with `closeCode` as soon as the client subscribes.
 */
async function standInApi(closeCode = 1000) {
  const batches: string[][] = [];
  let sockets = 0;
  const http = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname.replace(/^\/trpc\//, '');
    batches.push(path.split(','));
    res.writeHead(503).end();
  });
  const live = new WebSocketServer({ server: http });
  live.on('connection', (socket) => {
    sockets++;
    socket.once('message', () => socket.close(closeCode, 'closing'));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    batches,
    sockets: () => sockets,
    // Stop listening first (the client keeps reconnecting), then end the open sockets: upgraded
    // ones are the WebSocket server's, not counted among the HTTP server's connections.
    close: () =>
      new Promise((resolve) => {
        http.close(resolve);
        for (const socket of live.clients) socket.terminate();
        live.close();
        http.closeAllConnections();
      }),
  };
}

const servers: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function clientOf(closeCode?: number) {
  const api = await standInApi(closeCode);
  servers.push(api);
  const onSessionEnded = vi.fn();
  const client = createClient({
    origin: api.origin,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    onSessionEnded,
  });
  return { api, client, onSessionEnded };
}

const subscribe = (client: ReturnType<typeof createClient>) =>
  client.generation.onJob.subscribe(
    { jobId: '00000000-0000-4000-8000-000000000001' },
    { onData: () => {}, onError: () => {} },
  );

// Waiting, not timing: on a busy machine a socket's round trips take a while.
describe('the live-events socket', { timeout: 30_000 }, () => {
  it('reports an ended session when the API closes the socket with the session-ended code', async () => {
    const { client, onSessionEnded } = await clientOf(SESSION_ENDED_CLOSE_CODE);
    const subscription = subscribe(client);
    await vi.waitFor(() => expect(onSessionEnded).toHaveBeenCalled(), { timeout: 20_000 });
    subscription.unsubscribe();
  });

  it('reconnects quietly after any other close (connection lifetime reached)', async () => {
    const { api, client, onSessionEnded } = await clientOf(4000);
    const subscription = subscribe(client);
    await vi.waitFor(() => expect(api.sockets()).toBeGreaterThanOrEqual(2), { timeout: 20_000 });
    subscription.unsubscribe();
    expect(onSessionEnded).not.toHaveBeenCalled();
  });
});

describe('batched HTTP calls', () => {
  it(`never puts more than ${MAX_BATCH_CALLS} calls in one request (the API refuses a longer batch whole)`, async () => {
    const { api, client } = await clientOf();
    const calls = 2 * MAX_BATCH_CALLS + 7;
    await Promise.allSettled(Array.from({ length: calls }, () => client.user.me.query()));
    expect(api.batches.flat()).toHaveLength(calls);
    expect(Math.max(...api.batches.map((batch) => batch.length))).toBeLessThanOrEqual(MAX_BATCH_CALLS);
  });
});
