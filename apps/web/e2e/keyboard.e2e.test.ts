import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, signInWithCredits, startE2eStudio, type E2eStudio } from './studio.test-support.js';
import { axeFindings, axeScans, expectAccessible, writeAxeReport } from './axe.test-support.js';

/**
 * The studio with the keyboard alone, the way a screen-reader user drives it: prompt → model
 * → size → Generate → hear "ready" → open the image → star → add to a board → Escape back.
 * After every step it asserts where focus is, and it reads what the status region said.
 * axe checks each screen on the way, in both colour schemes.
 */

const PROMPT = 'A lighthouse on a cliff at night';

let e2e: E2eStudio;
let page: Page;

interface Focused {
  tag: string;
  name: string;
  testId: string | null;
  role: string | null;
  text: string;
}

/** What has focus now, described the way the assertions need it. */
function focused(): Promise<Focused> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    const labelled = el?.getAttribute('aria-labelledby');
    const name =
      el?.getAttribute('aria-label') ??
      (labelled ? document.getElementById(labelled)?.textContent : null) ??
      (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement ? el.labels?.[0]?.textContent : null) ??
      el?.textContent ??
      '';
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      name: name.trim(),
      testId: el?.getAttribute('data-testid') ?? null,
      role: el?.getAttribute('role') ?? null,
      text: (el?.textContent ?? '').trim(),
    };
  });
}

