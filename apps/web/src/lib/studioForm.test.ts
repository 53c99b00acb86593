import { describe, expect, it } from 'vitest';
import {
  defaultForm,
  formFromParams,
  loadSavedForm,
  saveForm,
  toRequest,
  withModel,
  withInitImage,
  withPreset,
  type InitImage,
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

  const upload = '7b0c2f1e-9a43-4d2a-8c1b-2f7e6b1d9a10';
  const maskUpload = '0f3d8a52-6c1e-4b7a-9d20-5e4c3b2a1f00';
  const init: InitImage = { source: { uploadId: upload }, url: 'blob:x', width: 640, height: 480, label: 'cat.png' };

  it('sends count always, and strength and mask only with an init image', () => {
    const plain = { ...defaultForm(), prompt: 'x', count: 3, strength: 0.4 };
    expect(toRequest(plain)).toMatchObject({ count: 3 });
    expect(toRequest(plain)).not.toHaveProperty('strength');
    const img2img = withInitImage(plain, init);
    expect(toRequest(img2img)).toMatchObject({ initImage: { uploadId: upload }, strength: 0.4 });
    expect(toRequest(img2img)).not.toHaveProperty('mask');
    const inpaint = { ...img2img, mask: { uploadId: maskUpload, url: null } };
    expect(checkParams(toRequest(inpaint))).toMatchObject({ ok: true, params: { mask: { uploadId: maskUpload } } });
  });

  it('a new init image (or none) drops the mask painted over the old one', () => {
    const inpaint = { ...withInitImage(defaultForm(), init), mask: { uploadId: maskUpload, url: null } };
    expect(withInitImage(inpaint, { ...init, source: { imageId: upload } }).mask).toBeNull();
    expect(toRequest(withInitImage(inpaint, null))).not.toHaveProperty('initImage');
  });

  it('recalls an inpainting: init image, strength, mask and count, shown from the sources', () => {
    const form = formFromParams(
      {
        prompt: 'p',
        model: 'sd15',
        width: 512,
        height: 512,
        steps: 20,
        cfgScale: 7,
        seed: 9,
        count: 2,
        initImage: { imageId: upload },
        strength: 0.3,
        mask: { uploadId: maskUpload },
      },
      { initImage: { width: 768, height: 768, url: 'https://s3/init.png' }, mask: { url: 'https://s3/mask.png' } },
    );
    expect(form).toMatchObject({
      count: 2,
      strength: 0.3,
      init: {
        source: { imageId: upload },
        url: 'https://s3/init.png',
        width: 768,
        height: 768,
        label: 'Gallery image',
      },
      mask: { uploadId: maskUpload, url: 'https://s3/mask.png' },
    });
  });

  it('does not remember the init image or mask across reloads (uploads expire)', () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    };
    saveForm(storage, { ...withInitImage(defaultForm(), init), count: 4, strength: 0.5 });
    expect(loadSavedForm(storage)).toMatchObject({ init: null, mask: null, count: 4, strength: 0.5 });
  });
});
