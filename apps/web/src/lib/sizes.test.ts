import { describe, expect, it } from 'vitest';
import { MODEL_IDS, MODELS, SIDE_STEP } from '@pingvas/core';
import { ASPECT_RATIOS, matchPreset, presetSize, presetsFor, snapSide } from './sizes.js';

describe('size presets', () => {
  it('gives the square at the model base size for 1:1', () => {
    expect(presetSize('1:1', 1024)).toEqual({ width: 1024, height: 1024 });
    expect(presetSize('1:1', 512)).toEqual({ width: 512, height: 512 });
  });

  it("matches SDXL's well-known buckets", () => {
    expect(presetSize('3:2', 1024)).toEqual({ width: 1216, height: 832 });
    expect(presetSize('2:3', 1024)).toEqual({ width: 832, height: 1216 });
    expect(presetSize('16:9', 1024)).toEqual({ width: 1344, height: 768 });
    expect(presetSize('9:16', 1024)).toEqual({ width: 768, height: 1344 });
  });

  it.each(MODEL_IDS)('every %s preset is a multiple of 64, within the base area and close to its ratio', (model) => {
    const base = MODELS[model].defaultSize;
    for (const ratio of ASPECT_RATIOS) {
      const { width, height } = presetsFor(model)[ratio];
      const [w, h] = ratio.split(':').map(Number) as [number, number];
      expect(width % SIDE_STEP).toBe(0);
      expect(height % SIDE_STEP).toBe(0);
      expect(width * height).toBeLessThanOrEqual(base * base);
      expect(Math.abs(width / height / (w / h) - 1)).toBeLessThan(0.08);
    }
  });

  it('recognises a preset and calls anything else custom', () => {
    expect(matchPreset({ width: 1216, height: 832 }, 'sdxl')).toBe('3:2');
    expect(matchPreset({ width: 1000, height: 832 }, 'sdxl')).toBe('custom');
    expect(matchPreset({ width: 1024, height: 1024 }, 'sd15')).toBe('custom');
  });

  it('snaps typed sides to allowed values', () => {
    expect(snapSide(1000)).toBe(1024);
    expect(snapSide(31)).toBe(256);
    expect(snapSide(99999)).toBe(2048);
    expect(snapSide(Number.NaN)).toBe(256);
  });
});
