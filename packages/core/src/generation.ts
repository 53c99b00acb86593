import { z } from 'zod';
import { MODEL_IDS, type ModelId } from './models.js';
import { PLANS, type Tier } from './plans.js';
import { fieldError } from './field-errors.js';

export const SAMPLERS = [
  'euler',
  'euler_a',
  'heun',
  'dpm2',
  'dpm++2s_a',
  'dpm++2m',
  'dpm++2mv2',
  'ipndm',
  'ipndm_v',
  'lcm',
  'ddim_trailing',
  'tcd',
] as const;
export type Sampler = (typeof SAMPLERS)[number];

export const MIN_SIDE = 256;
export const MAX_SIDE = 2048;
export const SIDE_STEP = 64;
export const MAX_SEED = 2 ** 32 - 1;

const side = (label: string) =>
  z
    .number({ error: fieldError(label) })
    .int(`${label} must be a whole number`)
    .min(MIN_SIDE, `${label} must be at least ${MIN_SIDE}`)
    .max(MAX_SIDE, `${label} must be at most ${MAX_SIDE}`)
    .refine((value) => value % SIDE_STEP === 0, `${label} must be a multiple of ${SIDE_STEP}`);

export const seedSchema = z
  .number({ error: fieldError('seed') })
  .int('seed must be a whole number')
  .min(0, 'seed must be at least 0')
  .max(MAX_SEED, `seed must be at most ${MAX_SEED}`);
export const samplerSchema = z.enum(SAMPLERS, { error: `sampler must be one of: ${SAMPLERS.join(', ')}` });

/** The parameters of one generation, shared by the web form, the API and the worker. */
export const generationParamsSchema = z.object({
  prompt: z
    .string({ error: fieldError('prompt') })
    .trim()
    .min(1, 'prompt must not be empty')
    .max(2000, 'prompt must be at most 2,000 characters'),
  negativePrompt: z
    .string({ error: fieldError('negative prompt') })
    .trim()
    .max(2000, 'negative prompt must be at most 2,000 characters')
    .optional(),
  model: z.enum(MODEL_IDS, { error: `model must be one of: ${MODEL_IDS.join(', ')}` }),
  width: side('width'),
  height: side('height'),
  steps: z
    .number({ error: fieldError('steps') })
    .int('steps must be a whole number')
    .min(1, 'steps must be at least 1')
    .max(150, 'steps must be at most 150'),
  cfgScale: z
    .number({ error: fieldError('cfg scale') })
    .min(0, 'cfg scale must be at least 0')
    .max(30, 'cfg scale must be at most 30'),
  seed: seedSchema.optional(),
  sampler: samplerSchema.optional(),
});

export type GenerationParams = z.infer<typeof generationParamsSchema>;

export const DEFAULT_SAMPLER: Sampler = 'euler_a';

/** The parameters of a job or image as stored: no negative prompt is NULL, model and sampler are text. */
export interface StoredParams {
  prompt: string;
  negativePrompt: string | null;
  model: string;
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  seed: number;
  sampler: string;
}

/** Stored parameters as `generation.create` takes them, seed and sampler resolved (they were checked when stored). */
export function paramsOf(stored: StoredParams): GenerationParams & { seed: number; sampler: Sampler } {
  return {
    prompt: stored.prompt,
    ...(stored.negativePrompt ? { negativePrompt: stored.negativePrompt } : {}),
    model: stored.model as ModelId,
    width: stored.width,
    height: stored.height,
    steps: stored.steps,
    cfgScale: stored.cfgScale,
    seed: stored.seed,
    sampler: stored.sampler as Sampler,
  };
}

/** The plan-dependent rule the schema cannot know: at most the plan's pixel budget. */
export function checkPlanLimits(params: Pick<GenerationParams, 'width' | 'height'>, tier: Tier): string | null {
  const maxPixels = PLANS[tier].maxPixels;
  if (params.width * params.height > maxPixels) {
    const side = Math.floor(Math.sqrt(maxPixels));
    return `${params.width}×${params.height} is larger than the ${PLANS[tier].name} plan allows (up to ${side}×${side} pixels)`;
  }
  return null;
}
