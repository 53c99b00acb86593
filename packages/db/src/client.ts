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
  if (!(session instanceof PostgresJsSession))
    throw new Error('expected a postgres.js transaction from withUser/withSystem');
  return session.client as postgres.TransactionSql;
}

/**
 * Sends the scope statement now and runs `fn` without waiting for its answer: the statement
 * goes first on the transaction's connection, and PostgreSQL runs a connection's statements
 * in order, so every query of `fn` still runs under the scope, and the scope travels in the
 * same round trip as `fn`'s first statements (one round trip less per transaction). If the
 * scope fails, the transaction is aborted, `fn`'s statements fail with it, and the scope's
 * error is what the caller sees.
 */
async function scoped<T>(tx: Tx, scope: postgres.PendingQuery<postgres.Row[]>, fn: (tx: Tx) => Promise<T>): Promise<T> {
  // Handled at once: when the connection dies, the scope rejects while `fn` still waits on
  // other queries, and a rejection left unobserved that long is an unhandled rejection (fatal).
  let scopeFailure: { error: unknown } | undefined;
  const set = scope.execute().then(
    () => undefined,
    (error: unknown) => void (scopeFailure = { error }),
  );
  try {
    const result = await fn(tx);
    await set;
    if (scopeFailure) throw scopeFailure.error;
    return result;
  } catch (err) {
    await set;
    throw scopeFailure ? scopeFailure.error : err;
  }
}

/**
 * Runs `fn` in one transaction scoped to `userId`: row-level security then shows and
 * accepts only that user's rows, whatever the queries inside forget.
 */
export async function withUser<T>(db: Database, userId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction((tx) => scoped(tx, sqlOf(tx)`select set_config('app.user_id', ${userId}, true)`, fn));
}

/**
 * The explicit system path (webhooks, worker callbacks, the reconciler, sign-in): one
 * transaction that may see every user's rows. Grep for it to audit every caller.
 */
export async function withSystem<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction((tx) => scoped(tx, sqlOf(tx)`select set_config('app.system', 'on', true)`, fn));
}
