import { MAX_BATCH_CALLS, SESSION_ENDED_CLOSE_CODE } from '@pingvas/core';

/**
 * Fixed limits on the work one request or connection can cause (the auth README explains
 * each). The per-user figures that operators may tune are in the config instead.
 */

/** Calls in one batched tRPC HTTP request (`?batch=1`); a longer batch is refused before any runs. */
export const TRPC_MAX_BATCH_SIZE = MAX_BATCH_CALLS;
/** Largest WebSocket frame the API accepts; a bigger one closes the socket (1009). */
export const WS_MAX_PAYLOAD_BYTES = 64 * 1024;
/** tRPC messages in one WebSocket frame; more close the socket (1008) before any runs. */
export const WS_MAX_MESSAGES_PER_FRAME = TRPC_MAX_BATCH_SIZE;
/** How long a slow or idle HTTP client may hold a connection. */
export interface HttpTimeouts {
  /** Time a client has to send its request headers… */
  headersMs: number;
  /** …and the whole request. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveMs: number;
  /**
   * How often Node looks for connections past the first two. Its default is 30 s, which would
   * let a client that trickles its headers hold a connection for 40 s rather than 10.
   */
  checkIntervalMs: number;
}
export const HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 72_000,
  checkIntervalMs: 1_000,
};
/** Largest HTTP request body (fastify's default, stated). */
export const HTTP_BODY_LIMIT_BYTES = 1024 * 1024;

/** WebSocket close codes the API uses, with the reason text sent along. */
export const WS_CLOSE = {
  /** The session was signed out (here or everywhere) or its user is gone. */
  revoked: { code: SESSION_ENDED_CLOSE_CODE, reason: 'session revoked' },
  /** The session token expired. */
  expired: { code: SESSION_ENDED_CLOSE_CODE, reason: 'session expired' },
  /** WS_MAX_LIFETIME_SECONDS passed: reconnect (and be checked afresh). */
  lifetime: { code: 4000, reason: 'connection lifetime reached' },
  /** The session could not be checked (database unreachable): reconnect later. */
  checkFailed: { code: 1013, reason: 'session check failed, try again later' },
  /** A frame with more than WS_MAX_MESSAGES_PER_FRAME messages. */
  tooManyMessages: { code: 1008, reason: 'too many messages in one frame' },
} as const;
