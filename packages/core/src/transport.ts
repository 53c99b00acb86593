/** Limits and signals of the API's transports that the web client must know too. */

/** Calls in one batched tRPC HTTP request; the API refuses a longer batch before running any. */
export const MAX_BATCH_CALLS = 50;

/**
 * The close code of a live-events WebSocket whose session ended (signed out, revoked or expired):
 * the client must sign in again rather than reconnect with the same cookie.
 */
export const SESSION_ENDED_CLOSE_CODE = 4401;
