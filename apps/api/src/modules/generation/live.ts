import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import fastifyCookie from '@fastify/cookie';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { sessionTokenFrom, userFromSessionToken, type SessionUser } from '../../context.js';
import type { AppDeps } from '../../deps.js';
import { appRouter } from '../../app.router.js';
import { closeBus } from './bus.js';

/** The WebSocket endpoint for tRPC subscriptions (generation.onJob): same path as HTTP tRPC. */
export const LIVE_PATH = '/trpc';

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Serves tRPC over WebSocket on the fastify server. The session is checked on the upgrade
 * itself (cookie, or Bearer for API clients): an unauthenticated upgrade gets 401 and never
 * becomes a socket. A browser upgrade must come from PUBLIC_URL's origin, because a
 * WebSocket is not bound by CORS and another site's page could otherwise open one with
 * our cookie.
 */
export function attachLiveEvents(app: FastifyInstance, deps: AppDeps): void {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => { deps.metrics.openWebSockets.inc(); ws.once('close', () => deps.metrics.openWebSockets.dec()); });
  const users = new WeakMap<IncomingMessage, SessionUser>();
  const ownOrigin = new URL(deps.config.PUBLIC_URL).origin;
  const handler = applyWSSHandler({
    wss,
    router: appRouter,
    createContext: ({ req }) => ({ deps, user: users.get(req) ?? null, isWorker: false }),
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 5_000 },
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR') deps.logger.error({ err: error, path }, 'trpc ws error');
    },
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== LIVE_PATH) return;
    const origin = req.headers.origin;
    // No Origin means no browser; such a client must then authenticate with a bearer token, not a cookie.
    if (origin ? origin !== ownOrigin : !/^Bearer\s+\S/i.test(req.headers.authorization ?? '')) return refuse(socket, 403, 'Forbidden');
    const cookies = fastifyCookie.parse(req.headers.cookie ?? '');
    userFromSessionToken(deps, sessionTokenFrom(req.headers, cookies)).then(
      (user) => {
        if (!user) return refuse(socket, 401, 'Unauthorized');
        users.set(req, user);
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      },
      (err: unknown) => {
        deps.logger.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'Internal Server Error');
      },
    );
  });

  app.addHook('preClose', async () => {
    closeBus(deps);
    handler.broadcastReconnectNotification();
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
}
