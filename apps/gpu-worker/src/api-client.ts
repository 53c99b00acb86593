import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import superjson from 'superjson';
import type { WorkerRouter } from '@pingvas/api/worker-router';

/** The API's internal router, typed from its source; the worker holds only the token. */
export function createWorkerApi(options: { apiUrl: string; workerToken: string }) {
  return createTRPCClient<WorkerRouter>({
    links: [
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
 * What a failed call means for the worker:
 * - `lease-lost`: the job is no longer ours (expired and handed on, finished, or gone): drop it;
 * - `rejected`: the API refused the call itself (bad token, bad input): retrying cannot help;
 * - `unreachable`: network trouble, an overloaded or restarting API: try again later.
 */
export type ApiErrorKind = 'lease-lost' | 'rejected' | 'unreachable';

export function apiErrorKind(error: unknown): ApiErrorKind {
  if (!(error instanceof TRPCClientError)) return 'unreachable';
  const data = error.data as { domain?: { code?: string } | null; httpStatus?: number; code?: string } | undefined;
  if (data?.domain?.code === 'LEASE_LOST' || data?.code === 'NOT_FOUND' || data?.code === 'CONFLICT') return 'lease-lost';
  const status = data?.httpStatus;
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return 'rejected';
  return 'unreachable';
}
