import { MAX_SIDE, MIN_SIDE, MODELS, SIDE_STEP, type ModelId } from '@pingvas/core';

export const ASPECT_RATIOS = ['1:1', '3:2', '2:3', '16:9', '9:16'] as const;
export type AspectRatio = (typeof ASPECT_RATIOS)[number];

export interface Size {
  width: number;
  height: number;
}

function ratioValue(ratio: AspectRatio): number {
  const [w, h] = ratio.split(':').map(Number) as [number, number];
  return w / h;
}

/**
 * The preset size for an aspect ratio at a model's base size: both sides multiples of 64,
 * never more pixels than base² (so a preset never crosses a plan's pixel budget that the
 * square fits in), trading a little ratio accuracy for area the way SDXL's buckets do
 * (3:2 at 1024 → 1216×832, 16:9 → 1344×768).
 */
export function presetSize(ratio: AspectRatio, baseSize: number): Size {
  const target = ratioValue(ratio);
  const budget = baseSize * baseSize;
  let best: Size = { width: baseSize, height: baseSize };
  let bestScore = Number.POSITIVE_INFINITY;
  for (let width = MIN_SIDE; width <= MAX_SIDE; width += SIDE_STEP) {
    for (let height = MIN_SIDE; height <= MAX_SIDE; height += SIDE_STEP) {
      const area = width * height;
      if (area > budget) break;
      const ratioError = Math.abs(Math.log(width / height / target));
      const score = ratioError * 2 + (1 - area / budget);
      if (score < bestScore - 1e-12) {
        bestScore = score;
        best = { width, height };
      }
    }
  }
  return best;
}

export function presetsFor(model: ModelId): Record<AspectRatio, Size> {
  const base = MODELS[model].defaultSize;
  return Object.fromEntries(ASPECT_RATIOS.map((r) => [r, presetSize(r, base)])) as Record<AspectRatio, Size>;
}

/** Which preset a size is for this model, or 'custom'. */
export function matchPreset(size: Size, model: ModelId): AspectRatio | 'custom' {
  const presets = presetsFor(model);
  const hit = ASPECT_RATIOS.find((r) => presets[r].width === size.width && presets[r].height === size.height);
  return hit ?? 'custom';
}

/** Snaps a typed side to the nearest allowed value (a multiple of 64 within the model limits). */
export function snapSide(value: number): number {
  if (!Number.isFinite(value)) return MIN_SIDE;
  const snapped = Math.round(value / SIDE_STEP) * SIDE_STEP;
  return Math.min(MAX_SIDE, Math.max(MIN_SIDE, snapped));
}
