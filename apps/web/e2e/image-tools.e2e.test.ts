import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateImg2img, estimateTxt2img, estimateUpscale } from '@pingvas/core';
import { expectAccessible, writeAxeReport } from './axe.test-support.js';
import { ARTIFACTS, signInWithCredits, startE2eStudio, type E2eStudio } from './studio.test-support.js';

/**
 * The image tools in a real browser against the whole studio (API, worker, reference engine):
 * upload a picture → image-to-image; paint a mask → inpaint; a batch of 4; a live preview on
 * the job card mid-run; upscale from the gallery, and the image page's lineage and recall.
 * Everything at SD 1.5's 512², the cheapest size, so the bought credits cover every job.
 */

let e2e: E2eStudio;
let page: Page;
const SIZE = { model: 'sd15' as const, width: 512, height: 512 };

async function shot(name: string, target: Page = page): Promise<void> {
  await target.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: false });
}

async function estimate(): Promise<number> {
  return Number((await page.getByTestId('estimate').textContent())?.replace(/[^\d]/g, ''));
}

/** The newest job card, once its job has finished; fails with what the card says otherwise. */
async function finished(card: Locator, timeout = 90_000): Promise<void> {
  await card
    .locator('[data-testid="job-image"]')
    .first()
    .waitFor({ timeout })
    .catch(async (error: unknown) => {
      const status = await card.getAttribute('data-status');
      const said = await card.getByTestId('job-status').textContent();
      throw new Error(`the job card is ${status}: ${said}`, { cause: error });
    });
  expect(await card.getAttribute('data-status')).toBe('completed');
}

/** A fresh studio form at 512² SD 1.5, 30 steps, one image, with this prompt. */
async function studioWith(prompt: string): Promise<void> {
  await page.goto('/studio');
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('model-sd15').click();
  await page.getByTestId('ratio-1:1').click();
  await page.getByTestId('steps').fill('30');
  await page.getByTestId('count-1').click();
  expect(await page.getByTestId('size-readout').textContent()).toBe('512 × 512');
}

/** A real picture to upload: a screenshot of the studio itself, as a PNG. */
async function picture(): Promise<Buffer> {
  return page.screenshot({ clip: { x: 0, y: 0, width: 640, height: 480 }, type: 'png' });
}

beforeAll(async () => {
  e2e = await startE2eStudio('image-tools');
  page = await e2e.newPage({ colorScheme: 'dark' });
  await signInWithCredits(page, 'tools');
}, 300_000);

afterAll(async () => {
  writeAxeReport(ARTIFACTS, 'axe-image-tools');
  await e2e?.close();
}, 120_000);

