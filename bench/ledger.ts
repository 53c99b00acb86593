/**
 * Ledger throughput: hold + capture transactions per second, through the real ledger
 * functions, next to pgbench running the same statements against the same database.
 *
 * Shape of one operation (ours and pgbench's alike): ONE transaction, as the system path:
 *   BEGIN; set_config('app.system'); hold 10 credits; capture 5 of them; COMMIT
 * where hold = lock the balance row (SELECT … FOR UPDATE), look up the idempotency key,
 * insert the hold, move the balance, insert the entry; and capture = lock the balance,
 * look up the capture key, lock the hold, close it, move the balance, insert the entry.
 * Two loads, 8 concurrent clients each: (a) one hot account, every operation queueing on
 * the same row lock; (b) 1,000 accounts picked at random.
 *
 * pgbench runs the statements twice over: one round trip per statement (the plain script,
 * `-M prepared`), and with the same statements grouped into pipelines as the ledger sends
 * them (`\startpipeline`), so both "ours vs the obvious SQL" and "ours vs the same wire
 * traffic from C" are on the table.
 *
 *   npm run bench:ledger        (BENCH_SECONDS=10 to change the length of each run)
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createTestDatabase } from '@pingvas/testkit';
import { createDbClient, withSystem } from '@pingvas/db';
import { capture, hold } from '../apps/api/src/modules/credits/ledger.js';
import { benchCounts, childEnv, searchPath } from './settings.js';

const { BENCH_SECONDS: SECONDS, BENCH_ROUNDS: ROUNDS } = benchCounts({ BENCH_SECONDS: 10, BENCH_ROUNDS: 3 });
const CLIENTS = 8;
const ACCOUNTS = 1000;
const HOLD = 10;
const CHARGE = 5;
const run = promisify(execFile);

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Account n's id, computable both here and inside pgbench's SQL. */
const accountId = (n: number) => {
  const hex = createHash('md5').update(`bench-${n}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
const sqlAccountId = (n: string) => `md5('bench-' || ${n})::uuid`;

function findPgbench(): string | null {
  for (const candidate of ['/usr/bin/pgbench', ...searchPath().map((dir) => join(dir, 'pgbench'))]) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  return null;
}

interface ClientJob {
  runtimeUrl: string;
  clients: number;
  seconds: number;
  /** 'hot' → account 0; 'spread' → one of 1…ACCOUNTS at random per operation. */
  load: 'hot' | 'spread';
}

/**
 * `job.clients` concurrent clients on one event loop, each running operations back to back
 * on its own connection; returns operations per second after a one-second warm-up.
 */
async function runClients(job: ClientJob): Promise<number> {
  const client = createDbClient(job.runtimeUrl, { max: job.clients });
  const pick = job.load === 'hot' ? () => 0 : () => 1 + Math.floor(Math.random() * ACCOUNTS);
  const operation = () => {
    const userId = accountId(pick());
    return withSystem(client.db, async (tx) => {
      const { hold: h } = await hold(tx, { userId, key: `bench:${randomUUID()}`, amount: HOLD });
      await capture(tx, { userId, holdId: h.id, amount: CHARGE });
    });
  };
  const loop = async (until: number) => {
    let done = 0;
    while (performance.now() < until) {
      await operation();
      done += 1;
    }
    return done;
  };
  try {
    await Promise.all(Array.from({ length: job.clients }, () => loop(performance.now() + 1000)));
    const start = performance.now();
    const counts = await Promise.all(Array.from({ length: job.clients }, () => loop(start + job.seconds * 1000)));
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - start) / 1000);
  } finally {
    await client.close();
  }
}

/**
 * pgbench scripts. Keys are unique per client and run (`seq` counts up per client); the hold
 * id is derived from its key so the capture can name it.
 *
 * `plain`: the obvious SQL, one round trip per statement: lock, key lookup, insert the hold,
 * move the balance, insert the entry; then lock, key lookup, lock the hold, close it, move
 * the balance, insert the entry.
 * `same`: exactly the statements the ledger sends, pipelined as it pipelines them (lock, key
 * lookup and a conditional write in one round trip for the hold; the same plus the hold
 * lock for the capture).
 */
function pgbenchScript(account: string, variant: 'plain' | 'same'): string {
  const uid = sqlAccountId(':n');
  const key = `('pgb:' || :run || ':' || :client_id || ':' || :seq)`;
  const holdId = `md5${key}::uuid`;
  const captureKey = `('capture:' || ${holdId})`;
  const lock = `SELECT subscription_credits, purchased_credits, held_credits FROM credit_balances WHERE user_id = ${uid} FOR UPDATE;`;
  const find = (k: string) => `SELECT * FROM credit_transactions WHERE idempotency_key = ${k};`;
  const lockHold = `SELECT * FROM credit_holds WHERE id = ${holdId} FOR UPDATE;`;
  const head = [`\\set n ${account}`, '\\set seq :seq + 1', 'BEGIN;', "SELECT set_config('app.system', 'on', true);"];
  if (variant === 'plain') {
    return [
      ...head,
      lock,
      find(key),
      `INSERT INTO credit_holds (id, user_id, idempotency_key, subscription_amount, purchased_amount) VALUES (${holdId}, ${uid}, ${key}, 0, ${HOLD}) RETURNING *;`,
      `UPDATE credit_balances SET subscription_credits = subscription_credits + 0, purchased_credits = purchased_credits - ${HOLD}, held_credits = held_credits + ${HOLD}, updated_at = now() WHERE user_id = ${uid};`,
      `INSERT INTO credit_transactions (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id) VALUES (${uid}, 'hold', ${key}, 0, -${HOLD}, ${HOLD}, 0, ${holdId}) RETURNING *;`,
      lock,
      find(captureKey),
      lockHold,
      `UPDATE credit_holds SET status = 'captured', captured_amount = ${CHARGE}, closed_at = now() WHERE id = ${holdId} AND status = 'open';`,
      `UPDATE credit_balances SET subscription_credits = subscription_credits + 0, purchased_credits = purchased_credits + ${HOLD - CHARGE}, held_credits = held_credits - ${HOLD}, updated_at = now() WHERE user_id = ${uid};`,
      `INSERT INTO credit_transactions (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id, description) VALUES (${uid}, 'capture', ${captureKey}, 0, ${HOLD - CHARGE}, -${HOLD}, 0, ${holdId}, 'charged ${CHARGE} of ${HOLD} held') RETURNING *;`,
      'COMMIT;',
      '',
    ].join('\n');
  }
  const holdWrite = `WITH cur AS (
      SELECT subscription_credits AS s, purchased_credits AS p, least(subscription_credits, ${HOLD}) AS take_s FROM credit_balances
      WHERE user_id = ${uid} AND subscription_credits + purchased_credits >= ${HOLD}
        AND NOT EXISTS (SELECT 1 FROM credit_transactions WHERE idempotency_key = ${key})
    ), bal AS (
      UPDATE credit_balances b SET subscription_credits = cur.s - cur.take_s, purchased_credits = cur.p - (${HOLD} - cur.take_s),
        held_credits = b.held_credits + ${HOLD}, updated_at = now()
      FROM cur WHERE b.user_id = ${uid} RETURNING b.subscription_credits + b.purchased_credits AS available
    ), held AS (
      INSERT INTO credit_holds (id, user_id, idempotency_key, reference, subscription_amount, purchased_amount)
      SELECT ${holdId}, ${uid}, ${key}, NULL, cur.take_s, ${HOLD} - cur.take_s FROM cur, bal
    )
    INSERT INTO credit_transactions (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id, reference)
    SELECT ${uid}, 'hold', ${key}, -cur.take_s, -(${HOLD} - cur.take_s), ${HOLD}, bal.available, ${holdId}, NULL FROM cur, bal RETURNING *;`;
  const captureWrite = `WITH hd AS (
      SELECT id, subscription_amount AS s, purchased_amount AS p, least(${CHARGE}, subscription_amount) AS charge_s, reference FROM credit_holds
      WHERE id = ${holdId} AND user_id = ${uid} AND status = 'open' AND subscription_amount + purchased_amount >= ${CHARGE}
        AND NOT EXISTS (SELECT 1 FROM credit_transactions WHERE idempotency_key = ${captureKey})
    ), bal AS (
      UPDATE credit_balances b SET subscription_credits = b.subscription_credits + (hd.s - hd.charge_s),
        purchased_credits = b.purchased_credits + (hd.p - (${CHARGE} - hd.charge_s)), held_credits = b.held_credits - (hd.s + hd.p), updated_at = now()
      FROM hd WHERE b.user_id = ${uid} RETURNING b.subscription_credits + b.purchased_credits AS available
    ), closed AS (
      UPDATE credit_holds h SET status = 'captured', captured_amount = ${CHARGE}, closed_at = now() FROM hd, bal WHERE h.id = hd.id
    )
    INSERT INTO credit_transactions (user_id, type, idempotency_key, subscription_delta, purchased_delta, held_delta, balance_after, hold_id, reference, description)
    SELECT ${uid}, 'capture', ${captureKey}, hd.s - hd.charge_s, hd.p - (${CHARGE} - hd.charge_s), -(hd.s + hd.p), bal.available, hd.id, hd.reference,
      'charged ' || ${CHARGE} || ' of ' || (hd.s + hd.p) || ' held'
    FROM hd, bal RETURNING *;`;
  return [
    ...head,
    '\\startpipeline',
    lock,
    find(key),
    holdWrite,
    '\\endpipeline',
    '\\startpipeline',
    lock,
    find(captureKey),
    lockHold,
    captureWrite,
    '\\endpipeline',
    'COMMIT;',
    '',
  ].join('\n');
}

async function pgbench(bin: string, url: string, script: string, tag: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pingvas-pgbench-'));
  try {
    const file = join(dir, 'ledger.sql');
    writeFileSync(file, script);
    const u = new URL(url);
    const { stdout } = await run(
      bin,
      [
        '-n',
        '-M',
        'prepared',
        '-c',
        String(CLIENTS),
        '-j',
        '2',
        '-T',
        String(SECONDS),
        '-f',
        file,
        '-D',
        'seq=0',
        '-D',
        `run=${tag}`,
        '-h',
        u.hostname,
        '-p',
        u.port || '5432',
        '-U',
        decodeURIComponent(u.username),
        decodeURIComponent(u.pathname.slice(1)),
      ],
      { env: childEnv({ PGPASSWORD: decodeURIComponent(u.password) }) },
    );
    const tps = stdout.match(/tps = ([\d.]+) \(without initial connection time\)/)?.[1];
    const failed = stdout.match(/number of failed transactions: (\d+)/)?.[1];
    if (!tps) throw new Error(`could not read pgbench's tps from:\n${stdout}`);
    if (failed && failed !== '0') throw new Error(`pgbench had ${failed} failed transactions:\n${stdout}`);
    return Number(tps);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const bin = findPgbench();
  const database = await createTestDatabase();
  try {
    const admin = database.admin;
    // Account 0 is the hot one; 1…1000 share the spread load. Each starts with a grant entry
    // so the ledger's invariants hold on this database too.
    await admin.unsafe(`
      insert into users (id, email) select ${sqlAccountId('n')}, 'bench-' || n || '@example.test' from generate_series(0, ${ACCOUNTS}) n;
      insert into credit_balances (user_id, purchased_credits) select ${sqlAccountId('n')}, 1000000000 from generate_series(0, ${ACCOUNTS}) n;
      insert into credit_transactions (user_id, type, idempotency_key, purchased_delta, balance_after)
        select ${sqlAccountId('n')}, 'purchase', 'bench-grant-' || n, 1000000000, 1000000000 from generate_series(0, ${ACCOUNTS}) n;
      analyze;`);

    console.log(`ledger bench: ${CLIENTS} clients, ${SECONDS} s per run, median of ${ROUNDS} alternating rounds`);
    console.log(
      `one operation = ONE transaction: withSystem + hold ${HOLD} + capture ${CHARGE} (pgbench: the same, -c ${CLIENTS} -j 2 -M prepared, as the runtime role)`,
    );
    const loads = [
      { name: '(a) one hot account', load: 'hot' as const, account: '0' },
      {
        name: `(b) ${ACCOUNTS.toLocaleString('en')} accounts`,
        load: 'spread' as const,
        account: `random(1, ${ACCOUNTS})`,
      },
    ];
    for (const [i, load] of loads.entries()) {
      const runs: { ours: number[]; plain: number[]; same: number[] } = { ours: [], plain: [], same: [] };
      const job = { runtimeUrl: database.runtimeUrl, seconds: SECONDS, load: load.load };
      for (let round = 0; round < ROUNDS; round++) {
        runs.ours.push(await runClients({ ...job, clients: CLIENTS }));
        if (bin) {
          runs.plain.push(
            await pgbench(bin, database.runtimeUrl, pgbenchScript(load.account, 'plain'), `${i}p${round}`),
          );
          runs.same.push(await pgbench(bin, database.runtimeUrl, pgbenchScript(load.account, 'same'), `${i}s${round}`));
        }
      }
      const show = (xs: number[]) =>
        `${median(xs).toFixed(0).padStart(5)} op/s [${xs.map((x) => x.toFixed(0)).join(', ')}]`;
      console.log(`\n${load.name}`);
      console.log(`  ours (ledger.ts)              ${show(runs.ours)}`);
      if (bin) {
        console.log(
          `  pgbench, plain statements     ${show(runs.plain)}   ours/pgbench = ${(median(runs.ours) / median(runs.plain)).toFixed(2)}`,
        );
        console.log(
          `  pgbench, the ledger's SQL     ${show(runs.same)}   ours/pgbench = ${(median(runs.ours) / median(runs.same)).toFixed(2)}`,
        );
      }
    }
    if (!bin) {
      console.log('\npgbench not found (looked in /usr/bin and on PATH): install it with');
      console.log(
        '  sudo apt-get install postgresql-contrib   (Debian/Ubuntu; or postgresql-client, which ships pgbench on newer releases)',
      );
    }

    const [check] = await admin`
      select count(*)::int as bad from credit_balances b
      join (select user_id, sum(purchased_delta) p, sum(held_delta) h from credit_transactions group by user_id) t on t.user_id = b.user_id
      where b.purchased_credits <> t.p or b.held_credits <> t.h or b.held_credits <> 0`;
    const [counts] =
      await admin`select count(*)::int as holds, count(*) filter (where status = 'open')::int as open from credit_holds`;
    console.log(
      `\n${counts!.holds.toLocaleString('en')} holds written, ${counts!.open} left open; balances that disagree with their entries: ${check!.bad}`,
    );
    if (check!.bad !== 0 || counts!.open !== 0) process.exitCode = 1;
  } finally {
    await database.drop();
  }
}

await main();
