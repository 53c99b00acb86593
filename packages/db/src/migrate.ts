import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../migrations', import.meta.url));
const RUNTIME_GROUP = 'pingvas_runtime';
// Any constant works: it only keeps two migrators from running the same files at once.
const MIGRATION_LOCK_KEY = 720_431_977;

export interface MigrateOptions {
  /** Owner connection: creates the database if missing, owns the tables. */
  adminUrl: string;
  /** The API's connection: its role is made (if missing) a member of pingvas_runtime. */
  runtimeUrl: string;
  log?: (line: string) => void;
}

/** Brings the database to the newest schema. Safe to run again, and from several places at once. */
export async function migrateDatabase({ adminUrl, runtimeUrl, log = () => {} }: MigrateOptions): Promise<void> {
  await ensureDatabaseExists(adminUrl, log);
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await migrate(drizzle(admin), { migrationsFolder: MIGRATIONS_FOLDER });
    await admin.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${RUNTIME_GROUP}`);
    await ensureRuntimeRole(admin, adminUrl, runtimeUrl, log);
    await admin`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    log('database is up to date');
  } finally {
    await admin.end({ timeout: 5 });
  }
}

async function ensureDatabaseExists(adminUrl: string, log: (line: string) => void): Promise<void> {
  const url = new URL(adminUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const maintenance = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    const [found] = await maintenance`select 1 as ok from pg_database where datname = ${name}`;
    if (!found) {
      await maintenance.unsafe(`CREATE DATABASE ${quoteIdent(name)}`);
      log(`created database ${name}`);
    }
  } catch (error) {
    // Another migrator may have created it between our check and our CREATE.
    if ((error as { code?: string }).code !== '42P04') throw error;
  } finally {
    await maintenance.end({ timeout: 5 });
  }
}

async function ensureRuntimeRole(
  admin: postgres.Sql,
  adminUrl: string,
  runtimeUrl: string,
  log: (line: string) => void,
): Promise<void> {
  const runtime = new URL(runtimeUrl);
  const role = decodeURIComponent(runtime.username);
  if (!role) throw new Error('DATABASE_URL must name its user (the runtime role), e.g. postgres://pingvas_app@host/db');
  if (role === decodeURIComponent(new URL(adminUrl).username)) {
    throw new Error(
      `DATABASE_URL uses the admin role ${role}: the API must run as a separate role, or row-level security cannot protect anything`,
    );
  }
  const [existing] = await admin<{ rolsuper: boolean; rolbypassrls: boolean }[]>`
    select rolsuper, rolbypassrls from pg_roles where rolname = ${role}`;
  if (!existing) {
    await admin.unsafe(`CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`);
    log(`created runtime role ${role}`);
  } else if (existing.rolsuper || existing.rolbypassrls) {
    throw new Error(`runtime role ${role} is a superuser or has BYPASSRLS: row-level security would not apply to it`);
  }
  const password = decodeURIComponent(runtime.password);
  if (password) await admin.unsafe(`ALTER ROLE ${quoteIdent(role)} PASSWORD ${quoteLiteral(password)}`);
  await admin.unsafe(`GRANT ${RUNTIME_GROUP} TO ${quoteIdent(role)}`);
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