describe('the image tools in a browser', () => {
  it('upload a picture → image to image: progress, the picture, strength prices the job, the result', async () => {
    await studioWith('A watercolour of the studio');
    const txt2img = await estimate();
    expect(txt2img).toBe(estimateTxt2img({ ...SIZE, steps: 30 }));

    // A file the studio refuses is named before anything is sent.
    await page
      .getByTestId('init-file')
      .setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
    expect(await page.getByTestId('upload-error').textContent()).toBe(
      '“notes.txt” is not a PNG, JPEG or WebP picture.',
    );

    await page
      .getByTestId('init-file')
      .setInputFiles({ name: 'studio.png', mimeType: 'image/png', buffer: await picture() });
    await page.getByTestId('init-preview').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('init-image').textContent()).toContain('640 × 480');
    expect(await page.getByTestId('strength').inputValue()).toBe('0.75');
    expect(await estimate()).toBe(estimateImg2img({ ...SIZE, steps: 30, strength: 0.75 }));
    await page.getByTestId('strength').fill('0.5');
    expect(await estimate()).toBe(estimateImg2img({ ...SIZE, steps: 30, strength: 0.5 }));
    await shot('tools-01-init-image');
    await expectAccessible(page, 'studio with a starting image');

    await page.getByTestId('generate').click();
    const card = page.locator('[data-testid="job-card"][data-kind="img2img"]').first();
    await card.waitFor();
    await finished(card);
    await shot('tools-02-img2img-done');
  });

  it('paint a mask → inpaint: brush, undo, the mask is uploaded and the job uses it', async () => {
    // The starting image is still in the form from the last journey.
    await page.getByTestId('prompt').fill('The studio, with a moon in the corner');
    await page.getByTestId('paint-mask').click();
    const dialog = page.getByTestId('mask-dialog');
    await dialog.waitFor();
    await expectAccessible(page, 'mask editor');
    const canvas = page.getByTestId('mask-canvas');
    const box = (await canvas.boundingBox())!;
    const stroke = async (from: [number, number], to: [number, number]) => {
      await page.mouse.move(box.x + box.width * from[0], box.y + box.height * from[1]);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * to[0], box.y + box.height * to[1], { steps: 12 });
      await page.mouse.up();
    };
    await stroke([0.6, 0.1], [0.9, 0.3]);
    const painted = await page.getByTestId('mask-coverage').textContent();
    expect(painted).not.toMatch(/^0%/);
    await stroke([0.1, 0.7], [0.3, 0.9]);
    await page.getByTestId('mask-undo').click();
    expect(await page.getByTestId('mask-coverage').textContent()).toBe(painted);
    await shot('tools-03-mask');
    await page.getByTestId('mask-apply').click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    await page.getByTestId('mask-preview').waitFor();
    expect(await page.getByTestId('init-image').textContent()).toContain('with a mask (inpainting)');

    await page.getByTestId('generate').click();
    const card = page.locator('[data-testid="job-card"][data-kind="inpaint"]').first();
    await card.waitFor();
    await finished(card);
    await shot('tools-04-inpaint-done');
    await page.getByTestId('init-remove').click();
    expect(await page.getByTestId('init-file').count()).toBe(1);
  });

  it('a batch of 4: priced ×4, one job card with all four images', async () => {
    await studioWith('Four lighthouses');
    await page.getByTestId('count-4').click();
    expect(await estimate()).toBe(estimateTxt2img({ ...SIZE, steps: 30, count: 4 }));
    await page.getByTestId('generate').click();
    const card = page.locator('[data-testid="job-card"][data-count="4"]').first();
    await card.waitFor();
    await finished(card);
    await card.getByTestId('job-batch').waitFor();
    expect(await card.getByTestId('job-image').count()).toBe(4);
    await shot('tools-05-batch');
    await expectAccessible(page, 'studio, a batch done');
  });

  it('a live preview replaces the placeholder while the job runs', async () => {
    // 100 steps at the reference engine's pace leave several seconds of previews.
    await studioWith('A slow sunrise');
    await page.getByTestId('steps').fill('100');
    await page.getByTestId('generate').click();
    const card = page.locator('[data-testid="job-card"]', { hasText: 'A slow sunrise' }).first();
    const preview = card.getByTestId('job-preview');
    await preview.waitFor({ timeout: 60_000 });
    expect(await card.getAttribute('data-status')).toBe('in_progress');
    expect(await preview.getAttribute('src')).toMatch(/^data:image\/webp;base64,/);
    await preview.evaluate((img: HTMLImageElement) => img.decode());
    await shot('tools-06-preview-mid-run');
    await finished(card);
    expect(await card.getByTestId('job-preview').count()).toBe(0);
  });

  it('upscale from the gallery: the price, the job, and the lineage both ways', async () => {
    await page.goto('/gallery');
    await page.locator('[data-testid="image-tile"]', { hasText: 'A slow sunrise' }).first().click();
    await page.getByTestId('detail-image').waitFor();
    expect(await page.getByTestId('detail-kind').textContent()).toBe('Text to image');
    const parentUrl = page.url();
    const price = estimateUpscale({ width: 512, height: 512 }, 2);
    await page
      .getByTestId('upscale-2')
      .filter({ hasText: `${price} credits` })
      .waitFor();
    await shot('tools-07-detail-upscale');
    await expectAccessible(page, 'image detail with image tools');
    await page.getByTestId('upscale-2').click();
    await page.waitForURL(/\/studio$/);
    const card = page.locator('[data-testid="job-card"][data-kind="upscale"]').first();
    await finished(card);
    expect(await card.textContent()).toContain('1024×1024');

    await card.getByTestId('job-image').click();
    await page.getByTestId('detail-image').waitFor();
    expect(await page.getByTestId('detail-kind').textContent()).toBe('Upscale');
    await page.getByTestId('lineage-parent').click();
    await page.waitForURL(parentUrl);
    await page.getByTestId('lineage-children').waitFor();
    await shot('tools-08-lineage');
  });

  it('the image page of an inpainting: "use these settings" brings back its starting image and mask', async () => {
    await page.goto('/gallery');
    await page.locator('[data-testid="image-tile"]', { hasText: 'moon in the corner' }).first().click();
    await page.getByTestId('detail-image').waitFor();
    expect(await page.getByTestId('detail-kind').textContent()).toBe('Inpaint');
    await page.getByTestId('source-init').waitFor();
    await page.getByTestId('source-mask').waitFor();
    await page.getByTestId('use-settings').click();
    await page.waitForURL(/\/studio$/);
    // The form takes the recalled settings once the studio has mounted.
    await page.getByTestId('toast').filter({ hasText: 'Settings loaded' }).waitFor();
    expect(await page.getByTestId('toast').filter({ hasText: 'Settings loaded' }).count()).toBe(1);
    expect(await page.getByTestId('prompt').inputValue()).toBe('The studio, with a moon in the corner');
    await page.getByTestId('init-preview').waitFor();
    await page.getByTestId('mask-preview').waitFor();
    expect(await page.getByTestId('strength').inputValue()).toBe('0.5');
    await shot('tools-09-recalled-inpaint');
    expect(e2e.pageErrors).toEqual([]);
  });

  it('from an image page: "use as starting image" starts an img2img from it, "more like this" queues 4 new ones', async () => {
    await page.goto('/gallery');
    await page.locator('[data-testid="image-tile"]', { hasText: 'Four lighthouses' }).first().click();
    await page.getByTestId('detail-image').waitFor();
    const imageUrl = page.url();
    await page.getByTestId('use-as-start').click();
    await page.waitForURL(/\/studio$/);
    await page.getByTestId('init-preview').waitFor();
    expect(await page.getByTestId('init-image').textContent()).toContain('Gallery image');
    await page.getByTestId('prompt').fill('Lighthouses at night');
    await page.getByTestId('generate').click();
    const img2img = page.locator('[data-testid="job-card"][data-kind="img2img"]', { hasText: 'Lighthouses at night' });
    await finished(img2img.first());

    await page.goto(imageUrl);
    const more = page.getByTestId('more-like-this');
    expect(await more.textContent()).toContain(`${estimateTxt2img({ ...SIZE, steps: 30, count: 4 })} credits`);
    await more.click();
    await page.waitForURL(/\/studio$/);
    const batch = page.locator('[data-testid="job-card"][data-count="4"]', { hasText: 'Four lighthouses' }).first();
    await finished(batch);
    expect(await batch.getByTestId('job-image').count()).toBe(4);
    await shot('tools-10-more-like-this');
    expect(e2e.pageErrors).toEqual([]);
  });
});
