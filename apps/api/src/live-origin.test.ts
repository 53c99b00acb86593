import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import type { SessionUser } from './context.js';
import { buildServer } from './server.js';
import { signSession } from './modules/auth/session.js';
import { createTestApp, type TestApp } from './test/harness.js';

/**
 * Cross-site WebSocket hijacking: a WebSocket is not bound by CORS, so another site's page
 * could open one to us and the browser would attach the victim's session cookie. The
 * upgrade therefore checks Origin before anything else.
 */

let app: TestApp;
let server: FastifyInstance;
let url: string;
let user: SessionUser;
let token: string;
const ownOrigin = () => new URL(app.config.PUBLIC_URL).origin;

beforeAll(async () => {
  app = await createTestApp({ PUBLIC_URL: 'http://studio.localhost:5173' });
  server = await buildServer(app.deps);
  await server.listen({ port: 0, host: '127.0.0.1' });
  url = `ws://127.0.0.1:${(server.server.address() as AddressInfo).port}/trpc`;
  user = await app.createUser();
  token = await signSession(app.config.SESSION_SECRET, { userId: user.id, sessionVersion: user.sessionVersion }, 3600);
});
afterAll(async () => {
  await server.close();
  await app.close();
});

/** The HTTP status the upgrade got: 101 when it became a socket. */
function upgrade(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
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
}

describe('live events upgrade: Origin', () => {
  it("accepts a browser on PUBLIC_URL's origin with the session cookie", async () => {
    expect(await upgrade({ origin: ownOrigin(), cookie: `pingvas_session=${token}` })).toBe(101);
  });

  it("refuses another site's page carrying the victim's cookie (403, before any upgrade)", async () => {
    for (const origin of [
      'https://evil.example',
      'https://studio.localhost:5173',
      'http://studio.localhost:5174',
      'http://studio.localhost.evil.example:5173',
      'null',
    ]) {
      expect(await upgrade({ origin, cookie: `pingvas_session=${token}` }), origin).toBe(403);
    }
  });

  it('without Origin (not a browser) requires a bearer token: the cookie alone is refused', async () => {
    expect(await upgrade({ cookie: `pingvas_session=${token}` })).toBe(403);
    expect(await upgrade({ authorization: `Bearer ${token}` })).toBe(101);
    expect(await upgrade({ authorization: 'Bearer not-a-session' })).toBe(401);
  });

  it('a bearer token does not excuse a foreign Origin', async () => {
    expect(await upgrade({ origin: 'https://evil.example', authorization: `Bearer ${token}` })).toBe(403);
  });
});
