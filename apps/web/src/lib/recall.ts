import { MAX_COUNT } from '@pingvas/core';

/**
 * "More like this" from an image: what made it, without its seed (so each image is new), as
 * a full batch. The init image, strength and mask stay: a variation of an inpainting is an
 * inpainting of the same picture.
 */
export function moreLikeThis<T extends { seed?: number | null; count?: number | null }>(
  createInput: T,
): Omit<T, 'seed' | 'count'> & { count: number } {
  const { seed: _seed, count: _count, ...rest } = createInput;
  return { ...rest, count: MAX_COUNT };
}
