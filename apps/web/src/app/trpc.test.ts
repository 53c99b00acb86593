import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { SESSION_ENDED_CLOSE_CODE } from '@pingvas/core';
import { createClient } from './trpc.js';

/** A live-events server that closes every socket with `code` as soon as the client subscribes. */
async function closingServer(code: number, reason: string) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  let connections = 0;
  server.on('connection', (socket) => {
    connections++;
    socket.once('message', () => socket.close(code, reason));
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/trpc`,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const servers: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

function subscribeThrough(url: string, onSessionEnded: () => void) {
  const client = createClient({
    wsUrl: () => url,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    onSessionEnded,
  });
  return client.generation.onJob.subscribe(
    { jobId: '00000000-0000-4000-8000-000000000001' },
    { onData: () => {}, onError: () => {} },
  );
}

describe('the live-events socket', () => {
  it('reports an ended session when the API closes the socket with the session-ended code', async () => {
    const server = await closingServer(SESSION_ENDED_CLOSE_CODE, 'session revoked');
    servers.push(server);
    const onSessionEnded = vi.fn();
    const subscription = subscribeThrough(server.url, onSessionEnded);
    await vi.waitFor(() => expect(onSessionEnded).toHaveBeenCalled(), { timeout: 5_000 });
    subscription.unsubscribe();
  });

  it('reconnects quietly after any other close (connection lifetime reached)', async () => {
    const server = await closingServer(4000, 'connection lifetime reached');
    servers.push(server);
    const onSessionEnded = vi.fn();
    const subscription = subscribeThrough(server.url, onSessionEnded);
    await vi.waitFor(() => expect(server.connections()).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
    subscription.unsubscribe();
    expect(onSessionEnded).not.toHaveBeenCalled();
  });
});
