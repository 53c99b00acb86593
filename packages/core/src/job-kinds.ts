import { z } from 'zod';
import { estimateCredits } from './credits.js';
import { fieldError } from './field-errors.js';
import { generationParamsSchema, MAX_SEED } from './generation.js';
import type { EngineParams } from './worker-protocol.js';

/**
 * Every kind of job, as data: what it accepts, what it holds before it runs, and the engine
 * command line it runs with. A new kind is one more entry in `JOB_KINDS`, not a branch in
 * each module that touches jobs.
 */

export const JOB_KIND_NAMES = ['txt2img', 'img2img', 'inpaint', 'upscale'] as const;
export type JobKind = (typeof JOB_KIND_NAMES)[number];

export const MIN_STRENGTH = 0.05;
export const MAX_STRENGTH = 1;
/** stable-diffusion.cpp's own default when `--strength` is not given. */
export const DEFAULT_STRENGTH = 0.75;
export const MAX_COUNT = 4;
export const UPSCALE_SCALES = [2, 4] as const;
export type UpscaleScale = (typeof UPSCALE_SCALES)[number];
/** The ESRGAN models we ship multiply each side by 4 per pass. */
export const UPSCALE_MODEL_FACTOR = 4;
/** No upscaled image may be larger than this on either side (a 4,096² PNG is already ~50 MB raw). */
export const MAX_UPSCALED_SIDE = 4096;

const uuid = (label: string) => z.uuid({ error: fieldError(label) });

/** An object that refuses unknown keys, naming the ones it takes. */
const closedObject = <S extends z.core.$ZodLooseShape>(label: string, shape: S) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `${label} takes only ${Object.keys(shape).join(' or ')}, not ${issue.keys.join(', ')}`
        : fieldError(label)(issue),
  });

/** An image the user already has: a checked upload, or one of their gallery images. */
export const imageSourceSchema = (label: string) =>
  closedObject(label, { uploadId: uuid(`${label}.uploadId`).optional(), imageId: uuid(`${label}.imageId`).optional() })
    .refine((source) => (source.uploadId === undefined) !== (source.imageId === undefined), {
      message: `${label} must be { uploadId } or { imageId }, exactly one`,
    })
    .transform((source) =>
      source.uploadId !== undefined ? { uploadId: source.uploadId } : { imageId: source.imageId! },
    );
export type ImageSource = { uploadId: string } | { imageId: string };

const strengthSchema = z
  .number({ error: fieldError('strength') })
  .min(MIN_STRENGTH, `strength must be at least ${MIN_STRENGTH}`)
  .max(MAX_STRENGTH, `strength must be at most ${MAX_STRENGTH}`);
const countSchema = z
  .number({ error: fieldError('count') })
  .int('count must be a whole number')
  .min(1, 'count must be at least 1')
  .max(MAX_COUNT, `count must be at most ${MAX_COUNT}`);
const maskSchema = closedObject('mask', { uploadId: uuid('mask.uploadId') });

export const txt2imgInputSchema = generationParamsSchema.extend({ count: countSchema.default(1) });
export const img2imgInputSchema = txt2imgInputSchema.extend({
  initImage: imageSourceSchema('initImage'),
  strength: strengthSchema.default(DEFAULT_STRENGTH),
});
export const inpaintInputSchema = img2imgInputSchema.extend({ mask: maskSchema });
export const upscaleInputSchema = z.object({
  imageId: uuid('imageId'),
  scale: z.union([z.literal(2), z.literal(4)], { error: 'scale must be 2 or 4' }),
});

export type Txt2imgInput = z.infer<typeof txt2imgInputSchema>;
export type Img2imgInput = z.infer<typeof img2imgInputSchema>;
export type InpaintInput = z.infer<typeof inpaintInputSchema>;
export type UpscaleInput = z.infer<typeof upscaleInputSchema>;

