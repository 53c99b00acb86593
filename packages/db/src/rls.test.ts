import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { createTestDatabase, type TestDatabase } from './testing.js';
import { migrateDatabase, schema, withSystem, withUser, type Tx } from './index.js';

/**
 * Row-level security, proved from the runtime role's side: whatever a query forgets,
 * a user's transaction sees and changes only that user's rows, and nothing without a scope.
 */

let database: TestDatabase;
const A = randomUUID();
const B = randomUUID();
/** A user with no rows anywhere but `users`, for inserts that must be refused. */
const C = randomUUID();

const USER_TABLES = ['users', ...schema.PER_USER_TABLES] as const;
type UserTable = (typeof USER_TABLES)[number];
const ownerColumn = (table: UserTable) => (table === 'users' ? 'id' : 'user_id');
const ids: Record<string, { holdId: string; jobId: string; imageId: string; boardId: string }> = {};

async function seedUser(admin: postgres.Sql, userId: string, n: number): Promise<void> {
  const holdId = randomUUID();
  const jobId = randomUUID();
  const imageId = randomUUID();
  const boardId = randomUUID();
  ids[userId] = { holdId, jobId, imageId, boardId };
  await admin.begin(async (q) => {
    await q`insert into users (id, email) values (${userId}, ${`${userId}@example.test`})`;
    await q`insert into subscriptions (user_id, provider_subscription_id, variant_id, tier, status) values (${userId}, ${n}, 1, 'starter', 'active')`;
    await q`insert into credit_balances (user_id, purchased_credits, held_credits) values (${userId}, 90, 10)`;
    await q`insert into credit_holds (id, user_id, idempotency_key, subscription_amount, purchased_amount) values (${holdId}, ${userId}, ${`hold:${userId}`}, 0, 10)`;
    await q`insert into credit_transactions (user_id, type, idempotency_key, purchased_delta, balance_after) values (${userId}, 'purchase', ${`grant:${userId}`}, 100, 100)`;
    await q`insert into credit_transactions (user_id, type, idempotency_key, purchased_delta, held_delta, balance_after, hold_id) values (${userId}, 'hold', ${`hold:${userId}`}, -10, 10, 90, ${holdId})`;
    await q`insert into generation_jobs (id, user_id, prompt, model, width, height, steps, cfg_scale, seed, sampler, estimated_credits, hold_id, priority, queue_score)
            values (${jobId}, ${userId}, 'secret prompt', 'sd15', 512, 512, 20, 7, 1, 'euler_a', 10, ${holdId}, 0, 0)`;
    await q`insert into images (id, user_id, job_id, original_key, thumb_key, width, height, prompt, model, steps, cfg_scale, seed, sampler, engine)
            values (${imageId}, ${userId}, ${jobId}, 'o', 't', 512, 512, 'secret prompt', 'sd15', 20, 7, 1, 'euler_a', 'reference')`;
    await q`insert into boards (id, user_id, name) values (${boardId}, ${userId}, 'private board')`;
    await q`insert into board_images (board_id, image_id, user_id) values (${boardId}, ${imageId}, ${userId})`;
    await q`insert into session_revocations (session_id, user_id, expires_at) values (${randomUUID()}, ${userId}, now() + interval '1 hour')`;
    await q`insert into uploads (user_id, declared_content_type, declared_bytes, raw_key) values (${userId}, 'image/png', 10, ${`uploads/incoming/${userId}`})`;
    await q`insert into webhook_events (provider, event_name, dedupe_key, user_id, payload, outcome) values ('lemonsqueezy', 'order_created', ${`wh:${userId}`}, ${userId}, '{}', 'applied')`;
    await q`insert into email_outbox (user_id, dedupe_key, to_address, template, subject, text_body, html_body) values (${userId}, ${`mail:${userId}`}, 'x@example.test', 'welcome', 's', 't', 'h')`;
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  await seedUser(database.admin, A, 1);
  await seedUser(database.admin, B, 2);
  await database.admin`insert into users (id, email) values (${C}, ${`${C}@example.test`})`;
});
afterAll(async () => {
  await database.drop();
});

const asUser = <T>(userId: string, fn: (tx: Tx) => Promise<T>) => withUser(database.db, userId, fn);
const rows = async (tx: Tx, query: string) => [...(await tx.execute(sql.raw(query)))] as Record<string, unknown>[];
/** The SQLSTATE of a failed query (drizzle wraps the driver's error). */
async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  const error = (await promise.then(
    () => null,
    (e: unknown) => e,
  )) as { code?: string; cause?: { code?: string } } | null;
  return error ? (error.cause?.code ?? error.code ?? 'unknown') : undefined;
}
const INSUFFICIENT_PRIVILEGE = '42501';

