import { migrateDatabase } from './migrate.js';
import { databaseUrlsFromEnv } from './urls.js';

try {
  await migrateDatabase({ ...databaseUrlsFromEnv(process.env), log: (line) => console.log(`[db:migrate] ${line}`) });
} catch (error) {
  console.error(`[db:migrate] ${(error as Error).message}`);
  process.exit(1);
}
