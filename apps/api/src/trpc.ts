import { initTRPC, TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import superjson from 'superjson';
import { DomainError, type ErrorCode } from '@pingvas/core';
import type { Context } from './context.js';
import { hitRateLimit } from './infra/rate-limit.js';

const TRPC_CODE: Record<ErrorCode, TRPC_ERROR_CODE_KEY> = {
  PAYMENT_REQUIRED: 'PAYMENT_REQUIRED',
  NOT_FOUND: 'NOT_FOUND',
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  CONFLICT: 'CONFLICT',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  PLAN_LIMIT: 'FORBIDDEN',
  PROVIDER_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  LEASE_LOST: 'CONFLICT',
};

/** A DomainError thrown anywhere below a procedure becomes a tRPC error with the same code. */
export function toTrpcError(error: unknown): unknown {
  if (error instanceof DomainError) {
    return new TRPCError({ code: TRPC_CODE[error.code as ErrorCode], message: error.message, cause: error });
  }
  return error;
}

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  errorFormatter({ shape, error }) {
    const domain = error.cause instanceof DomainError ? { code: error.cause.code, details: error.cause.details } : null;
    const isInputError = error.code === 'BAD_REQUEST' && error.cause?.name === 'ZodError';
    return {
      ...shape,
      // Never leak stack traces or internal messages to clients.
      message: error.code === 'INTERNAL_SERVER_ERROR' ? 'Something went wrong on our side.' : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        path: shape.data.path,
        domain,
        issues: isInputError
          ? (error.cause as unknown as { issues: { path: PropertyKey[]; message: string }[] }).issues.map((i) => ({
              path: i.path.map(String).join('.'),
              message: i.message,
            }))
          : null,
      },
    };
  },
});

const domainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof DomainError) {
    const mapped = toTrpcError(result.error.cause) as TRPCError;
    return { ...result, error: mapped };
  }
  return result;
});

/**
 * A call over a WebSocket re-checks the socket's session first (revoked or expired → the
 * socket closes and the call is refused) and runs with the user as read now, so a tier
 * change applies at once. Subscriptions count against the socket's cap while they run.
 */
const liveSession = t.middleware(async ({ ctx, type, next }) => {
  const { live } = ctx;
  if (!live) return next();
  const user = await live.recheck();
  if (!user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Your session has ended; sign in again.' });
  if (type !== 'subscription') return next({ ctx: { ...ctx, user } });
  if (!live.reserveSubscription()) {
    const message = 'Too many subscriptions on this connection; stop some first.';
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message });
  }
  const result = await next({ ctx: { ...ctx, user } });
  const data: unknown = result.ok ? result.data : undefined;
  if (!result.ok || !isAsyncIterable(data)) {
    live.releaseSubscription();
    return result;
  }
  return { ...result, data: releasedWhenDone(data, live.releaseSubscription) };
});

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function* releasedWhenDone<T>(source: AsyncIterable<T>, release: () => void): AsyncGenerator<T> {
  try {
    yield* source;
  } finally {
    release();
  }
}

/**
 * PostgreSQL text cannot hold U+0000: a NUL anywhere in an input would fail deep in a query
 * (a 500). Refused here, for every procedure, before its input is even parsed.
 */
const noNulCharacters = t.middleware(async ({ getRawInput, next }) => {
  if (containsNul(await getRawInput())) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: 'Text may not contain the NUL character (U+0000).' });
  }
  return next();
});

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (value === null || typeof value !== 'object') return false;
  return Object.entries(value).some(([key, item]) => key.includes('\u0000') || containsNul(item));
}

export const router = t.router;
export const middleware = t.middleware;
export const mergeRouters = t.mergeRouters;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(domainErrors).use(liveSession).use(noNulCharacters);

/**
 * Every mutation of a signed-in user counts against MUTATION_RATE_LIMIT per window, shared
 * by all replicas (Redis); past it → TOO_MANY_REQUESTS (429) with `retryAfterSeconds`.
 */
const mutationRate = t.middleware(async ({ ctx, type, next }) => {
  if (type !== 'mutation' || !ctx.user) return next();
  const { config } = ctx.deps;
  const verdict = await hitRateLimit(ctx.deps.redis, ctx.deps.keys, {
    scope: 'mutation',
    subject: ctx.user.id,
    limit: config.MUTATION_RATE_LIMIT,
    windowSeconds: config.MUTATION_RATE_WINDOW_SECONDS,
  });
  if (verdict.allowed) return next();
  const { retryAfterSeconds } = verdict;
  const message = `Too many changes at once; try again in ${retryAfterSeconds} s.`;
  throw toTrpcError(new DomainError('TOO_MANY_REQUESTS', message, { retryAfterSeconds }));
});

/** Requires a signed-in user; ctx.user is then non-null. */
export const protectedProcedure = publicProcedure
  .use(({ ctx, next }) => {
    if (!ctx.user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Sign in first.' });
    return next({ ctx: { ...ctx, user: ctx.user } });
  })
  .use(mutationRate);

/** Only for GPU workers holding WORKER_TOKEN, on /internal/trpc. */
export const workerProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.isWorker) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Worker token required.' });
  return next();
});
