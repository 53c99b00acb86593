/**
 * Errors the domain raises on purpose. The API turns each into a tRPC error with the same
 * code; the web reads `code` and `details` to decide what to show.
 */
export const ERROR_CODES = {
  PAYMENT_REQUIRED: 'PAYMENT_REQUIRED',
  NOT_FOUND: 'NOT_FOUND',
  BAD_REQUEST: 'BAD_REQUEST',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  CONFLICT: 'CONFLICT',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
  PLAN_LIMIT: 'PLAN_LIMIT',
  PROVIDER_UNAVAILABLE: 'PROVIDER_UNAVAILABLE',
  LEASE_LOST: 'LEASE_LOST',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetails {
  PAYMENT_REQUIRED: { balance: number; needed: number };
  NOT_FOUND: { entity: string };
  BAD_REQUEST: Record<string, unknown>;
  UNAUTHORIZED: Record<string, unknown>;
  FORBIDDEN: Record<string, unknown>;
  CONFLICT: Record<string, unknown>;
  TOO_MANY_REQUESTS: { retryAfterSeconds: number };
  PLAN_LIMIT: { limit: string; allowed: number };
  PROVIDER_UNAVAILABLE: { provider: string };
  LEASE_LOST: { jobId: string };
}

export class DomainError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: C,
    message: string,
    readonly details: ErrorDetails[C],
  ) {
    super(message);
  }
}

export function paymentRequired(balance: number, needed: number): DomainError<'PAYMENT_REQUIRED'> {
  return new DomainError('PAYMENT_REQUIRED', `Not enough credits: you have ${balance}, this needs ${needed}.`, {
    balance,
    needed,
  });
}

export function notFound(entity: string): DomainError<'NOT_FOUND'> {
  return new DomainError('NOT_FOUND', `${entity} not found.`, { entity });
}
