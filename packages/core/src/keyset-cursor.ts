import { DomainError } from './errors.js';

/**
 * The one codec of every keyset-paginated list's page cursor: the (timestamp, uuid) of the last
 * row a page showed, plus the list it belongs to, so a cursor of one list replayed on another is
 * refused instead of silently paging the wrong rows. The timestamp travels as PostgreSQL renders
 * it at full microsecond precision (`KEYSET_TIME_FORMAT`): a JS Date keeps only milliseconds, and
 * rows a few microseconds apart (every entry of one ledger transaction shares its now()) would be
 * skipped or repeated. The wire form is opaque to clients: base64url of `[list, time, id]`.
 */

export interface KeysetPosition {
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC. */
  time: string;
  id: string;
}

/** PostgreSQL `to_char` pattern that renders a timestamptz (at time zone 'UTC') the way cursors carry it. */
export const KEYSET_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';

const LIST = /^[a-z][a-z-]*$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const MALFORMED_CURSOR_MESSAGE = 'The page cursor is malformed; start again from the first page.';

export function encodeKeysetCursor(list: string, position: KeysetPosition): string {
  if (!LIST.test(list) || !isValidPosition(position.time, position.id)) {
    throw new Error(`not a keyset position of list ${list}: ${JSON.stringify(position)}`);
  }
  return toBase64Url(JSON.stringify([list, position.time, position.id]));
}

/** The position a cursor of `list` carries; anything else is a BAD_REQUEST naming the cursor field. */
export function decodeKeysetCursor(list: string, cursor: string): KeysetPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromBase64Url(cursor));
  } catch {
    throw malformedCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw malformedCursor();
  const [cursorList, time, id] = parsed as unknown[];
  if (cursorList !== list || typeof time !== 'string' || typeof id !== 'string') throw malformedCursor();
  if (!isValidPosition(time, id)) throw malformedCursor();
  return { time, id };
}

function isValidPosition(time: string, id: string): boolean {
  if (!TIME.test(time) || !UUID.test(id)) return false;
  // The pattern lets calendar nonsense (2026-02-30) through; PostgreSQL would refuse it later.
  const date = new Date(time);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 19) === time.slice(0, 19);
}

function malformedCursor(): DomainError<'BAD_REQUEST'> {
  return new DomainError('BAD_REQUEST', MALFORMED_CURSOR_MESSAGE, { field: 'cursor' });
}

// btoa/atob rather than Buffer: core also runs in the browser. The JSON is ASCII (checked above).
function toBase64Url(ascii: string): string {
  return btoa(ascii).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
  return atob(text.replace(/-/g, '+').replace(/_/g, '/'));
}