/** An insert of a row owned by `owner` (C has no rows, so only RLS can refuse it). */
function insertOwnedBy(table: UserTable, owner: string): string {
  const b = ids[B]!;
  switch (table) {
    case 'users':
      return `insert into users (id, email) values ('${randomUUID()}', 'intruder-${randomUUID()}@example.test')`;
    case 'subscriptions':
      return `insert into subscriptions (user_id, provider_subscription_id, variant_id, tier, status) values ('${owner}', 777, 1, 'pro', 'active')`;
    case 'credit_balances':
      return `insert into credit_balances (user_id, purchased_credits) values ('${owner}', 1000000)`;
    case 'credit_transactions':
      return `insert into credit_transactions (user_id, type, idempotency_key, purchased_delta, balance_after) values ('${owner}', 'adjustment', 'forged-${randomUUID()}', 1000000, 1000000)`;
    case 'credit_holds':
      return `insert into credit_holds (user_id, idempotency_key, subscription_amount, purchased_amount) values ('${owner}', 'forged-${randomUUID()}', 0, 1)`;
    case 'generation_jobs':
      return `insert into generation_jobs (user_id, prompt, model, width, height, steps, cfg_scale, seed, sampler, estimated_credits, priority, queue_score) values ('${owner}', 'p', 'sd15', 512, 512, 20, 7, 1, 'euler_a', 10, 0, 0)`;
    case 'images':
      return `insert into images (user_id, job_id, original_key, thumb_key, width, height, prompt, model, steps, cfg_scale, seed, sampler, engine) values ('${owner}', '${b.jobId}', 'o', 't', 512, 512, 'p', 'sd15', 20, 7, 1, 'euler_a', 'reference')`;
    case 'boards':
      return `insert into boards (user_id, name) values ('${owner}', 'forged')`;
    case 'session_revocations':
      return `insert into session_revocations (session_id, user_id, expires_at) values ('${randomUUID()}', '${owner}', now())`;
    case 'uploads':
      return `insert into uploads (user_id, declared_content_type, declared_bytes, raw_key) values ('${owner}', 'image/png', 1, 'forged-${randomUUID()}')`;
    case 'board_images':
      return `insert into board_images (board_id, image_id, user_id) values ('${b.boardId}', '${ids[A]!.imageId}', '${owner}')`;
  }
}

