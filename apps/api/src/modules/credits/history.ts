import { and, desc, eq, sql } from 'drizzle-orm';
import { DomainError } from '@pingvas/core';
import { schema, withUser, type Database } from '@pingvas/db';

const { creditTransactions: t } = schema;

/**
 * A keyset position in a user's credit history: the (created_at, id) of the last row a page
 * showed. The time travels as PostgreSQL renders it, to the microsecond: a JS Date keeps only
 * milliseconds, and every entry of one ledger transaction shares the same now(), so anything
 * coarser would skip or repeat rows. Opaque to clients (base64url).
 */
interface Cursor {
  time: string;
  id: string;
}

const CURSOR_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.time}|${cursor.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  const [time, id, ...rest] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  if (rest.length || !time || !id || !TIME.test(time) || !UUID.test(id)) throw malformedCursor();
  // The pattern lets calendar nonsense (2026-02-30) through; PostgreSQL would refuse it later.
  const date = new Date(time);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 19) !== time.slice(0, 19)) throw malformedCursor();
  return { time, id };
}

function malformedCursor(): DomainError<'BAD_REQUEST'> {
  return new DomainError('BAD_REQUEST', 'The page cursor is malformed; start again from the first page.', { field: 'cursor' });
}

export interface HistoryItem {
  id: string;
  type: (typeof schema.CREDIT_TRANSACTION_TYPES)[number];
  /** The change of the spendable balance (subscription + purchased). */
  amount: number;
  heldDelta: number;
  balanceAfter: number;
  reference: string | null;
  description: string | null;
  createdAt: Date;
}

/** One page of the user's credit history, newest first. */
export async function listTransactions(
  db: Database,
  userId: string,
  page: { cursor?: string; limit: number },
): Promise<{ items: HistoryItem[]; nextCursor: string | null }> {
  const after = page.cursor === undefined ? null : decodeCursor(page.cursor);
  const rows = await withUser(db, userId, (tx) =>
    tx
      .select({
        id: t.id,
        type: t.type,
        amount: sql<number>`(${t.subscriptionDelta} + ${t.purchasedDelta})::int`,
        heldDelta: t.heldDelta,
        balanceAfter: t.balanceAfter,
        reference: t.reference,
        description: t.description,
        createdAt: t.createdAt,
        cursorTime: sql<string>`to_char(${t.createdAt} at time zone 'UTC', ${sql.raw(`'${CURSOR_TIME_FORMAT}'`)})`,
      })
      .from(t)
      .where(and(
        eq(t.userId, userId),
        after ? sql`(${t.createdAt}, ${t.id}) < (${after.time}::timestamptz, ${after.id}::uuid)` : undefined,
      ))
      .orderBy(desc(t.createdAt), desc(t.id))
      // One more than asked tells whether there is a next page without a second query.
      .limit(page.limit + 1),
  );
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(({ cursorTime: _, ...item }) => item),
    nextCursor: rows.length > page.limit && last ? encodeCursor({ time: last.cursorTime, id: last.id }) : null,
  };
}
