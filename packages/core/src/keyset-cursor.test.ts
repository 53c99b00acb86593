import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from './errors.js';
import {
  decodeKeysetCursor,
  encodeKeysetCursor,
  MALFORMED_CURSOR_MESSAGE,
  type KeysetPosition,
} from './keyset-cursor.js';

const position: KeysetPosition = { time: '2026-11-26T10:00:00.123456Z', id: '3f1b7a52-8c1e-4d7a-9b0a-2e5c6d7f8a90' };
const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function rejection(list: string, cursor: string): unknown {
  try {
    decodeKeysetCursor(list, cursor);
  } catch (error) {
    return error;
  }
  return 'accepted';
}

const microsecondTime = fc
  .record({ ms: fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }), micros: fc.integer({ min: 0, max: 999 }) })
  .map(({ ms, micros }) => `${new Date(ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`);

describe('the keyset cursor codec', () => {
  it('round-trips every position of every list, to the microsecond', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('images', 'board', 'jobs', 'credit-history'),
        microsecondTime,
        fc.uuid(),
        (list, time, id) => {
          expect(decodeKeysetCursor(list, encodeKeysetCursor(list, { time, id }))).toEqual({ time, id });
        },
      ),
    );
  });

  it('is opaque URL-safe text', () => {
    expect(encodeKeysetCursor('images', position)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['empty', ''],
    ['not base64url', '!!!'],
    ['base64 of junk', Buffer.from('hello').toString('base64url')],
    ['another list', encodeKeysetCursor('board', position)],
    ['an object instead of a tuple', forge({ ...position, list: 'images' })],
    ['extra parts', forge(['images', position.time, position.id, 'x'])],
    ['a bad uuid', forge(['images', position.time, 'nope'])],
    ['an upper-case uuid', forge(['images', position.time, position.id.toUpperCase()])],
    ['an impossible date', forge(['images', '2026-02-30T10:00:00.000000Z', position.id])],
    ['a millisecond time', forge(['images', '2026-11-26T10:00:00.000Z', position.id])],
    ['a time that is not a time', forge(['images', 'yesterday', position.id])],
    ['a number for a time', forge(['images', 1_700_000_000, position.id])],
    ['the old credit-history form', Buffer.from(`${position.time}|${position.id}`).toString('base64url')],
  ])('refuses %s with a clear BAD_REQUEST on the cursor field', (_, cursor) => {
    const error = rejection('images', cursor);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      code: 'BAD_REQUEST',
      message: MALFORMED_CURSOR_MESSAGE,
      details: { field: 'cursor' },
    });
  });

  it('refuses any single-character tampering of a valid cursor, or decodes it to a valid position', () => {
    const cursor = encodeKeysetCursor('images', position);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(fc.nat(cursor.length - 1), fc.constantFrom(...alphabet), (at, char) => {
        const tampered = cursor.slice(0, at) + char + cursor.slice(at + 1);
        const outcome = rejection('images', tampered);
        if (outcome === 'accepted') {
          expect(decodeKeysetCursor('images', tampered).id).toMatch(/^[0-9a-f-]{36}$/);
        } else {
          expect(outcome).toMatchObject({ code: 'BAD_REQUEST' });
        }
      }),
    );
  });

  it('will not encode a position the decoder would refuse', () => {
    expect(() => encodeKeysetCursor('images', { time: '2026-11-26T10:00:00.123Z', id: position.id })).toThrow();
    expect(() => encodeKeysetCursor('Images!', position)).toThrow();
  });
});
