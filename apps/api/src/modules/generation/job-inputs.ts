import { and, eq } from 'drizzle-orm';
import { schema, type Tx } from '@pingvas/db';
import { checkUpscaleSize, DomainError, notFound, type DiffusionJobInput, type UpscaleInput } from '@pingvas/core';
import { resolveImageSource } from '../uploads/uploads.service.js';

/**
 * What a new job starts from, resolved inside its create transaction (the one that holds the
 * credits): another user's upload or image is NOT_FOUND there, and a refusal rolls the hold back.
 */

const { images } = schema;

/** The job columns that say what it starts from (migration 0009). */
export interface JobInputColumns {
  initUploadId: string | null;
  initImageId: string | null;
  initKey: string | null;
  initWidth: number | null;
  initHeight: number | null;
  maskUploadId: string | null;
  maskKey: string | null;
}

const NO_INPUTS: JobInputColumns = {
  initUploadId: null,
  initImageId: null,
  initKey: null,
  initWidth: null,
  initHeight: null,
  maskUploadId: null,
  maskKey: null,
};

/** The init image and mask of a diffusion job: retained uploads or gallery images, the mask the init image's size. */
export async function resolveDiffusionInputs(tx: Tx, job: DiffusionJobInput): Promise<JobInputColumns> {
  if (job.kind === 'txt2img') return NO_INPUTS;
  const source = job.input.initImage;
  const init = await resolveImageSource(tx, source, { retain: true });
  const columns: JobInputColumns = {
    ...NO_INPUTS,
    initUploadId: 'uploadId' in source ? (source.uploadId ?? null) : null,
    initImageId: 'imageId' in source ? (source.imageId ?? null) : null,
    initKey: init.key,
    initWidth: init.width,
    initHeight: init.height,
  };
  if (job.kind === 'img2img') return columns;
  const mask = await resolveImageSource(tx, job.input.mask, { retain: true });
  if (mask.width !== init.width || mask.height !== init.height) {
    throw new DomainError(
      'BAD_REQUEST',
      `The mask is ${mask.width}×${mask.height} but the init image is ${init.width}×${init.height}; paint the mask at the init image's size.`,
      {
        field: 'mask',
        mask: { width: mask.width, height: mask.height },
        initImage: { width: init.width, height: init.height },
      },
    );
  }
  return { ...columns, maskUploadId: job.input.mask.uploadId, maskKey: mask.key };
}

/**
 * The gallery image an upscale starts from, with the parameters its job copies. The row is
 * locked against deletion (KEY SHARE) until the job is committed, so a concurrent gallery
 * delete either sees the job and refuses, or wins and this is NOT_FOUND.
 */
export async function resolveUpscaleSource(tx: Tx, userId: string, input: UpscaleInput) {
  const [source] = await tx
    .select({
      id: images.id,
      originalKey: images.originalKey,
      width: images.width,
      height: images.height,
      prompt: images.prompt,
      negativePrompt: images.negativePrompt,
      model: images.model,
      steps: images.steps,
      cfgScale: images.cfgScale,
      seed: images.seed,
      sampler: images.sampler,
    })
    .from(images)
    .where(and(eq(images.id, input.imageId), eq(images.userId, userId)))
    .for('key share');
  if (!source) throw notFound('Image');
  const tooLarge = checkUpscaleSize(source, input.scale);
  if (tooLarge) throw new DomainError('BAD_REQUEST', `Cannot upscale: ${tooLarge}.`, { field: 'scale' });
  return source;
}
export type UpscaleSource = Awaited<ReturnType<typeof resolveUpscaleSource>>;
