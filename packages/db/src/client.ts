import { drizzle, PostgresJsSession, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema.js';

export type Database = PostgresJsDatabase<typeof schema>;
/** A transaction handle: what withUser / withSystem pass to their callback. */
export type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

export interface DbClient {
  db: Database;
  /** The raw postgres.js client, for the few places drizzle cannot express. */
  sql: postgres.Sql;
  close(): Promise<void>;
}

export function createDbClient(url: string, options: { max?: number; onnotice?: false } = {}): DbClient {
  const client = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
  });
  const db = drizzle(client, { schema });
  return { db, sql: client, close: () => client.end({ timeout: 5 }) };
}

/**
 * The postgres.js handle of a drizzle transaction (same connection, same transaction), for hot
 * paths that want prepared statements and pipelining rather than the query builder.
 */
export function sqlOf(tx: Tx): postgres.TransactionSql {
  const session = tx._.session;
  if (!(session instanceof PostgresJsSession)) throw new Error('expected a postgres.js transaction from withUser/withSystem');
  return session.client as postgres.TransactionSql;
}

/**
 * Runs `fn` in one transaction scoped to `userId`: row-level security then shows and
 * accepts only that user's rows, whatever the queries inside forget.
 */
export async function withUser<T>(db: Database, userId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await sqlOf(tx)`select set_config('app.user_id', ${userId}, true)`;
    return fn(tx);
  });
}

/**
 * The explicit system path (webhooks, worker callbacks, the reconciler, sign-in): one
 * transaction that may see every user's rows. Grep for it to audit every caller.
 */
export async function withSystem<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await sqlOf(tx)`select set_config('app.system', 'on', true)`;
    return fn(tx);
  });
}