/** Presses Tab until `match` holds for the focused element; fails after `limit` presses. */
async function tabTo(what: string, match: (f: Focused) => boolean, limit = 12): Promise<Focused> {
  for (let presses = 0; presses < limit; presses++) {
    await page.keyboard.press('Tab');
    const now = await focused();
    if (match(now)) return now;
  }
  throw new Error(`${what}: not reached in ${limit} Tab presses (focus is on ${JSON.stringify(await focused())})`);
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

beforeAll(async () => {
  e2e = await startE2eStudio('keys');
  page = await e2e.newPage({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  await signInWithCredits(page, 'keys');
}, 300_000);

afterAll(async () => {
  writeAxeReport(ARTIFACTS, 'axe-keyboard');
  await e2e?.close();
}, 120_000);

describe('the studio by keyboard alone', () => {
  it('prompt → model → size → Generate → hears "ready" → opens it → stars it → adds it to a board → Escape back', async () => {
    await page.goto('/studio');
    await page.getByTestId('balance-value').waitFor();
    expect(await page.title()).toBe('Studio — Pingvas Studio');
    await expectAccessible(page, 'keyboard: studio');

    // The first tab stop skips the header. Start from the top of the document, as a fresh load does
    // (the sign-in redirects on the way here may have left focus on a heading).
    await page.waitForLoadState('networkidle');
    await page.evaluate(() => {
      document.body.tabIndex = -1;
      document.body.focus();
      document.body.removeAttribute('tabindex');
    });
    await page.keyboard.press('Tab');
    expect(await focused()).toMatchObject({ tag: 'a', text: 'Skip to content' });
    await shot('kb-01-skip-link');
    await page.keyboard.press('Enter');
    expect((await focused()).tag).toBe('main');
    await page.keyboard.press('Tab');
    expect((await focused()).testId).toBe('prompt');
    await page.keyboard.type(PROMPT);

    // Model: one tab stop, arrow keys choose.
    const model = await tabTo('the model group', (f) => f.role === 'radio');
    expect(model.testId).toBe('model-sdxl');
    await page.keyboard.press('ArrowRight');
    expect((await focused()).testId).toBe('model-sd15');
    expect(await page.getByTestId('model-sd15').getAttribute('aria-checked')).toBe('true');
    expect(await page.getByTestId('model-sdxl').getAttribute('tabindex')).toBe('-1');
    await shot('kb-02-model-radio');

    // Size: the next Tab goes to the checked ratio, not through every chip.
    await page.keyboard.press('Tab');
    expect((await focused()).testId).toBe('ratio-1:1');
    await page.keyboard.press('ArrowRight');
    const next = await focused();
    expect(next.testId).toMatch(/^ratio-\d+:\d+$/);
    expect(next.testId).not.toBe('ratio-1:1');
    expect(await page.getByTestId(next.testId!).getAttribute('aria-checked')).toBe('true');
    expect(await page.getByTestId('size-readout').textContent()).not.toBe('512 × 512');
    await page.keyboard.press('ArrowLeft');
    expect((await focused()).testId).toBe('ratio-1:1');
    expect(await page.getByTestId('size-readout').textContent()).toBe('512 × 512');

    // Everything the status region says from here on.
    await page.getByTestId('studio-status').evaluate((region) => {
      const said: string[] = [];
      (window as unknown as { said: string[] }).said = said;
      new MutationObserver(() => {
        if (region.textContent) said.push(region.textContent);
      }).observe(region, { childList: true, characterData: true, subtree: true });
    });
    const said = () => page.evaluate(() => (window as unknown as { said: string[] }).said);

    await tabTo('Generate', (f) => f.testId === 'generate');
    await page.keyboard.press('Enter');
    // Busy is aria-disabled, not disabled: focus stays on the button.
    expect((await focused()).testId).toBe('generate');
    await page.getByTestId('job-card').first().waitFor();
    expect((await focused()).testId).toBe('generate');
    await expectAccessible(page, 'keyboard: studio, job running');

    await page
      .waitForFunction(
        () => (window as unknown as { said: string[] }).said.some((s) => s.startsWith('Image ready')),
        undefined,
        { timeout: 60_000 },
      )
      .catch(async (error: unknown) => {
        const card = await page.getByTestId('job-card').first().getAttribute('data-status');
        throw new Error(`the status region said ${JSON.stringify(await said())}; the job card is ${card}`, {
          cause: error,
        });
      });
    const heard = await said();
    expect(heard[0]).toMatch(new RegExp(`^Queued “${PROMPT}”, (next in line|number \\d+ in the queue)\\.$`));
    expect(heard).toContain(`Image ready: “${PROMPT}”.`);
    expect(heard.some((s) => /% done\.$/.test(s))).toBe(true);
    // The estimate is not a live region any more: nothing but the status region spoke.
    expect(await page.locator('[aria-live]:not(.toasts)').count()).toBe(0);
    expect((await focused()).testId).toBe('generate');
    await page.getByTestId('job-image').first().waitFor();
    await expectAccessible(page, 'keyboard: studio, image ready');

    // Open the image: focus lands on the new page's heading, the title names it.
    await tabTo('the new image', (f) => f.tag === 'a' && f.text.includes('reference engine'));
    await page.keyboard.press('Enter');
    await page.getByTestId('detail-image').waitFor();
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    expect(await focused()).toMatchObject({ tag: 'h1', text: 'Image details' });
    expect(await page.title()).toBe(`Image: ${PROMPT} — Pingvas Studio`);
    await expectAccessible(page, 'keyboard: image detail');

    // Star it.
    await tabTo('Star', (f) => f.tag === 'button' && f.text === 'Star');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Starred', pressed: true }).waitFor();
    expect(await focused()).toMatchObject({ tag: 'button', text: 'Starred' });

    // Add it to a new board: the dialog takes focus, and gives it back to its opener.
    await tabTo('Add to board', (f) => f.testId === 'detail-add-to-board');
    await page.keyboard.press('Enter');
    await page.getByTestId('board-picker').waitFor();
    expect((await focused()).testId).toBe('new-board-name');
    await expectAccessible(page, 'keyboard: board picker');
    await shot('kb-03-board-picker');
    await page.keyboard.type('Night scenes');
    await page.keyboard.press('Enter');
    await page.getByTestId('board-picker').waitFor({ state: 'detached' });
    expect((await focused()).testId).toBe('detail-add-to-board');
    await page.getByTestId('detail-boards').filter({ hasText: 'Night scenes' }).waitFor();
    await shot('kb-04-detail-focus-returned');

    // Escape back: the gallery, with focus on the tile of the image just seen.
    await page.keyboard.press('Escape');
    await page.waitForURL(/\/gallery$/);
    await page.waitForFunction(() => document.activeElement?.classList.contains('tile-picture'));
    const tile = await page.evaluate(
      () => document.activeElement?.closest('[data-testid="image-tile"]')?.textContent ?? '',
    );
    expect(tile).toContain(PROMPT);
    expect(await page.title()).toBe('Gallery — Pingvas Studio');
    await shot('kb-05-gallery-tile-focus');
    await page
      .getByTestId('image-tile')
      .first()
      .screenshot({ path: join(ARTIFACTS, 'kb-05b-tile-picture-focus.png') });

    // One tab stop per tile; the arrow keys reach its actions, each named after the image.
    await page.keyboard.press('ArrowRight');
    expect((await focused()).name).toBe(`Select “${PROMPT}”`);
    await page.keyboard.press('ArrowRight');
    expect(await focused()).toMatchObject({ testId: 'tile-star', name: `Star “${PROMPT}”` });
    expect(await page.getByTestId('tile-star').first().getAttribute('aria-pressed')).toBe('true');
    await shot('kb-06-tile-action-focus');
    await page
      .getByTestId('image-tile')
      .first()
      .screenshot({ path: join(ARTIFACTS, 'kb-06b-tile-star-focus.png') });
    await expectAccessible(page, 'keyboard: gallery, tile action focused');
    // Tab leaves the tile from any of its actions: they are not tab stops of their own.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => Boolean(document.activeElement?.closest('[data-testid="image-tile"]')))).toBe(
      false,
    );
    expect(e2e.pageErrors).toEqual([]);
  });

  it('the axe check itself fails on a serious violation, naming the rule (so a clean report means something)', async () => {
    const probe = await e2e.browser.newPage();
    await probe.setContent(
      '<!doctype html><html lang="en"><head><title>Probe</title></head><body><main><h1>Probe</h1>' +
        '<p style="color:#aaa;background:#fff">Faint text</p></main></body></html>',
    );
    await expect(expectAccessible(probe, 'axe self-check')).rejects.toThrow(/serious color-contrast/);
    await probe.close();
    // Not a finding about the studio: kept out of the report.
    for (let i = axeFindings.length - 1; i >= 0; i--)
      if (axeFindings[i]!.state === 'axe self-check') axeFindings.splice(i, 1);
    for (let i = axeScans.length - 1; i >= 0; i--) if (axeScans[i]!.state === 'axe self-check') axeScans.splice(i, 1);
  });

  it('the account menu closes on Escape and gives focus back to its button', async () => {
    await page.getByTestId('user-menu').focus();
    await page.keyboard.press('Enter');
    expect(await page.getByTestId('user-menu').getAttribute('aria-expanded')).toBe('true');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Escape');
    expect(await page.getByTestId('user-menu').getAttribute('aria-expanded')).toBe('false');
    expect((await focused()).testId).toBe('user-menu');
  });
});
