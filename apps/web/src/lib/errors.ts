/**
 * Turns whatever a call threw into what a person should read. Works on the shape of a
 * TRPCClientError (`data.code`, `data.domain`, `data.issues`) and on plain fetch failures;
 * never passes a stack trace or an internal message through.
 */
export type ErrorKind =
  | 'payment_required'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'invalid'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'
  | 'network'
  | 'server';

export interface FieldIssue {
  path: string;
  message: string;
}

export interface DescribedError {
  kind: ErrorKind;
  title: string;
  message: string;
  /** For `payment_required`: what the user has and what the action needs. */
  credits?: { balance: number; needed: number };
  fieldErrors?: Record<string, string>;
}

interface ErrorData {
  code?: string;
  httpStatus?: number;
  domain?: { code?: string; details?: Record<string, unknown> } | null;
  issues?: FieldIssue[] | null;
}

function dataOf(error: unknown): ErrorData | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const data = (error as { data?: unknown }).data;
  return typeof data === 'object' && data !== null ? (data as ErrorData) : undefined;
}

function messageOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return undefined;
}

/** A server message is shown only when it is a short sentence meant for people. */
function safeMessage(error: unknown, fallback: string): string {
  const message = messageOf(error)?.trim();
  if (!message || message.length > 300 || /\n\s+at\s|Error:|undefined|null|\{|\[object/.test(message)) return fallback;
  return message;
}

function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function fieldErrorsFrom(issues: readonly FieldIssue[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const issue of issues ?? []) {
    const key = issue.path || 'form';
    out[key] ??= issue.message;
  }
  return out;
}

export function describeError(error: unknown): DescribedError {
  const data = dataOf(error);
  const code = data?.domain?.code ?? data?.code;

  if (!data) {
    const text = messageOf(error) ?? '';
    if (error instanceof TypeError || /fetch|network|socket|ECONNREFUSED|Load failed/i.test(text)) {
      return {
        kind: 'network',
        title: 'Connection problem',
        message: 'We could not reach the studio. Check your connection and try again.',
      };
    }
    return {
      kind: 'server',
      title: 'Something went wrong',
      message: 'Something went wrong on our side. Please try again.',
    };
  }

  switch (code) {
    case 'PAYMENT_REQUIRED': {
      const details = data.domain?.details ?? {};
      const balance = asNumber(details.balance);
      const needed = asNumber(details.needed);
      return {
        kind: 'payment_required',
        title: 'Not enough credits',
        message:
          balance !== undefined && needed !== undefined
            ? `You have ${balance.toLocaleString('en-US')} credits; this needs ${needed.toLocaleString('en-US')}.`
            : 'You do not have enough credits for this.',
        credits: balance !== undefined && needed !== undefined ? { balance, needed } : undefined,
      };
    }
    case 'UNAUTHORIZED':
      return {
        kind: 'unauthorized',
        title: 'Please sign in',
        message: 'Your session has ended. Sign in again to continue.',
      };
    case 'PLAN_LIMIT':
      return {
        kind: 'forbidden',
        title: 'Plan limit',
        message: safeMessage(error, 'Your plan does not allow this. Upgrade to do more.'),
      };
    case 'FORBIDDEN':
      return {
        kind: 'forbidden',
        title: 'Not allowed',
        message: safeMessage(error, 'You are not allowed to do that.'),
      };
    case 'NOT_FOUND':
      return { kind: 'not_found', title: 'Not found', message: safeMessage(error, 'It may have been deleted.') };
    case 'BAD_REQUEST': {
      const fieldErrors = fieldErrorsFrom(data.issues);
      const first = Object.values(fieldErrors)[0];
      return {
        kind: 'invalid',
        title: 'Please check the form',
        message: first ?? safeMessage(error, 'Some of the values are not valid.'),
        fieldErrors,
      };
    }
    case 'CONFLICT':
      return {
        kind: 'conflict',
        title: 'Already changed',
        message: safeMessage(error, 'That changed in the meantime. Refresh and try again.'),
      };
    case 'TOO_MANY_REQUESTS': {
      const wait = asNumber(data.domain?.details?.retryAfterSeconds);
      return {
        kind: 'rate_limited',
        title: 'Slow down a little',
        message: safeMessage(
          error,
          wait ? `Too many requests. Try again in ${Math.ceil(wait)} s.` : 'Too many requests. Try again shortly.',
        ),
      };
    }
    case 'PROVIDER_UNAVAILABLE':
    case 'SERVICE_UNAVAILABLE':
      return {
        kind: 'unavailable',
        title: 'Temporarily unavailable',
        message: safeMessage(error, 'A service we depend on is not answering. Try again in a minute.'),
      };
    default:
      return {
        kind: 'server',
        title: 'Something went wrong',
        message: 'Something went wrong on our side. Please try again.',
      };
  }
}
