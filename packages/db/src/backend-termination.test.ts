import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './testing.js';
import { createDbClient, sqlOf, withSystem, type Tx } from './index.js';

/**
 * A database blip (failover, `pg_terminate_backend`) must cost the requests in flight, never the
 * process: postgres.js 3.4.9 used to throw an uncaught TypeError from a timer when a transaction
 * wrote (its own ROLLBACK or COMMIT, or the caller's next query) to a connection that had just
 * closed. Vitest fails the run on any such uncaught error. See the package README.
 */

let database: TestDatabase;
/** How a request that lost its connection fails: closed, reset, or the server's own "terminating". */
const CONNECTION_LOST = { code: expect.stringMatching(/^(CONNECTION_CLOSED|ECONNRESET|57P01)$/) };

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

async function terminateRuntimeBackends(): Promise<number> {
  const rows = await database.admin`
    select pg_terminate_backend(pid, 5000) as gone from pg_stat_activity
    where datname = current_database() and usename = current_user is false and pid <> pg_backend_pid()`;
  return rows.filter((row) => row.gone).length;
}

/** Statements are in flight once the server runs the pg_sleep statement they start with. */
async function waitUntilRunning(statementStart: string): Promise<void> {
  for (;;) {
    const [row] = await database.admin`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and state = 'active' and starts_with(query, ${statementStart})`;
    if (row!.n > 0) return;
  }
}

/**
 * A TCP relay in front of PostgreSQL that can reset its client connections (RST): the client's
 * socket then fails with ECONNRESET, an `error` event some time before its `close`, which a
 * terminated backend (an orderly FATAL message and FIN) does not give.
 */
async function startResettingRelay(
  databaseUrl: string,
): Promise<{ url: string; reset(): void; close(): Promise<void> }> {
  const target = new URL(databaseUrl);
  const clients = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    clients.add(client);
    client.on('close', () => (clients.delete(client), upstream.destroy()));
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    reset: () => clients.forEach((client) => client.resetAndDestroy()),
    close: () => new Promise((resolve) => (clients.forEach((c) => c.destroy()), server.close(() => resolve()))),
  };
}

/** Every connection of the pool answers again once the blip is over. */
async function expectPoolHealthy(): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) => withSystem(database.db, (tx) => sqlOf(tx)`select ${i}::int as n`)),
  );
  expect(answers.map(([row]) => row?.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
}

describe('PostgreSQL backends terminated under a running client', () => {
  it('fails the transaction whose backend died mid-query, and the next transactions run', async () => {
    const failed = withSystem(database.db, async (tx) => {
      const q = sqlOf(tx);
      const [me] = await q`select pg_backend_pid() as pid`;
      const sleeping = q`select pg_sleep(5)`.then(
        () => new Error('pg_sleep outlived its backend'),
        (error: unknown) => error,
      );
      await database.admin`select pg_terminate_backend(${me!.pid}, 5000)`;
      // The connection is gone by the time this rejection arrives: postgres.js then writes its
      // ROLLBACK to a connection without a socket (the 3.4.9 crash: a TypeError thrown from a timer).
      throw await sleeping;
    });
    await expect(failed).rejects.toMatchObject(CONNECTION_LOST);
    await expectPoolHealthy();
  });

  it('never lets a transaction that lost its connection write through the connection that replaced it', async () => {
    const runtimeRole = decodeURIComponent(new URL(database.runtimeUrl).username);
    await database.admin`create table blip_probe (note text)`;
    await database.admin.unsafe(`grant select, insert on blip_probe to "${runtimeRole}"`);
    // One connection, so the one that replaces the dead one is the same postgres.js connection.
    const single = createDbClient(database.runtimeUrl, { max: 1 });
    let callbackOver!: () => void;
    const callbackDone = new Promise<void>((resolve) => (callbackOver = resolve));
    const lost = withSystem(single.db, async (tx) => {
      try {
        await carryOnAfterTheBlip(tx);
      } finally {
        callbackOver();
      }
    });
    async function carryOnAfterTheBlip(tx: Tx): Promise<void> {
      const q = sqlOf(tx);
      const [me] = await q`select pg_backend_pid() as pid`;
      // Careless code that swallows the failure and carries on, as a callback can.
      const sleeping = q`select pg_sleep(5)`.then(
        () => undefined,
        () => undefined,
      );
      await database.admin`select pg_terminate_backend(${me!.pid}, 5000)`;
      await sleeping;
      const [other] = await withSystem(single.db, (next) => sqlOf(next)`select 'another request' as said`);
      expect(other?.said).toBe('another request');
      await q`insert into blip_probe (note) values ('written after its transaction died')`;
    }
    await expect(lost).rejects.toMatchObject(CONNECTION_LOST);
    await callbackDone;
    await single.close();
    expect(await database.admin`select note from blip_probe`).toEqual([]);
  });

  it('rejects what a transaction queued after its connection was reset; the next transactions get their own answers', async () => {
    const relay = await startResettingRelay(database.runtimeUrl);
    // One connection: the next transactions run on the connection that replaces the reset one.
    const single = createDbClient(relay.url, { max: 1 });
    try {
      // The sleep fails with ECONNRESET and the transaction queues its ROLLBACK before the close
      // arrives: that ROLLBACK used to stay queued and take the answer of the next query sent.
      const lost = withSystem(single.db, (tx) => sqlOf(tx)`select pg_sleep(5)`);
      await waitUntilRunning('select pg_sleep(5)');
      relay.reset();
      await expect(lost).rejects.toMatchObject(CONNECTION_LOST);
      const answers = await Promise.all(
        [1, 2, 3].map((n) => withSystem(single.db, (tx) => sqlOf(tx)`select ${n}::int as n, 'own answer' as said`)),
      );
      expect(answers.map(([row]) => row)).toEqual([1, 2, 3].map((n) => ({ n, said: 'own answer' })));
    } finally {
      await single.close();
      await relay.close();
    }
  });

  it(
    'settles every pipelined transaction in flight, each with its own answer, when all backends are terminated',
    {
      // Waiting, not timing: on a busy machine 60 transactions and the reconnects take a while.
      timeout: 60_000,
    },
    async () => {
      const inFlight = Array.from({ length: 60 }, (_, i) =>
        withSystem(database.db, async (tx) => {
          const q = sqlOf(tx);
          const [[slow], [fast]] = await Promise.all([
            q`select pg_sleep(0.3), ${i}::int as n`,
            q`select ${i}::int as n`,
          ]);
          await q`select pg_sleep(0.1)`;
          return [slow?.n, fast?.n];
        }),
      );
      const settled = Promise.allSettled(inFlight);
      await waitUntilRunning('select pg_sleep(0.3)');
      expect(await terminateRuntimeBackends()).toBeGreaterThan(0);
      const outcomes = await settled;
      expect(outcomes.filter((o) => o.status === 'rejected').length).toBeGreaterThan(0);
      outcomes.forEach((outcome, i) => outcome.status === 'fulfilled' && expect(outcome.value).toEqual([i, i]));
      await expectPoolHealthy();
    },
  );
});
