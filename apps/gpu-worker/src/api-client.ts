import { createTRPCClient, httpLink, TRPCClientError, type TRPCLink } from '@trpc/client';
import { observable } from '@trpc/server/observable';
import superjson from 'superjson';
import type { WorkerRouter } from '@pingvas/api/worker-router';

/** The API's internal router, typed from its source; the worker holds only the token. */
export function createWorkerApi(options: { apiUrl: string; workerToken: string }) {
  return createTRPCClient<WorkerRouter>({
    links: [
      signalPerCallLink,
      httpLink({
        url: `${options.apiUrl}/internal/trpc`,
        transformer: superjson,
        headers: { authorization: `Bearer ${options.workerToken}` },
      }),
    ],
  });
}

export type WorkerApi = ReturnType<typeof createWorkerApi>;

/**
 * tRPC's httpLink (11.22) ties a call to the caller's signal with an abort listener it never
 * removes, so a signal that outlives its calls (a stop signal passed to every long-poll claim)
 * gathers one listener per call for good. Each call gets a signal of its own instead, following
 * the caller's, and the caller's listener goes when the call settles or is unsubscribed.
 */
const signalPerCallLink: TRPCLink<WorkerRouter> =
  () =>
  ({ op, next }) =>
    observable((observer) => {
      const callerSignal = op.signal;
      if (!callerSignal) return next(op).subscribe(observer);
      const call = new AbortController();
      const forward = () => call.abort(callerSignal.reason);
      if (callerSignal.aborted) forward();
      else callerSignal.addEventListener('abort', forward, { once: true });
      const subscription = next({ ...op, signal: call.signal }).subscribe(observer);
      return () => {
        callerSignal.removeEventListener('abort', forward);
        subscription.unsubscribe();
      };
    });

/**
 * What a failed call means for the worker:
 * - `lease-lost`: the job is no longer ours (expired and handed on, finished, or gone): drop it;
 * - `rejected`: the API refused the call itself (bad token, bad input): retrying cannot help;
 * - `unreachable`: network trouble, an overloaded or restarting API: try again later.
 */
export type ApiErrorKind = 'lease-lost' | 'rejected' | 'unreachable';

export function apiErrorKind(error: unknown): ApiErrorKind {
  if (!(error instanceof TRPCClientError)) return 'unreachable';
  const data = error.data as { domain?: { code?: string } | null; httpStatus?: number; code?: string } | undefined;
  if (data?.domain?.code === 'LEASE_LOST' || data?.code === 'NOT_FOUND' || data?.code === 'CONFLICT')
    return 'lease-lost';
  const status = data?.httpStatus;
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return 'rejected';
  return 'unreachable';
}
