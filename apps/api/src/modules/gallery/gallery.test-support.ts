import { schema, withSystem } from '@pingvas/db';
import { attemptKeys, newAttemptPrefix } from '../../infra/object-store.js';
import type { SessionUser } from '../../context.js';
import type { TestApp } from '../../test/harness.js';

export interface SeedOptions {
  /** One timestamp for every image (ties are what keyset pagination must survive); else one second apart, newest last. */
  createdAt?: Date;
  prompt?: (index: number) => string;
  starred?: (index: number) => boolean;
  /** Also store a tiny original and thumbnail in S3 under the image's keys. */
  withObjects?: boolean;
}

export interface SeededImage {
  id: string;
  jobId: string;
  originalKey: string;
  thumbKey: string;
  prompt: string;
}

/** Inserts `n` completed jobs and their images for `user`, as generation would on completion. */
export async function seedImages(
  app: TestApp,
  user: Pick<SessionUser, 'id'>,
  n: number,
  options: SeedOptions = {},
): Promise<SeededImage[]> {
  const base = Date.now() - n * 1000;
  const at = (i: number) => options.createdAt ?? new Date(base + i * 1000);
  const prompt = options.prompt ?? ((i: number) => `a quiet harbour at dawn, study ${i}`);
  const seeded = await withSystem(app.deps.db, async (tx) => {
    const jobs = await tx
      .insert(schema.generationJobs)
      .values(
        Array.from({ length: n }, (_, i) => ({
          userId: user.id,
          status: 'completed' as const,
          prompt: prompt(i),
          negativePrompt: 'blurry',
          model: 'sd15',
          width: 512,
          height: 512,
          steps: 20,
          cfgScale: 7,
          seed: 1000 + i,
          sampler: 'euler_a',
          estimatedCredits: 10,
          chargedCredits: 5,
          priority: 0,
          queueScore: 0,
          createdAt: at(i),
          finishedAt: at(i),
        })),
      )
      .returning({ id: schema.generationJobs.id });
    const rows = await tx
      .insert(schema.images)
      .values(
        jobs.map((job, i) => {
          const keys = attemptKeys(newAttemptPrefix());
          return {
            userId: user.id,
            jobId: job.id,
            originalKey: keys.original,
            thumbKey: keys.thumb,
            width: 512,
            height: 512,
            bytes: 4,
            prompt: prompt(i),
            negativePrompt: 'blurry',
            model: 'sd15',
            steps: 20,
            cfgScale: 7,
            seed: 1000 + i,
            sampler: 'euler_a',
            engine: 'reference',
            starred: options.starred?.(i) ?? false,
            createdAt: at(i),
          };
        }),
      )
      .returning({
        id: schema.images.id,
        jobId: schema.images.jobId,
        originalKey: schema.images.originalKey,
        thumbKey: schema.images.thumbKey,
        prompt: schema.images.prompt,
      });
    return rows;
  });
  if (options.withObjects) {
    await Promise.all(
      seeded.flatMap((image) => [
        app.deps.store.putBytes(image.originalKey, new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'image/png'),
        app.deps.store.putBytes(image.thumbKey, new Uint8Array([0x52, 0x49, 0x46, 0x46]), 'image/webp'),
      ]),
    );
  }
  return seeded;
}
