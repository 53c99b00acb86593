import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@pingvas/testkit';
import { startStudio, type Studio } from '../../../scripts/studio.js';

/**
 * The billing journey in a real browser against the whole studio (started as `npm start`
 * does, with the local test checkout standing in for Lemon Squeezy): a starter customer
 * changes to Pro in place — the page shows the new plan and credits, and no second checkout
 * (so no second subscription) is ever opened.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ARTIFACTS = resolve(ROOT, 'test-artifacts/e2e');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let studio: Studio;
let browser: Browser;
let page: Page;
let dataDir: string;
let database: TestDatabase;
const logs: string[] = [];
const pageErrors: string[] = [];
/** Every URL the page navigated to: a checkout page among them after "Change plan" would be a second subscription. */
const visited: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

async function waitForText(testId: string, expected: string): Promise<void> {
  await page
    .waitForFunction(
      ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === want,
      [testId, expected] as const,
      { timeout: 20_000 },
    )
    .catch(async () => {
      throw new Error(`${testId} shows ${await page.getByTestId(testId).textContent()}, expected ${expected}`);
    });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'pingvas-e2e-billing-'));
  database = await createTestDatabase();
  studio = await startStudio({
    dataDir,
    randomPorts: true,
    skipBuild: process.env.E2E_SKIP_BUILD === '1',
    env: {
      NODE_ENV: 'development',
      DATABASE_URL: database.runtimeUrl,
      DATABASE_ADMIN_URL: database.adminUrl,
      REDIS_PREFIX: `e2e-billing:${process.pid}:${Date.now()}:`,
      LOG_LEVEL: 'warn',
    },
    log: (line) => {
      logs.push(line);
    },
  });
  browser = await chromium.launch({
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
  const context = await browser.newContext({ baseURL: studio.webUrl, viewport: { width: 1440, height: 900 } });
  context.on('weberror', (error) => pageErrors.push(String(error.error())));
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visited.push(frame.url());
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await studio?.stop();
  await database?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (process.env.E2E_SHOW_LOGS === '1') console.log(logs.join('\n'));
}, 120_000);

describe('billing in a browser', () => {
  it('a starter customer changes to Pro with "Change plan": new plan and credits, no second checkout', async () => {
    const email = `e2e-billing-${Date.now()}@example.com`;
    await page.goto('/');
    await page.getByTestId('dev-email').fill(email);
    await page.getByTestId('dev-login-submit').click();
    await page.waitForURL(/\/studio$/);

    await page.goto('/billing');
    await page.getByTestId('subscribe-starter').click();
    await page.waitForURL(/\/api\/v1\/test-checkout\//, { timeout: 20_000 });
    await page.getByRole('button', { name: 'Pay (test)' }).click();
    await page.waitForURL(/\/billing/, { timeout: 30_000 });
    await waitForText('current-plan', 'Starter');
    await waitForText('billing-balance', '2,000');
    await shot('billing-01-starter');

    // With a live subscription the page offers a plan change in place, and says its rules.
    await page.getByTestId('change-plan-pro').waitFor();
    expect(await page.getByTestId('subscribe-pro').count()).toBe(0);
    expect(await page.getByTestId('plan-change-rules').textContent()).toContain('Moving up applies at once');

    const checkoutsBefore = visited.filter((url) => url.includes('/test-checkout/')).length;
    await page.getByTestId('change-plan-pro').click();
    await waitForText('current-plan', 'Pro');
    // Upgrade inside the period: the 2,000 left rise by the difference (8,000), up to Pro's 10,000.
    await waitForText('billing-balance', '10,000');
    expect(page.url()).toMatch(/\/billing/);
    expect(visited.filter((url) => url.includes('/test-checkout/')).length).toBe(checkoutsBefore);
    await page.getByTestId('change-plan-starter').waitFor();
    await shot('billing-02-pro');

    const subscriptions = await database.admin`
      select s.tier, s.status from subscriptions s join users u on u.id = s.user_id where u.email = ${email}`;
    expect(subscriptions.map((s) => `${s.tier}:${s.status}`)).toEqual(['pro:active']);
    expect(pageErrors).toEqual([]);
  });
});