/**
 * What `generation.create` (and `credits.estimate`) accept: the txt2img fields plus the optional
 * image tools. The kind follows from what is present; a mask without an init image, or a
 * strength without one, is refused by name rather than silently ignored.
 */
export const createJobInputSchema = generationParamsSchema
  .extend({
    count: countSchema.optional(),
    initImage: imageSourceSchema('initImage').optional(),
    strength: strengthSchema.optional(),
    mask: maskSchema.optional(),
  })
  .superRefine((input, ctx) => {
    // Image i of a batch is made with seed + i, and every image's seed must stay a valid seed
    // (its "use these settings" would otherwise be refused).
    const count = input.count ?? 1;
    if (input.seed !== undefined && input.seed + count - 1 > MAX_SEED) {
      ctx.addIssue({
        code: 'custom',
        path: ['seed'],
        message: `seed must be at most ${MAX_SEED - count + 1} for a batch of ${count} (image i uses seed + i)`,
      });
    }
    if (input.initImage) return;
    if (input.mask) ctx.addIssue({ code: 'custom', path: ['mask'], message: 'mask needs an initImage to paint over' });
    if (input.strength !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['strength'], message: 'strength applies only with an initImage' });
    }
  });
export type CreateJobInput = z.input<typeof createJobInputSchema>;

/** A parsed create input, tagged with its kind and with every default applied. */
export type DiffusionJobInput =
  | { kind: 'txt2img'; input: Txt2imgInput }
  | { kind: 'img2img'; input: Img2imgInput }
  | { kind: 'inpaint'; input: InpaintInput };

export function classifyCreateInput(parsed: z.infer<typeof createJobInputSchema>): DiffusionJobInput {
  if (parsed.mask) return { kind: 'inpaint', input: inpaintInputSchema.parse(parsed) };
  if (parsed.initImage) return { kind: 'img2img', input: img2imgInputSchema.parse(parsed) };
  return { kind: 'txt2img', input: txt2imgInputSchema.parse(parsed) };
}

/* ---------------------------------------------------------------------------------------------
 * Estimates. All derive from the txt2img rule (steps × 0.5 × pixels/512² × model factor, up):
 *  - img2img and inpaint sample only the tail of the schedule (effectiveSteps: floor(steps ×
 *    strength) + 1, at most steps), so they are priced as a txt2img job of that many steps;
 *  - a batch of `count` is `count` times the price of one image;
 *  - an upscale is priced by the pixels the ESRGAN pass writes, at the rate of one 512² txt2img
 *    step (0.5 credit) per 512² of output. Why, and worked numbers: packages/core/README.md.
 * ------------------------------------------------------------------------------------------- */

/**
 * The sampling steps an image-to-image job really runs, as sd-cli counts them: it starts at step
 * t_enc = floor(steps × strength) of the schedule and runs t_enc + 1 steps, never more than `steps`.
 * The product is rounded to 1e-9 first so that 30 × 0.7 = 21.000000000000004 counts as 21.
 * (sd-cli multiplies in single precision, which can only make its count smaller: the hold
 * stays an upper bound of what runs.)
 */
export function effectiveSteps(steps: number, strength: number): number {
  return Math.min(steps, Math.floor(Math.round(steps * strength * 1e9) / 1e9) + 1);
}

export function estimateTxt2img(
  input: Pick<Txt2imgInput, 'model' | 'width' | 'height' | 'steps'> & { count?: number },
) {
  return estimateCredits(input) * (input.count ?? 1);
}

export function estimateImg2img(
  input: Pick<Img2imgInput, 'model' | 'width' | 'height' | 'steps' | 'strength'> & { count?: number },
): number {
  const steps = effectiveSteps(input.steps, input.strength);
  return estimateCredits({ ...input, steps }) * (input.count ?? 1);
}

