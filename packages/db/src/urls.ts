export const DEFAULT_DATABASE_URL = 'postgres://pingvas_app@127.0.0.1:5432/pingvas';
export const DEFAULT_DATABASE_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/pingvas';
/** The PostgreSQL server tests create their per-file databases on (`TEST_DATABASE_SERVER_URL`). */
export const DEFAULT_TEST_DATABASE_SERVER_URL = 'postgres://postgres@127.0.0.1:5432';

/** DATABASE_URL is the API's (runtime) connection; DATABASE_ADMIN_URL owns the schema. */
export function databaseUrlsFromEnv(env: NodeJS.ProcessEnv): { runtimeUrl: string; adminUrl: string } {
  return {
    runtimeUrl: env.DATABASE_URL || DEFAULT_DATABASE_URL,
    adminUrl: env.DATABASE_ADMIN_URL || DEFAULT_DATABASE_ADMIN_URL,
  };
}
