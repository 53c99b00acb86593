import { describe, expect, it } from 'vitest';
import { describeError } from './errors.js';

/** The shape a TRPCClientError has after our API's errorFormatter. */
const trpcError = (message: string, data: Record<string, unknown>) => Object.assign(new Error(message), { data });

describe('error → message', () => {
  it('reads balance and need from a PAYMENT_REQUIRED error', () => {
    const described = describeError(
      trpcError('Not enough credits: you have 0, this needs 90.', {
        code: 'PAYMENT_REQUIRED',
        httpStatus: 402,
        domain: { code: 'PAYMENT_REQUIRED', details: { balance: 0, needed: 90 } },
        issues: null,
      }),
    );
    expect(described).toMatchObject({ kind: 'payment_required', credits: { balance: 0, needed: 90 } });
    expect(described.message).toBe('You have 0 credits; this needs 90.');
  });

  it('turns input issues into field errors', () => {
    const described = describeError(
      trpcError('[{"code":"too_small"...}]', {
        code: 'BAD_REQUEST',
        httpStatus: 400,
        domain: null,
        issues: [
          { path: 'width', message: 'width must be a multiple of 64' },
          { path: 'width', message: 'second' },
          { path: 'prompt', message: 'prompt must not be empty' },
        ],
      }),
    );
    expect(described.kind).toBe('invalid');
    expect(described.fieldErrors).toEqual({
      width: 'width must be a multiple of 64',
      prompt: 'prompt must not be empty',
    });
    expect(described.message).toBe('width must be a multiple of 64');
  });

  it('maps a domain PLAN_LIMIT carried on FORBIDDEN to a plan message', () => {
    const described = describeError(
      trpcError('2048×2048 is larger than the Free plan allows (up to 1024×1024 pixels)', {
        code: 'FORBIDDEN',
        domain: { code: 'PLAN_LIMIT', details: { limit: 'pixels', allowed: 1048576 } },
      }),
    );
    expect(described).toMatchObject({ kind: 'forbidden', title: 'Plan limit' });
    expect(described.message).toContain('larger than the Free plan allows');
  });

  it('never shows a stack trace or an internal message', () => {
    const internal = describeError(
      trpcError('TypeError: Cannot read properties of undefined\n    at foo (x.js:1:1)', {
        code: 'INTERNAL_SERVER_ERROR',
      }),
    );
    expect(internal).toMatchObject({ kind: 'server', message: 'Something went wrong on our side. Please try again.' });
    const notFound = describeError(
      trpcError('Error: relation "x" does not exist\n    at Parser.parse', { code: 'NOT_FOUND' }),
    );
    expect(notFound.message).toBe('It may have been deleted.');
  });

  it('recognises network failures and unknown throws', () => {
    expect(describeError(new TypeError('Failed to fetch')).kind).toBe('network');
    expect(describeError('weird').kind).toBe('server');
    expect(describeError(trpcError('Sign in first.', { code: 'UNAUTHORIZED' })).kind).toBe('unauthorized');
  });
});
