import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startE2eStudio, type E2eStudio } from './studio.test-support.js';

/**
 * The billing journey in a real browser against the whole studio (started as `npm start`
 * does, with the local test checkout standing in for Lemon Squeezy): a starter customer
 * changes to Pro in place — the page shows the new plan and credits, and no second checkout
 * (so no second subscription) is ever opened.
 */

let e2e: E2eStudio;
let page: Page;
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
  e2e = await startE2eStudio('billing');
  page = await e2e.newPage();
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visited.push(frame.url());
  });
}, 300_000);

afterAll(async () => {
  await e2e?.close();
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

    const subscriptions = await e2e.database.admin`
      select s.tier, s.status from subscriptions s join users u on u.id = s.user_id where u.email = ${email}`;
    expect(subscriptions.map((s) => `${s.tier}:${s.status}`)).toEqual(['pro:active']);
    expect(e2e.pageErrors).toEqual([]);
  });
});
