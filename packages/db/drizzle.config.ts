import { defineConfig } from 'drizzle-kit';
import { databaseUrlsFromEnv } from './src/urls.js';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './migrations',
  dbCredentials: { url: databaseUrlsFromEnv(process.env).adminUrl },
});