describe('row-level security, as user A', () => {
  it.each(USER_TABLES)('%s: a query with no WHERE returns only A’s rows', async (table) => {
    const found = await asUser(A, (tx) => rows(tx, `select * from ${table}`));
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((row) => row[ownerColumn(table)] === A)).toBe(true);
  });

  it.each(USER_TABLES)('%s: asking for B’s rows by id returns nothing', async (table) => {
    const found = await asUser(A, (tx) => rows(tx, `select * from ${table} where ${ownerColumn(table)} = '${B}'`));
    expect(found).toEqual([]);
  });

  it.each(USER_TABLES)('%s: inserting a row for another user is refused', async (table) => {
    expect(await sqlState(asUser(A, (tx) => tx.execute(sql.raw(insertOwnedBy(table, C)))))).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
  });

  it.each(USER_TABLES)('%s: updates and deletes of B’s rows affect nothing', async (table) => {
    const column = ownerColumn(table);
    const counts = await asUser(A, async (tx) => ({
      updated: (await tx.execute(sql.raw(`update ${table} set ${column} = ${column} where ${column} = '${B}'`))).count,
      deleted: (await tx.execute(sql.raw(`delete from ${table} where ${column} = '${B}'`))).count,
      // With no WHERE at all, only A's own rows are touched.
      updatedAll: (await tx.execute(sql.raw(`update ${table} set ${column} = ${column}`))).count,
      ownRows: (await rows(tx, `select 1 from ${table}`)).length,
    }));
    expect(counts).toMatchObject({ updated: 0, deleted: 0 });
    expect(counts.updatedAll).toBe(counts.ownRows);
    const [left] =
      await database.admin`select count(*)::int as n from ${database.admin(table)} where ${database.admin(column)} = ${B}`;
    expect(left!.n).toBeGreaterThan(0);
  });

  it.each(USER_TABLES.filter((t) => t !== 'users'))('%s: A cannot hand their own rows to B', async (table) => {
    expect(await sqlState(asUser(A, (tx) => tx.execute(sql.raw(`update ${table} set user_id = '${B}'`))))).toBe(
      INSUFFICIENT_PRIVILEGE,
    );
  });

  it('A cannot take over B’s account row by changing its own id', async () => {
    expect(
      await sqlState(asUser(A, (tx) => tx.execute(sql.raw(`update users set id = '${B}' where id = '${A}'`)))),
    ).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it.each(schema.SYSTEM_ONLY_TABLES)('%s: invisible and unwritable from a user context', async (table) => {
    expect(await asUser(A, (tx) => rows(tx, `select * from ${table}`))).toEqual([]);
    const insert =
      table === 'webhook_events'
        ? `insert into webhook_events (provider, event_name, dedupe_key, payload, outcome) values ('x', 'y', 'forged-${randomUUID()}', '{}', 'applied')`
        : `insert into email_outbox (dedupe_key, to_address, template, subject, text_body, html_body) values ('forged-${randomUUID()}', 'a@b.c', 't', 's', 't', 'h')`;
    expect(await sqlState(asUser(A, (tx) => tx.execute(sql.raw(insert))))).toBe(INSUFFICIENT_PRIVILEGE);
    expect((await asUser(A, (tx) => tx.execute(sql.raw(`delete from ${table}`)))).count).toBe(0);
  });

  it('a user id that is not a UUID is an error, not a wider view', async () => {
    expect(await sqlState(asUser('not-a-uuid', (tx) => rows(tx, 'select * from users')))).toBe('22P02');
  });

  it('the scope ends with the transaction: the next one on the same connection sees nothing', async () => {
    const single = postgres(database.runtimeUrl, { max: 1, onnotice: () => {} });
    try {
      await single.begin(async (q) => {
        await q`select set_config('app.user_id', ${A}, true)`;
        expect((await q`select id from users`).length).toBe(1);
      });
      expect(await single`select id from users`).toEqual([]);
    } finally {
      await single.end({ timeout: 5 });
    }
  });
});

describe('row-level security, with no scope', () => {
  it.each([...USER_TABLES, ...schema.SYSTEM_ONLY_TABLES])(
    '%s: nothing is visible and nothing can be written',
    async (table) => {
      expect(await database.sql.unsafe(`select * from ${table}`)).toEqual([]);
      expect(await database.db.transaction((tx) => rows(tx, `select * from ${table}`))).toEqual([]);
      expect((await database.sql.unsafe(`delete from ${table}`)).count).toBe(0);
    },
  );

  it('inserts are refused', async () => {
    expect(await sqlState(database.sql.unsafe(insertOwnedBy('boards', A)))).toBe(INSUFFICIENT_PRIVILEGE);
  });

  it('the system path sees everyone (the explicit exception)', async () => {
    const all = await withSystem(database.db, (tx) => rows(tx, 'select id from users'));
    expect(all.map((r) => r.id)).toEqual(expect.arrayContaining([A, B, C]));
  });
});

describe('the runtime role', () => {
  it('is no superuser, cannot bypass RLS, and its group is no better', async () => {
    const runtime = postgres(database.runtimeUrl, { max: 1, onnotice: () => {} });
    try {
      const [me] = await runtime`select current_user as name`;
      const roles = await runtime`
        select r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb from pg_roles r
        where r.rolname = current_user or pg_has_role(current_user, r.oid, 'MEMBER')`;
      expect(roles.map((r) => r.rolname)).toEqual(expect.arrayContaining([me!.name, 'pingvas_runtime']));
      for (const role of roles)
        expect(role).toMatchObject({ rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false });
      const owned = await runtime`
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and pg_has_role(current_user, c.relowner, 'USAGE')`;
      expect(owned).toEqual([]);
      const [schemaOwner] =
        await runtime`select pg_has_role(current_user, nspowner, 'USAGE') as owns from pg_namespace where nspname = 'public'`;
      expect(schemaOwner!.owns).toBe(false);
    } finally {
      await runtime.end({ timeout: 5 });
    }
  });

  it('every table in public is covered: RLS enabled and forced, and listed as per-user or system-only', async () => {
    const tables = await database.admin`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname`;
    const known = new Set<string>([...USER_TABLES, ...schema.SYSTEM_ONLY_TABLES]);
    expect(tables.map((t) => t.relname).sort()).toEqual([...known].sort());
    for (const t of tables)
      expect(t, t.relname as string).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
  });
});

describe('migrateDatabase', () => {
  it('is safe to run twice, and twice at once, on a fresh database', async () => {
    const name = `pingvas_mig_${randomBytes(6).toString('hex')}`;
    const adminUrl = new URL(database.adminUrl);
    adminUrl.pathname = `/${name}`;
    const runtimeUrl = new URL(database.runtimeUrl);
    runtimeUrl.pathname = `/${name}`;
    const options = { adminUrl: adminUrl.toString(), runtimeUrl: runtimeUrl.toString() };
    const server = postgres(Object.assign(new URL(database.adminUrl), { pathname: '/postgres' }).toString(), {
      max: 1,
      onnotice: () => {},
    });
    const shape = async () => {
      const fresh = postgres(options.adminUrl, { max: 1, onnotice: () => {} });
      try {
        const [state] = await fresh`
          select (select count(*)::int from pg_policies where schemaname = 'public') as policies,
                 (select count(*)::int from pg_tables where schemaname = 'public') as tables,
                 (select count(*)::int from drizzle.__drizzle_migrations) as migrations`;
        return state;
      } finally {
        await fresh.end({ timeout: 5 });
      }
    };
    try {
      await migrateDatabase(options);
      const first = await shape();
      await migrateDatabase(options);
      await Promise.all([migrateDatabase(options), migrateDatabase(options)]);
      expect(await shape()).toEqual(first);
      expect(first).toMatchObject({ tables: USER_TABLES.length + schema.SYSTEM_ONLY_TABLES.length });
      const runtime = postgres(options.runtimeUrl, { max: 1, onnotice: () => {} });
      try {
        expect(await runtime`select * from users`).toEqual([]);
      } finally {
        await runtime.end({ timeout: 5 });
      }
    } finally {
      await server.unsafe(`drop database if exists "${name}" with (force)`);
      await server.end({ timeout: 5 });
    }
  });
});
