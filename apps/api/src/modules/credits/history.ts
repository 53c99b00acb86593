import { and, desc, eq, sql } from 'drizzle-orm';
import { decodeKeysetCursor, encodeKeysetCursor, KEYSET_TIME_FORMAT } from '@pingvas/core';
import { schema, withUser, type Database } from '@pingvas/db';

const { creditTransactions: t } = schema;

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
  const after = page.cursor === undefined ? null : decodeKeysetCursor('credit-history', page.cursor);
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
        cursorTime: sql<string>`to_char(${t.createdAt} at time zone 'UTC', ${sql.raw(`'${KEYSET_TIME_FORMAT}'`)})`,
      })
      .from(t)
      .where(
        and(
          eq(t.userId, userId),
          after ? sql`(${t.createdAt}, ${t.id}) < (${after.time}::timestamptz, ${after.id}::uuid)` : undefined,
        ),
      )
      .orderBy(desc(t.createdAt), desc(t.id))
      // One more than asked tells whether there is a next page without a second query.
      .limit(page.limit + 1),
  );
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(({ cursorTime: _, ...item }) => item),
    nextCursor:
      rows.length > page.limit && last
        ? encodeKeysetCursor('credit-history', { time: last.cursorTime, id: last.id })
        : null,
  };
}