/** The size the engine's ESRGAN pass writes, and the size delivered after resizing down to `scale`. */
export function upscalePlan(source: { width: number; height: number }, scale: UpscaleScale) {
  // One pass of a 4× model already gives 4×; 2× is that pass resized down (Lanczos), as Real-ESRGAN's
  // own `--outscale` does: running the model on a half-size input instead would throw detail away.
  const repeats = 1;
  const factor = UPSCALE_MODEL_FACTOR ** repeats;
  return {
    repeats,
    engineOutput: { width: source.width * factor, height: source.height * factor },
    delivered: { width: source.width * scale, height: source.height * scale },
  };
}

/** 0.5 credit per 512×512 of ESRGAN output: what one 512² sd15 txt2img step costs. */
const UPSCALE_CREDITS_PER_BASE_TILE = 0.5;
const BASE_TILE_PIXELS = 512 * 512;

export function estimateUpscale(source: { width: number; height: number }, scale: UpscaleScale): number {
  const { engineOutput } = upscalePlan(source, scale);
  const pixels = engineOutput.width * engineOutput.height;
  return Math.max(1, Math.ceil((pixels * UPSCALE_CREDITS_PER_BASE_TILE) / BASE_TILE_PIXELS));
}

/** The rule the schema cannot know without the source image: the result stays within bounds. */
export function checkUpscaleSize(source: { width: number; height: number }, scale: UpscaleScale): string | null {
  const { delivered } = upscalePlan(source, scale);
  if (delivered.width > MAX_UPSCALED_SIDE || delivered.height > MAX_UPSCALED_SIDE) {
    return (
      `a ${source.width}×${source.height} image upscaled ${scale}× would be ${delivered.width}×${delivered.height}; ` +
      `the most is ${MAX_UPSCALED_SIDE} per side`
    );
  }
  return null;
}

/* ---------------------------------------------------------------------------------------------
 * Engine arguments: exactly what stable-diffusion.cpp's sd-cli takes. The worker resolves the
 * model registry flags (`-m <file>` …) and downloads the inputs to local files, then asks here.
 * ------------------------------------------------------------------------------------------- */

export interface PreviewFiles {
  /** Where the engine rewrites its latest preview frame. */
  path: string;
  /** A frame every this many sampling steps. */
  intervalSteps: number;
}

export type EngineJob =
  | { kind: 'txt2img'; params: EngineParams; count: number }
  | { kind: 'img2img'; params: EngineParams; count: number; strength: number }
  | { kind: 'inpaint'; params: EngineParams; count: number; strength: number }
  | { kind: 'upscale'; scale: UpscaleScale; source: { width: number; height: number } };

export interface EngineFiles {
  /** The model registry's flags for the job's model (diffusion kinds only). */
  modelArgs?: readonly string[];
  /** `-o`: with a batch (count > 1) the engine writes `name_0.png … name_{n-1}.png` instead. */
  output: string;
  /** img2img, inpaint: the init image, already at the job's size; upscale: the source image. */
  initImage?: string;
  /** inpaint: the mask at the job's size (white = repaint). */
  mask?: string;
  /** upscale: the ESRGAN weights. */
  upscaleModel?: string;
  preview?: PreviewFiles;
}

function need(file: string | undefined, what: string, kind: JobKind): string {
  if (!file) throw new Error(`a ${kind} job needs ${what}`);
  return file;
}

function previewArgs(preview: PreviewFiles | undefined): string[] {
  if (!preview) return [];
  if (!Number.isInteger(preview.intervalSteps) || preview.intervalSteps < 1) {
    throw new RangeError(`preview interval must be a whole number of steps ≥ 1, got ${preview.intervalSteps}`);
  }
  return ['--preview', 'proj', '--preview-path', preview.path, '--preview-interval', String(preview.intervalSteps)];
}

