import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '@pingvas/testkit';
import { startStudio, type Studio } from '../../../scripts/studio.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Screenshots and axe reports of every browser journey. */
export const ARTIFACTS = resolve(ROOT, 'test-artifacts/e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export interface E2eStudio {
  studio: Studio;
  /** The studio's own database (the owner's connection is `database.admin`). */
  database: TestDatabase;
  browser: Browser;
  /** Uncaught exceptions in any page opened through `newPage`: the studio must not throw. */
  pageErrors: string[];
  newPage(options?: BrowserContextOptions): Promise<Page>;
  close(): Promise<void>;
}

/**
 * The whole studio started the way `npm start` starts it (migrations, embedded S3, API, one
 * reference-engine worker, the built web behind `vite preview`), on its own database, Redis key
 * space and ports so it never meets a studio running beside the tests, and a headless Chromium.
 */
export async function startE2eStudio(name: string, env: Record<string, string> = {}): Promise<E2eStudio> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dataDir = mkdtempSync(resolve(tmpdir(), `pingvas-e2e-${name}-`));
  const database = await createTestDatabase();
  const logs: string[] = [];
  const pageErrors: string[] = [];
  const studio = await startStudio({
    dataDir,
    randomPorts: true,
    skipBuild: process.env.E2E_SKIP_BUILD === '1',
    env: {
      NODE_ENV: 'development',
      DATABASE_URL: database.runtimeUrl,
      DATABASE_ADMIN_URL: database.adminUrl,
      REDIS_PREFIX: `e2e-${name}:${process.pid}:${Date.now()}:`,
      REFENGINE_STEP_MS: process.env.REFENGINE_STEP_MS ?? '120',
      LOG_LEVEL: 'warn',
      ...env,
    },
    log: (line) => void logs.push(line),
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    studio,
    database,
    browser,
    pageErrors,
    async newPage(options = {}) {
      const context = await browser.newContext({
        baseURL: studio.webUrl,
        viewport: { width: 1440, height: 900 },
        ...options,
      });
      context.on('weberror', (error) => pageErrors.push(String(error.error())));
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      return page;
    },
    async close() {
      await browser.close();
      await studio.stop();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
      if (process.env.E2E_SHOW_LOGS === '1') console.log(logs.join('\n'));
    },
  };
}

/** Set-up, not under test: a new account (dev sign-in) that bought 5,000 credits on the test checkout. */
export async function signInWithCredits(page: Page, name: string): Promise<void> {
  await page.goto('/');
  await page.getByTestId('dev-email').fill(`${name}-${Date.now()}@example.com`);
  await page.getByTestId('dev-login-submit').click();
  await page.waitForURL(/\/studio$/);
  await page.goto('/billing');
  await page.getByTestId('buy-5000').click();
  await page.waitForURL(/\/api\/v1\/test-checkout\//, { timeout: 20_000 });
  await page.getByRole('button', { name: 'Pay (test)' }).click();
  await page.waitForURL(/\/billing/, { timeout: 30_000 });
}
