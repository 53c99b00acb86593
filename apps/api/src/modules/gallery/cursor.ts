import { DomainError } from '@pingvas/core';

/**
 * A keyset position: the (timestamp, uuid) of the last row a page showed. The timestamp
 * travels as PostgreSQL renders it at full microsecond precision, because a JS Date keeps
 * only milliseconds and two rows a few microseconds apart would then be skipped or repeated.
 * `kind` keeps a gallery cursor (image time) from being replayed on a board (time added).
 */
export type CursorKind = 'images' | 'board';

export interface Cursor {
  time: string;
  id: string;
}

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** SQL text that renders a timestamptz the way cursors carry it (UTC, microseconds). */
export const CURSOR_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

export function encodeCursor(kind: CursorKind, cursor: Cursor): string {
  return Buffer.from(JSON.stringify([kind, cursor.time, cursor.id])).toString('base64url');
}

export function decodeCursor(kind: CursorKind, text: string): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw malformed();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw malformed();
  const [k, time, id] = parsed as unknown[];
  if (k !== kind || typeof time !== 'string' || typeof id !== 'string') throw malformed();
  if (!TIME.test(time) || !UUID.test(id)) throw malformed();
  // Rejects calendar nonsense (2026-02-30) that the pattern lets through and PostgreSQL would refuse.
  const date = new Date(time);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 19) !== time.slice(0, 19)) throw malformed();
  return { time, id };
}

function malformed(): DomainError<'BAD_REQUEST'> {
  return new DomainError('BAD_REQUEST', 'The page cursor is malformed; start again from the first page.', { field: 'cursor' });
}
