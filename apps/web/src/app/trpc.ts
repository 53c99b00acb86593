import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import superjson from 'superjson';
import { MAX_BATCH_CALLS, SESSION_ENDED_CLOSE_CODE } from '@pingvas/core';
import type { AppRouter } from '@pingvas/api/router';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;

/** Sent on every request: the API refuses cookie-authenticated mutations without it (CSRF). */
export const CSRF_HEADERS = { 'x-pingvas-csrf': '1' } as const;

export interface ClientOptions {
  /** The session ended under an open live-events socket: ask who is signed in again. */
  onSessionEnded?: () => void;
  /** Where the API answers: the page's own origin (the web server proxies /trpc) unless a test says otherwise. */
  origin?: string;
  /** For tests outside a browser. */
  WebSocket?: typeof globalThis.WebSocket;
}

/**
 * Subscriptions (live job events) go over one lazily opened WebSocket, authenticated by the
 * session cookie on upgrade; everything else is batched HTTP. Both are same-origin: the web
 * server proxies /trpc to the API. A socket closed because the session ended (signed out
 * elsewhere, revoked, expired) reports it instead of silently reconnecting with a dead cookie.
 */
export function createClient(options: ClientOptions = {}) {
  const trpcUrl = () => `${options.origin ?? window.location.origin}/trpc`;
  const wsClient = createWSClient({
    url: () => trpcUrl().replace(/^http/, 'ws'),
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
    lazy: { enabled: true, closeMs: 10_000 },
    keepAlive: { enabled: true, intervalMs: 15_000, pongTimeoutMs: 5_000 },
    onClose: (cause) => {
      if (cause?.code === SESSION_ENDED_CLOSE_CODE) options.onSessionEnded?.();
    },
  });
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: wsClient, transformer: superjson }),
        // A page that asks for more at once (a gallery page of many images) splits its batch rather
        // than have the whole batch refused.
        false: httpBatchLink({
          url: trpcUrl(),
          transformer: superjson,
          headers: () => CSRF_HEADERS,
          maxItems: MAX_BATCH_CALLS,
        }),
      }),
    ],
  });
}
