import { describe, expect, it } from 'vitest';
import { affordability, checkParams, formatCredits, formatDelta, formatUsd, transactionLabel } from './credits.js';

const base = { prompt: 'A futuristic city', model: 'sdxl', width: 1024, height: 1024, steps: 30, cfgScale: 7 };

describe('studio form check and estimate', () => {
  it("prices the product spec's SDXL 1024², 30 steps at 90 credits, like the server", () => {
    const check = checkParams(base);
    expect(check).toMatchObject({ ok: true, estimate: 90 });
  });

  it('reports field errors with the shared schema and still prices a prompt-less form', () => {
    const check = checkParams({ ...base, prompt: '   ', width: 1000 });
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.fieldErrors.prompt).toBe('prompt must not be empty');
    expect(check.fieldErrors.width).toBe('width must be a multiple of 64');
    expect(check.estimate).toBeNull();
    const promptless = checkParams({ ...base, prompt: '' });
    expect(promptless).toMatchObject({ ok: false, estimate: 90 });
  });

  it('prices a batch at count × one image, and an img2img at the steps its strength runs', () => {
    const initImage = { uploadId: '7b0c2f1e-9a43-4d2a-8c1b-2f7e6b1d9a10' };
    expect(checkParams({ ...base, count: 4 })).toMatchObject({ ok: true, estimate: 360 });
    // 30 steps × 0.5 strength: it starts at step 15 and runs 16 of the 30 (3 credits each).
    expect(checkParams({ ...base, initImage, strength: 0.5 })).toMatchObject({ ok: true, estimate: 48 });
    // floor(30 × 0.75) + 1 = 23 steps, twice.
    expect(checkParams({ ...base, initImage, strength: 0.75, count: 2 })).toMatchObject({ ok: true, estimate: 138 });
    expect(checkParams({ ...base, prompt: '', initImage, strength: 0.5, count: 2 })).toMatchObject({
      ok: false,
      estimate: 96,
    });
  });

  it('names a mask without an init image and a count out of range, as the API does', () => {
    const masked = checkParams({ ...base, mask: { uploadId: '7b0c2f1e-9a43-4d2a-8c1b-2f7e6b1d9a10' } });
    expect(masked).toMatchObject({ ok: false, fieldErrors: { mask: 'mask needs an initImage to paint over' } });
    const five = checkParams({ ...base, count: 5 });
    expect(five).toMatchObject({ ok: false, fieldErrors: { count: 'count must be at most 4' } });
  });

  it('knows when the balance falls short and by how much', () => {
    expect(affordability(90, 0)).toEqual({ affordable: false, shortBy: 90 });
    expect(affordability(90, 90)).toEqual({ affordable: true, shortBy: 0 });
    expect(affordability(90, undefined)).toEqual({ affordable: true, shortBy: 0 });
  });

  it('formats credits and prices', () => {
    expect(formatCredits(10000)).toBe('10,000');
    expect(formatUsd(7500)).toBe('$75');
    expect(formatUsd(1999)).toBe('$19.99');
  });
});

describe('credit history wording', () => {
  it('labels ledger entries and signs their amounts', () => {
    expect(transactionLabel('hold')).toBe('Reserved for a generation');
    expect(transactionLabel('something_new')).toBe('something new');
    expect(formatDelta(5000)).toBe('+5,000');
    expect(formatDelta(-90)).toBe('−90');
    expect(formatDelta(0)).toBe('0');
  });
});
