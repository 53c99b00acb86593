import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createDbClient, type DbClient } from './client.js';
import { migrateDatabase } from './migrate.js';
import { DEFAULT_TEST_DATABASE_SERVER_URL } from './urls.js';

const SERVER_URL = process.env.TEST_DATABASE_SERVER_URL ?? DEFAULT_TEST_DATABASE_SERVER_URL;
const RUNTIME_ROLE = 'pingvas_test_app';
const MIGRATIONS = fileURLToPath(new URL('../migrations', import.meta.url));

function urlFor(database: string, user: string): string {
  const url = new URL(SERVER_URL);
  url.username = user;
  url.pathname = `/${database}`;
  return url.toString();
}

function adminUser(): string {
  return decodeURIComponent(new URL(SERVER_URL).username) || 'postgres';
}

/** Name of the migrated template for the migrations as they are now (their content hash). */
function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS, { recursive: true }).map(String).sort()) {
    if (file.endsWith('.sql') || file.endsWith('.json'))
      hash.update(file).update(readFileSync(`${MIGRATIONS}/${file}`));
  }
  return `pingvas_tpl_${hash.digest('hex').slice(0, 12)}`;
}

/** Migrates a template database once per migration set; each test database is a copy of it. */
export async function prepareTemplateDatabase(): Promise<string> {
  const name = templateName();
  const server = postgres(urlFor('postgres', adminUser()), { max: 1, onnotice: () => {} });
  try {
    const [exists] = await server`select 1 from pg_database where datname = ${name}`;
    if (exists) return name;
    const building = `${name}_build_${randomBytes(4).toString('hex')}`;
    await migrateDatabase({ adminUrl: urlFor(building, adminUser()), runtimeUrl: urlFor(building, RUNTIME_ROLE) });
    try {
      await server.unsafe(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
    } catch {
      // Another run finished the same template first; ours is a spare.
      await server.unsafe(`DROP DATABASE IF EXISTS "${building}"`);
    }
    return name;
  } finally {
    await server.end({ timeout: 5 });
  }
}

export interface TestDatabase extends DbClient {
  /** The runtime role's URL (RLS applies), as the API gets it. */
  runtimeUrl: string;
  /** The owner's URL, for the test's own bookkeeping and invariant checks. */
  adminUrl: string;
  /** Owner connection: sees everything, RLS aside (it owns the tables but FORCE applies; use withSystem). */
  admin: postgres.Sql;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file; the API connects as a non-superuser role. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = await prepareTemplateDatabase();
  const name = `pingvas_t_${randomBytes(6).toString('hex')}`;
  const server = postgres(urlFor('postgres', adminUser()), { max: 1, onnotice: () => {} });
  await server.unsafe(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  await server.end({ timeout: 5 });
  const runtimeUrl = urlFor(name, RUNTIME_ROLE);
  const adminUrl = urlFor(name, adminUser());
  const client = createDbClient(runtimeUrl, { max: 20 });
  const admin = postgres(adminUrl, { max: 4, onnotice: () => {} });
  return {
    ...client,
    runtimeUrl,
    adminUrl,
    admin,
    async drop() {
      await client.close();
      await admin.end({ timeout: 5 });
      const s = postgres(urlFor('postgres', adminUser()), { max: 1, onnotice: () => {} });
      await s.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await s.end({ timeout: 5 });
    },
  };
}