function diffusionArgs(params: EngineParams, count: number, files: EngineFiles, imageArgs: string[] = []): string[] {
  // prettier-ignore
  return [
    ...(files.modelArgs ?? []),
    '-p', params.prompt,
    ...(params.negativePrompt ? ['-n', params.negativePrompt] : []),
    '-W', String(params.width),
    '-H', String(params.height),
    '--steps', String(params.steps),
    '--cfg-scale', String(params.cfgScale),
    '-s', String(params.seed),
    '--sampling-method', params.sampler,
    ...(count > 1 ? ['-b', String(count)] : []),
    ...imageArgs,
    ...previewArgs(files.preview),
    '-o', files.output,
  ];
}

/** The sd-cli argument list for one job. Throws on a missing file: that is the caller's bug, not the user's. */
// prettier-ignore
export function engineArgs(job: EngineJob, files: EngineFiles): string[] {
  switch (job.kind) {
    case 'txt2img':
      return diffusionArgs(job.params, job.count, files);
    case 'img2img':
      return diffusionArgs(job.params, job.count, files, [
        '-i', need(files.initImage, 'an init image', job.kind),
        '--strength', String(job.strength),
      ]);
    case 'inpaint':
      return diffusionArgs(job.params, job.count, files, [
        '-i', need(files.initImage, 'an init image', job.kind),
        '--mask', need(files.mask, 'a mask', job.kind),
        '--strength', String(job.strength),
      ]);
    case 'upscale':
      return [
        '-M', 'upscale',
        '--upscale-model', need(files.upscaleModel, 'an upscale model', job.kind),
        '-i', need(files.initImage, 'a source image', job.kind),
        '--upscale-repeats', String(upscalePlan(job.source, job.scale).repeats),
        '-o', files.output,
      ];
  }
}

/**
 * The files sd-cli writes for `-o output` and `-b count`: a .png/.jpg/.jpeg/.webp extension is
 * kept and any other gets `.png` added; with more than one image each gets `_<index>` (from 0)
 * before the extension, and the plain name is not written.
 */
export function engineOutputFiles(output: string, count: number): string[] {
  const name = output.slice(output.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const known = /^\.(png|jpe?g|webp)$/i.test(extension);
  const stem = known ? output.slice(0, -extension.length) : output;
  const suffix = known ? extension : '.png';
  if (count <= 1) return [`${stem}${suffix}`];
  return Array.from({ length: count }, (_, i) => `${stem}_${i}${suffix}`);
}

/* ---------------------------------------------------------------------------------------------
 * The table.
 * ------------------------------------------------------------------------------------------- */

export const JOB_KINDS = {
  txt2img: { input: txt2imgInputSchema, estimate: (input: Txt2imgInput) => estimateTxt2img(input), usesModel: true },
  img2img: { input: img2imgInputSchema, estimate: (input: Img2imgInput) => estimateImg2img(input), usesModel: true },
  inpaint: { input: inpaintInputSchema, estimate: (input: InpaintInput) => estimateImg2img(input), usesModel: true },
  upscale: {
    input: upscaleInputSchema,
    /** An upscale's price depends on its source image, which only the API can look up. */
    estimate: (input: UpscaleInput, source: { width: number; height: number }) => estimateUpscale(source, input.scale),
    usesModel: false,
  },
} as const satisfies Record<JobKind, unknown>;

/**
 * What an upscale job is queued under instead of a diffusion model: only workers that list it
 * among their loadable models (they have ESRGAN weights) claim upscales. Workers that send no
 * model list claim anything, as before.
 */
export const UPSCALE_MODEL_ID = 'upscale-esrgan-x4';

/** The model a job is dispatched by: its diffusion model, or the upscaler for a kind that uses none. */
export function dispatchModel(job: { kind: JobKind; model: string }): string {
  return JOB_KINDS[job.kind].usesModel ? job.model : UPSCALE_MODEL_ID;
}

/** The hold for a parsed create input, whatever its kind. */
export function estimateCreateInput(job: DiffusionJobInput): number {
  return job.kind === 'txt2img' ? estimateTxt2img(job.input) : estimateImg2img(job.input);
}
