import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import fastifyCookie from '@fastify/cookie';
import { getWSConnectionHandler } from '@trpc/server/adapters/ws';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { WS_CLOSE, WS_MAX_MESSAGES_PER_FRAME, WS_MAX_PAYLOAD_BYTES } from './bounds.js';
import {
  currentUser,
  sessionFromToken,
  sessionTokenFrom,
  type Context,
  type LiveConnection,
  type Session,
} from './context.js';
import type { AppDeps } from './deps.js';
import { closeBus } from './modules/generation/bus.js';
import { appRouter } from './app.router.js';

/** The WebSocket endpoint: the whole app router over tRPC's WebSocket protocol, on the same path as HTTP tRPC. */
export const LIVE_PATH = '/trpc';

type CloseReason = (typeof WS_CLOSE)[keyof typeof WS_CLOSE];

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** How many tRPC messages a frame carries (a batch is a JSON array); -1 when it is not JSON at all. */
function messagesIn(data: Buffer): number {
  try {
    const parsed: unknown = JSON.parse(data.toString('utf8'));
    return Array.isArray(parsed) ? parsed.length : 1;
  } catch {
    return -1;
  }
}

/**
 * Serves the app router over WebSocket on the fastify server (auth README, "Sessions" and "Bounds").
 *
 * Upgrade: only on LIVE_PATH (any other path is destroyed at once); a browser must come from
 * PUBLIC_URL's origin (a WebSocket is not bound by CORS); the session (cookie, or Bearer for
 * API clients) must be valid (else 401), and the user below WS_MAX_SOCKETS_PER_USER sockets
 * on this replica (else 429).
 *
 * Open socket: frames over WS_MAX_PAYLOAD_BYTES (1009) or with more than
 * WS_MAX_MESSAGES_PER_FRAME messages (1008) close it before anything runs. Every call
 * re-checks the session (trpc.ts), and so does a timer every SESSION_RECHECK_SECONDS;
 * a revoked or expired session closes the socket (4401), and so does WS_MAX_LIFETIME_SECONDS (4000).
 */
export function attachLiveEvents(app: FastifyInstance, deps: AppDeps): void {
  const { config, logger, metrics } = deps;
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD_BYTES });
  const ownOrigin = new URL(config.PUBLIC_URL).origin;
  const socketsPerUser = new Map<string, number>();
  const connections = new WeakMap<IncomingMessage, Context>();
  const serve = getWSConnectionHandler({
    wss,
    router: appRouter,
    createContext: ({ req }) => connections.get(req)!,
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 5_000 },
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR') logger.error({ err: error, path }, 'trpc ws error');
    },
  });

  function releaseSocket(userId: string): void {
    const left = (socketsPerUser.get(userId) ?? 1) - 1;
    if (left > 0) socketsPerUser.set(userId, left);
    else socketsPerUser.delete(userId);
  }

  function open(ws: WebSocket, req: IncomingMessage, session: Session): void {
    const userId = session.user.id;
    const openedAt = Date.now();
    let subscriptions = 0;
    let closed = false;
    const close = ({ code, reason }: CloseReason) => {
      if (closed) return;
      closed = true;
      // After the current turn: the refusal of the call that found the session gone goes out first.
      setImmediate(() => ws.close(code, reason));
    };
    const live: LiveConnection = {
      async recheck() {
        if (closed) return null;
        if (Date.now() - openedAt >= config.WS_MAX_LIFETIME_SECONDS * 1000) {
          close(WS_CLOSE.lifetime);
          return null;
        }
        if (Date.now() >= session.claims.expiresAt) {
          close(WS_CLOSE.expired);
          return null;
        }
        const user = await currentUser(deps, session.claims);
        if (!user) close(WS_CLOSE.revoked);
        return closed ? null : user;
      },
      reserveSubscription() {
        if (subscriptions >= config.WS_MAX_SUBSCRIPTIONS_PER_SOCKET) return false;
        subscriptions += 1;
        return true;
      },
      releaseSubscription() {
        subscriptions -= 1;
      },
    };
    connections.set(req, { deps, user: session.user, session: session.claims, isWorker: false, live });

    const timer = setInterval(() => {
      live.recheck().catch((err: unknown) => {
        logger.warn({ err, userId }, 'websocket session check failed');
        close(WS_CLOSE.checkFailed);
      });
    }, config.SESSION_RECHECK_SECONDS * 1000);
    metrics.openWebSockets.inc();
    ws.once('close', () => {
      closed = true;
      clearInterval(timer);
      metrics.openWebSockets.dec();
      releaseSocket(userId);
    });

    // tRPC's listeners see a frame only once it passed the per-frame bound.
    const before = new Set(ws.listeners('message'));
    serve(ws, req);
    const trpcListeners = ws.listeners('message').filter((l) => !before.has(l)) as ((
      data: Buffer,
      isBinary: boolean,
    ) => void)[];
    for (const listener of trpcListeners) ws.off('message', listener);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (closed) return;
      if (messagesIn(data) > WS_MAX_MESSAGES_PER_FRAME) return close(WS_CLOSE.tooManyMessages);
      for (const listener of trpcListeners) listener(data, isBinary);
    });
  }

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    // Nothing else here speaks WebSocket: an upgrade elsewhere is cut, not left hanging.
    if (path !== LIVE_PATH) return socket.destroy();
    const origin = req.headers.origin;
    // No Origin means no browser; such a client must then authenticate with a bearer token, not a cookie.
    if (origin ? origin !== ownOrigin : !/^Bearer\s+\S/i.test(req.headers.authorization ?? ''))
      return refuse(socket, 403, 'Forbidden');
    const cookies = fastifyCookie.parse(req.headers.cookie ?? '');
    sessionFromToken(deps, sessionTokenFrom(req.headers, cookies)).then(
      (session) => {
        if (!session) return refuse(socket, 401, 'Unauthorized');
        const held = socketsPerUser.get(session.user.id) ?? 0;
        if (held >= config.WS_MAX_SOCKETS_PER_USER) return refuse(socket, 429, 'Too Many Requests');
        // The slot is held from here; if the handshake fails before the socket opens, the close gives it back.
        socketsPerUser.set(session.user.id, held + 1);
        let opened = false;
        socket.once('close', () => {
          if (!opened) releaseSocket(session.user.id);
        });
        wss.handleUpgrade(req, socket, head, (ws) => {
          opened = true;
          open(ws, req, session);
        });
      },
      (err: unknown) => {
        logger.error({ err }, 'websocket upgrade failed');
        refuse(socket, 500, 'Internal Server Error');
      },
    );
  });

  app.addHook('preClose', async () => {
    closeBus(deps);
    const reconnect = JSON.stringify({ id: null, method: 'reconnect' });
    for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(reconnect);
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
}
