import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { ClaimedJob } from '@pingvas/core';
import { deliveredSize } from './claimed-job.js';
import type { EngineImage } from './engines/engine.js';

export interface DeliveredImage {
  png: Buffer;
  width: number;
  height: number;
}

/**
 * The images to store, in index order. Diffusion kinds deliver what the engine wrote; an
 * upscale delivers its 4× pass resized (Lanczos) to the job's target size when that is smaller.
 */
export async function deliveredImages(job: ClaimedJob['job'], images: EngineImage[]): Promise<DeliveredImage[]> {
  const target = deliveredSize(job);
  return Promise.all(
    images.map(async (image) => {
      const png = await readFile(image.path);
      if (image.width === target.width && image.height === target.height) return { png, ...target };
      const resized = await sharp(png)
        .resize(target.width, target.height, { fit: 'fill', kernel: 'lanczos3' })
        .png()
        .toBuffer();
      return { png: resized, ...target };
    }),
  );
}
