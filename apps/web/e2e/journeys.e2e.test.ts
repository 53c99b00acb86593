import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, writeAxeReport } from './axe.test-support.js';
import { ARTIFACTS, startE2eStudio, type E2eStudio } from './studio.test-support.js';

/**
 * The product spec's user journeys in a real browser (Debian's Chromium) against the whole studio started
 * the way `npm start` starts it: migrations, embedded S3, API, one reference-engine worker,
 * and the built web behind `vite preview`. Screenshots go to test-artifacts/e2e/. Every screen
 * and dialog is checked with axe in the light and the dark theme (see axe.test-support.ts).
 */

let e2e: E2eStudio;
let page: Page;

async function shot(name: string, target: Page = page): Promise<void> {
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

async function balance(target: Page = page): Promise<number> {
  const text = await target.getByTestId('balance-value').textContent();
  return Number((text ?? '').replace(/[^\d]/g, ''));
}

async function expectBalance(expected: number, target: Page = page): Promise<void> {
  await target
    .waitForFunction(
      (want) =>
        document.querySelector('[data-testid="balance-value"]')?.textContent?.replace(/[^\d]/g, '') === String(want),
      expected,
      { timeout: 20_000 },
    )
    .catch(async () => {
      throw new Error(`balance shows ${await balance(target)}, expected ${expected}`);
    });
}

/** Pays the local test checkout the way a person would: the "Pay (test)" button. */
async function payTestCheckout(): Promise<void> {
  await page.waitForURL(/\/api\/v1\/test-checkout\//, { timeout: 20_000 });
  await shot('checkout-page');
  await expectAccessible(page, 'test checkout');
  await page.getByRole('button', { name: 'Pay (test)' }).click();
  await page.waitForURL(/\/billing/, { timeout: 30_000 });
}

beforeAll(async () => {
  e2e = await startE2eStudio('journeys');
  page = await e2e.newPage({ colorScheme: 'dark' });
}, 300_000);

afterAll(async () => {
  writeAxeReport(ARTIFACTS, 'axe-journeys');
  await e2e?.close();
}, 120_000);

describe('the studio in a browser', () => {
  it('landing: what it does, placeholders, plans with prices, and sign-in', async () => {
    await page.goto('/');
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toContain('Type a prompt');
    await page.getByTestId('plan-pro').waitFor();
    expect(await page.getByTestId('plan-pro').textContent()).toContain('$75');
    expect(await page.getByTestId('pack-5000').textContent()).toContain('$40');
    await page.getByTestId('dev-login-form').waitFor();
    await shot('01-landing');
    await page.getByTestId('plan-pro').scrollIntoViewIfNeeded();
    await shot('01b-landing-pricing');
    await expectAccessible(page, 'landing');
  });

  it('sign up (dev sign-in) → 0 credits → Generate → the insufficient-credits modal', async () => {
    await page.goto('/');
    await page.getByTestId('dev-email').fill(`e2e-${Date.now()}@example.com`);
    await page.getByTestId('dev-login-submit').click();
    await page.waitForURL(/\/studio$/);
    await expectBalance(0);
    // The shared schema speaks before the server is asked: an empty prompt, then the Free plan's pixel budget.
    await page.getByTestId('generate').click();
    expect(await page.getByTestId('error-prompt').textContent()).toBe('prompt must not be empty');
    await page.getByTestId('prompt').fill('A futuristic city');
    await page.getByTestId('ratio-custom').click();
    await page.getByLabel('Width').fill('2048');
    await page.getByLabel('Height').fill('2048');
    expect(await page.getByTestId('error-size').textContent()).toContain('larger than the Free plan allows');
    await shot('02a-field-errors');
    await expectAccessible(page, 'studio with field errors');
    await page.getByTestId('ratio-1:1').click();
    expect(await page.getByTestId('error-size').count()).toBe(0);
    expect(await page.getByTestId('estimate').textContent()).toBe('90 credits');
    await shot('02-studio-empty');
    await page.getByTestId('generate').click();
    const modal = page.getByTestId('insufficient-credits-modal');
    await modal.waitFor();
    expect(await page.getByTestId('modal-remaining').textContent()).toBe('0');
    expect(await page.getByTestId('modal-needed').textContent()).toBe('90');
    await shot('03-insufficient-credits');
    await expectAccessible(page, 'insufficient-credits dialog');
    // Escape closes it and gives focus back to Generate, the control that opened it.
    await page.keyboard.press('Escape');
    await modal.waitFor({ state: 'detached' });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('generate');
    await page.getByTestId('generate').click();
    await modal.waitFor();
  });

  it('upgrade to Pro → pay on the test checkout → 10,000 credits', async () => {
    await page.getByTestId('modal-upgrade').click();
    await page.waitForURL(/\/billing#plans/);
    await page.getByTestId('subscribe-pro').click();
    await payTestCheckout();
    await expectBalance(10_000);
    expect(await page.getByTestId('current-plan').textContent()).toBe('Pro');
    await page
      .getByTestId('plan-term')
      .filter({ hasText: /^Renews on / })
      .waitFor();
    // The test checkout renews 30 days after the payment, made moments ago (maybe just before midnight).
    const renewals = await page.evaluate(() =>
      [-300_000, 0].map(
        (back) =>
          `Renews on ${new Date(Date.now() + back + 30 * 86_400_000).toLocaleDateString(undefined, { dateStyle: 'long' })}`,
      ),
    );
    expect(renewals).toContain(await page.getByTestId('plan-term').textContent());
    expect(await page.getByTestId('manage-subscription').getAttribute('href')).toBeTruthy();
    await shot('04-billing-pro');
    await expectAccessible(page, 'billing');
  });

  it('generate "A futuristic city" (SDXL, 1024×1024, 30 steps): progress moves, the image shows, the balance drops by the charge', async () => {
    await page.goto('/studio');
    await page.getByTestId('prompt').fill('A futuristic city');
    await page.getByTestId('model-sdxl').click();
    await page.getByTestId('ratio-1:1').click();
    expect(await page.getByTestId('size-readout').textContent()).toBe('1024 × 1024');
    expect(await page.getByTestId('estimate').textContent()).toBe('90 credits');
    const before = await balance();
    await page.keyboard.press('Control+Enter');

    const card = page.getByTestId('job-card').first();
    await card.waitFor();
    // The bar must be seen moving: two different readings while the job runs.
    await card.locator('[data-testid="job-progress"]').waitFor({ timeout: 60_000 });
    const readings = new Set<string>();
    let scannedRunning = false;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (await card.getAttribute('data-status')) === 'in_progress') {
      const now = await card
        .locator('[data-testid="job-progress"]')
        .getAttribute('aria-valuenow')
        .catch(() => null);
      if (now !== null) readings.add(now);
      if (readings.size === 2 && !scannedRunning) {
        await shot('05-progress');
        // While it runs (the progress bar and the running card), in both themes.
        await expectAccessible(page, 'studio, job running');
        scannedRunning = true;
      }
      await page.waitForTimeout(100);
    }
    expect(readings.size).toBeGreaterThan(1);
    expect(scannedRunning).toBe(true);

    await card.locator('[data-testid="job-image"]').waitFor({ timeout: 60_000 });
    expect(await card.getAttribute('data-status')).toBe('completed');
    const status = (await card.getByTestId('job-status').textContent()) ?? '';
    const charged = Number(status.match(/Done · ([\d,]+) credits/)?.[1]?.replace(/,/g, ''));
    expect(charged).toBeGreaterThan(0);
    expect(charged).toBeLessThanOrEqual(90);
    await expectBalance(before - charged);
    await card.locator('[data-testid="job-image"]').evaluate((img: HTMLImageElement) => img.decode());
    await shot('06-generated');
    await expectAccessible(page, 'studio, image ready');
  });

  it('gallery → board "My Favorite Landscapes" → add the image → open it → the share link works signed out', async () => {
    await page.goto('/gallery');
    const tile = page.getByTestId('image-tile').first();
    await tile.waitFor();
    expect(await tile.textContent()).toContain('reference engine — no model');
    await tile.hover();
    // The hover caption (the prompt) sits above the engine label, never drawn over it, and the label stays shown.
    const caption = (await tile.locator('.tile-caption').boundingBox())!;
    const label = tile.locator('.engine-label');
    const labelBox = (await label.boundingBox())!;
    expect(caption.y + caption.height).toBeLessThanOrEqual(labelBox.y);
    expect(await label.evaluate((element) => getComputedStyle(element).opacity)).toBe('1');
    await shot('07-gallery');
    await expectAccessible(page, 'gallery, tile hovered');
    await tile.getByTestId('tile-add-to-board').click();
    await page.getByTestId('board-picker').waitFor();
    await expectAccessible(page, 'board picker');
    await page.getByTestId('new-board-name').fill('My Favorite Landscapes');
    await page.getByRole('button', { name: 'Create & add' }).click();
    await page.getByTestId('board-picker').waitFor({ state: 'detached' });

    await page.goto('/boards');
    const boardCard = page.getByTestId('board-card').filter({ hasText: 'My Favorite Landscapes' });
    await boardCard.waitFor();
    expect(await boardCard.textContent()).toContain('1 image');
    await shot('08-boards');
    await expectAccessible(page, 'boards');
    await boardCard.click();
    await page.getByTestId('board-images').getByTestId('image-tile').first().waitFor();
    expect(await page.getByTestId('board-title').textContent()).toContain('My Favorite Landscapes');

    await page.getByTestId('public-toggle').check({ force: true });
    const link = page.getByTestId('share-link');
    await link.waitFor();
    const shareUrl = await link.inputValue();
    expect(shareUrl).toMatch(/\/b\/[A-Za-z0-9_-]{22}$/);
    await shot('09-board-public');
    await expectAccessible(page, 'board, shared');

    const stranger = await e2e.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const view = await stranger.newPage();
    await view.goto(shareUrl);
    await view.getByTestId('public-board-title').waitFor();
    expect(await view.getByTestId('public-board-title').textContent()).toBe('My Favorite Landscapes');
    await view.getByTestId('image-tile').first().waitFor();
    expect(await view.getByTestId('image-tile').first().textContent()).toContain('reference engine — no model');
    await shot('10-public-board', view);
    await expectAccessible(view, 'public board');
    await view.getByTestId('image-tile').first().getByRole('button').click();
    await view.getByRole('dialog').waitFor();
    await expectAccessible(view, 'public board, lightbox');
    await stranger.close();
  });

  it('boards: create from the boards page, rename, delete', async () => {
    await page.goto('/boards');
    await page.getByTestId('new-board').click();
    await page.getByTestId('new-board-dialog').waitFor();
    await expectAccessible(page, 'new-board dialog');
    await page.getByTestId('board-name').fill('Scratch');
    await page.getByTestId('board-create-submit').click();
    await page.waitForURL(/\/boards\/[0-9a-f-]{36}$/);
    await page.getByText('This board is empty').waitFor();
    await page.getByRole('button', { name: 'Rename board' }).click();
    await page.getByTestId('rename-input').fill('Scratch, renamed');
    await page.getByTestId('rename-input').press('Enter');
    await page.getByTestId('board-title').filter({ hasText: 'Scratch, renamed' }).waitFor();
    await page.getByRole('button', { name: 'Delete board' }).click();
    await page.getByTestId('confirm-dialog').waitFor();
    await expectAccessible(page, 'delete-board dialog');
    await page.getByTestId('confirm').click();
    await page.waitForURL(/\/boards$/);
    await page.getByTestId('board-card').first().waitFor();
    expect(await page.getByTestId('board-card').filter({ hasText: 'Scratch' }).count()).toBe(0);
    expect(await page.getByTestId('board-card').count()).toBe(1);
  });

  it('image detail: every parameter, the boards it is on, and "use these settings" fills the studio', async () => {
    await page.goto('/gallery');
    await page.getByTestId('image-tile').first().click();
    await page.getByTestId('detail-image').waitFor();
    expect(await page.getByTestId('detail-prompt').textContent()).toBe('A futuristic city');
    expect(await page.getByTestId('detail-boards').textContent()).toContain('My Favorite Landscapes');
    await shot('11-detail');
    await expectAccessible(page, 'image detail');
    await page.getByTestId('use-settings').click();
    await page.waitForURL(/\/studio$/);
    expect(await page.getByTestId('prompt').inputValue()).toBe('A futuristic city');
    expect(await page.getByTestId('size-readout').textContent()).toBe('1024 × 1024');
  });

  it('cancel a job: the card says so and the unused credits come back', async () => {
    await page.goto('/studio');
    await page.getByTestId('prompt').fill('A lighthouse in a storm');
    await page.getByTestId('ratio-16:9').click();
    expect(await page.getByTestId('size-readout').textContent()).toBe('1344 × 768');
    const held = Number((await page.getByTestId('estimate').textContent())?.replace(/[^\d]/g, ''));
    const before = await balance();
    await page.getByTestId('generate').click();
    const card = page.locator('[data-testid="job-card"]', { hasText: 'A lighthouse in a storm' }).first();
    await card.getByTestId('job-cancel').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-card"]')?.getAttribute('data-status') === 'cancelled',
      undefined,
      { timeout: 30_000 },
    );
    expect(await card.getByTestId('job-status').textContent()).toMatch(/^Cancelled/);
    // A job cancelled while queued costs nothing; one cancelled while running costs its engine seconds.
    await page.waitForFunction(
      (floor) =>
        Number(document.querySelector('[data-testid="balance-value"]')?.textContent?.replace(/[^\d]/g, '')) > floor,
      before - held,
      { timeout: 20_000 },
    );
    expect(await balance()).toBeLessThanOrEqual(before);
    expect(held).toBe(89);
    await shot('11b-cancelled');
    await expectAccessible(page, 'studio, job cancelled');
  });

  it('a job keeps running while the user browses: the gallery gets it and a toast says so', async () => {
    await page.goto('/studio');
    await page.getByTestId('prompt').fill('Snowy mountain lake at dawn');
    await page.getByTestId('model-sd15').click();
    // The form remembers the last size used (16:9), now at SD 1.5's base size.
    expect(await page.getByTestId('size-readout').textContent()).toBe('640 × 384');
    await page.getByTestId('ratio-1:1').click();
    expect(await page.getByTestId('size-readout').textContent()).toBe('512 × 512');
    await page.getByTestId('generate').click();
    await page.locator('[data-testid="job-card"]', { hasText: 'Snowy mountain lake' }).waitFor();
    await page.getByRole('link', { name: 'Gallery' }).click();
    await page.getByTestId('toast').filter({ hasText: 'Your image is ready' }).waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="image-tile"]', { hasText: 'Snowy mountain lake' }).waitFor();
    await shot('11d-ready-elsewhere');
  });

  it('gallery: star, starred filter, search by prompt, multi-select', async () => {
    await page.goto('/gallery');
    const tile = page.getByTestId('image-tile').first();
    await tile.hover();
    await tile.getByTestId('tile-star').click();
    await tile.locator('[data-testid="tile-star"].starred').waitFor();
    await page.waitForLoadState('networkidle');
    await page.getByTestId('starred-filter').click();
    await page.waitForURL(/starred=1/);
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="gallery-grid"] [data-testid="image-tile"]').length === 1,
    );
    await page.getByTestId('starred-filter').click();
    await page.waitForURL((url) => !url.search.includes('starred'));

    await page.getByTestId('gallery-search').fill('zebra');
    await page.getByText('Nothing matches').waitFor();
    await page.getByTestId('gallery-search').fill('city');
    await page.waitForFunction(() => {
      const tiles = document.querySelectorAll('[data-testid="gallery-grid"] [data-testid="image-tile"]');
      return tiles.length === 1 && tiles[0]!.textContent!.includes('A futuristic city');
    });

    await page.getByTestId('image-tile').first().hover();
    await page.getByTestId('image-tile').first().getByTestId('tile-select').click();
    expect(await page.getByTestId('bulk-bar').textContent()).toContain('1 selected');
    await shot('11c-gallery-selected');
    await expectAccessible(page, 'gallery, selecting');
    await page.keyboard.press('Escape');
    expect(await page.getByTestId('bulk-bar').count()).toBe(0);
  });

  it('buy 5,000 credits → the balance goes up by 5,000', async () => {
    await page.goto('/billing');
    const before = await balance();
    await page.getByTestId('buy-5000').click();
    await payTestCheckout();
    await expectBalance(before + 5000);
    await page.getByTestId('transactions').waitFor();
    await page.getByTestId('transactions').scrollIntoViewIfNeeded();
    await shot('12-billing-history');
    await expectAccessible(page, 'billing with history');
  });

  it('a failed renewal payment shows the "update your card" banner; an ended subscription shows its own', async () => {
    const simulate = (event: string) =>
      page.evaluate(async (name) => {
        const response = await fetch(`/api/v1/test-checkout/simulate/${name}`, {
          method: 'POST',
          headers: { 'x-pingvas-csrf': '1' },
        });
        return response.status;
      }, event);
    expect(await simulate('subscription_payment_failed')).toBe(200);
    await page.goto('/studio');
    const banner = page.getByTestId('account-banner');
    await banner.waitFor();
    expect((await banner.textContent())?.toLowerCase()).toContain('payment failed');
    await shot('13-banner-payment-failed');
    await expectAccessible(page, 'studio, payment-failed banner');

    expect(await simulate('subscription_payment_recovered')).toBe(200);
    await page.reload();
    await page.getByTestId('prompt').waitFor();
    await page.getByTestId('balance-value').waitFor();
    expect(await page.getByTestId('account-banner').count()).toBe(0);

    // A cancelled subscription runs to the end of its period; the banner comes when it expires.
    expect(await simulate('subscription_cancelled')).toBe(200);
    await page.goto('/billing');
    await page
      .getByTestId('plan-term')
      .filter({ hasText: /^Ends on .* — access and credits stay until then$/ })
      .waitFor();
    expect(await page.getByTestId('current-plan').textContent()).toBe('Pro');
    await shot('13b-billing-cancelled');
    expect(await simulate('subscription_expired')).toBe(200);
    await page.goto('/billing');
    await page.getByTestId('account-banner').first().waitFor();
    expect(await page.getByTestId('account-banner').first().textContent()).toContain(
      'update payment method to reactivate',
    );
    expect(await page.getByTestId('current-plan').textContent()).toBe('Free');
    await shot('14-banner-cancelled');
    await expectAccessible(page, 'billing, subscription-ended banner');
  });

  it('a phone-sized studio, a 404 page, and sign-out', async () => {
    const phone = await e2e.browser.newContext({
      baseURL: e2e.studio.webUrl,
      viewport: { width: 390, height: 844 },
      colorScheme: 'light',
      storageState: await page.context().storageState(),
    });
    const mobile = await phone.newPage();
    await mobile.goto('/studio');
    await mobile.getByTestId('prompt').waitFor();
    await shot('15-phone-studio', mobile);
    await expectAccessible(mobile, 'phone: studio');
    await mobile.goto('/gallery');
    await mobile.getByTestId('image-tile').first().waitFor();
    await shot('16-phone-gallery', mobile);
    await expectAccessible(mobile, 'phone: gallery');
    await phone.close();

    await page.goto('/no/such/page');
    await page.getByRole('heading', { name: 'This page does not exist' }).waitFor();
    await shot('17-not-found');
    await expectAccessible(page, 'not found');

    await page.goto('/studio');
    await page.getByTestId('user-menu').click();
    await expectAccessible(page, 'account menu');
    await page.getByTestId('sign-out').click();
    await page.waitForURL((url) => url.pathname === '/');
    await page.goto('/studio');
    await page.waitForURL(/\/\?next=/);
    await page.getByTestId('dev-login-form').waitFor();
    expect(e2e.pageErrors).toEqual([]);
  });
});
