import { describe, expect, it } from 'vitest';
import { checkParams } from './credits.js';
import { moreLikeThis } from './recall.js';

describe('more like this', () => {
  const createInput = {
    prompt: 'A futuristic city',
    model: 'sdxl',
    width: 1024,
    height: 1024,
    steps: 30,
    cfgScale: 7,
    seed: 42,
    sampler: 'euler_a',
    count: 1,
    initImage: { imageId: '7b0c2f1e-9a43-4d2a-8c1b-2f7e6b1d9a10' },
    strength: 0.5,
    mask: { uploadId: '0f3d8a52-6c1e-4b7a-9d20-5e4c3b2a1f00' },
  };

  it('drops the seed, asks for 4 images and keeps the init image, strength and mask', () => {
    const input = moreLikeThis(createInput);
    expect(input).not.toHaveProperty('seed');
    expect(input).toMatchObject({ count: 4, strength: 0.5, initImage: createInput.initImage, mask: createInput.mask });
    // What the API takes, priced as four inpaintings of 16 steps (30 × 0.5, plus the step it starts on).
    expect(checkParams(input)).toMatchObject({ ok: true, estimate: 192 });
  });
});
