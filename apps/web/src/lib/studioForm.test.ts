import { describe, expect, it } from 'vitest';
import {
  defaultForm,
  formFromParams,
  loadSavedForm,
  saveForm,
  toRequest,
  withModel,
  withPreset,
} from './studioForm.js';
import { checkParams } from './credits.js';

describe('studio form', () => {
  it("defaults to the product spec's SDXL 1024², 30 steps (90 credits once a prompt is typed)", () => {
    const form = { ...defaultForm(), prompt: 'A futuristic city' };
    expect(checkParams(toRequest(form))).toMatchObject({
      ok: true,
      estimate: 90,
      params: { width: 1024, height: 1024, steps: 30, model: 'sdxl' },
    });
  });

  it('keeps the aspect ratio when switching model, at the new base size', () => {
    const wide = withPreset(defaultForm(), '16:9');
    expect([wide.width, wide.height]).toEqual([1344, 768]);
    const sd15 = withModel(wide, 'sd15');
    expect(sd15).toMatchObject({ model: 'sd15', size: '16:9', width: 640, height: 384 });
  });

  it('sends a seed only when fixed, and reports an empty fixed seed instead of inventing one', () => {
    expect(toRequest(defaultForm())).not.toHaveProperty('seed');
    const fixed = { ...defaultForm(), prompt: 'x', seedMode: 'fixed' as const, seed: '42' };
    expect(toRequest(fixed).seed).toBe(42);
    const empty = checkParams(toRequest({ ...fixed, seed: '' }));
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.fieldErrors.seed).toBeDefined();
  });

  it('recalls an image: every parameter, a fixed seed, and the preset it matches', () => {
    const form = formFromParams({
      prompt: 'p',
      negativePrompt: 'blurry',
      model: 'sdxl',
      width: 1216,
      height: 832,
      steps: 20,
      cfgScale: 5.5,
      seed: 123,
      sampler: 'heun',
    });
    expect(form).toMatchObject({
      size: '3:2',
      seedMode: 'fixed',
      seed: '123',
      sampler: 'heun',
      negativePrompt: 'blurry',
      cfgScale: 5.5,
    });
    expect(
      formFromParams({
        prompt: 'p',
        model: 'mystery',
        width: 1000,
        height: 512,
        steps: 1,
        cfgScale: 1,
        sampler: 'nope',
      }),
    ).toMatchObject({ model: 'sdxl', size: 'custom', sampler: 'euler_a' });
  });

  it('remembers the last form and survives junk in storage', () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    };
    const form = { ...withPreset(defaultForm(), '2:3'), prompt: 'kept', steps: 12 };
    saveForm(storage, form);
    expect(loadSavedForm(storage)).toMatchObject({ prompt: 'kept', steps: 12, size: '2:3', width: 832, height: 1216 });
    store.set('pingvas.studio.form.v1', '{not json');
    expect(loadSavedForm(storage)).toEqual(defaultForm());
  });
});
