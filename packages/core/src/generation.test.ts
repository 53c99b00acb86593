import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { checkPlanLimits, generationParamsSchema } from './generation.js';

const valid = { prompt: 'a lighthouse at dusk', model: 'sdxl', width: 1024, height: 1024, steps: 30, cfgScale: 7 };

/** The messages of the issues at one field, or [] when that field passed. */
function messagesAt(schema: z.ZodType, input: unknown, path: string): string[] {
  const result = schema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.filter((i) => i.path.join('.') === path).map((i) => i.message);
}

describe('generationParamsSchema', () => {
  it('accepts a valid request and trims the prompt', () => {
    const parsed = generationParamsSchema.parse({
      ...valid,
      prompt: '  hello  ',
      seed: 42,
      sampler: 'euler',
      negativePrompt: 'blur',
    });
    expect(parsed).toMatchObject({ prompt: 'hello', seed: 42, sampler: 'euler', negativePrompt: 'blur' });
  });

  it.each([
    ['prompt', undefined, 'prompt is required'],
    ['prompt', 42, 'prompt must be a string'],
    ['prompt', '   ', 'prompt must not be empty'],
    ['prompt', 'x'.repeat(2001), 'prompt must be at most 2,000 characters'],
    ['negativePrompt', 7, 'negative prompt must be a string'],
    ['negativePrompt', 'x'.repeat(2001), 'negative prompt must be at most 2,000 characters'],
    ['model', 'dalle', 'model must be one of: sdxl, sd15'],
    ['model', undefined, 'model must be one of: sdxl, sd15'],
    ['width', undefined, 'width is required'],
    ['width', '1024', 'width must be a number'],
    ['width', 1000, 'width must be a multiple of 64'],
    ['width', 1024.5, 'width must be a whole number'],
    ['width', 128, 'width must be at least 256'],
    ['width', 4096, 'width must be at most 2048'],
    ['height', 192, 'height must be at least 256'],
    ['height', 2112, 'height must be at most 2048'],
    ['height', 1000, 'height must be a multiple of 64'],
    ['steps', undefined, 'steps is required'],
    ['steps', 'many', 'steps must be a number'],
    ['steps', 0, 'steps must be at least 1'],
    ['steps', 151, 'steps must be at most 150'],
    ['steps', 2.5, 'steps must be a whole number'],
    ['cfgScale', undefined, 'cfg scale is required'],
    ['cfgScale', 'high', 'cfg scale must be a number'],
    ['cfgScale', -1, 'cfg scale must be at least 0'],
    ['cfgScale', 30.5, 'cfg scale must be at most 30'],
    ['seed', -1, 'seed must be at least 0'],
    ['seed', 2 ** 32, 'seed must be at most 4294967295'],
    ['seed', 1.5, 'seed must be a whole number'],
    ['seed', '7', 'seed must be a number'],
    [
      'sampler',
      'dpm_fast',
      'sampler must be one of: euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, dpm++2mv2, ipndm, ipndm_v, lcm, ddim_trailing, tcd',
    ],
  ])('%s = %j → "%s"', (field, value, message) => {
    expect(messagesAt(generationParamsSchema, { ...valid, [field]: value }, field)).toContain(message);
  });

  it('reports every bad field at once, each under its own name', () => {
    const result = generationParamsSchema.safeParse({
      prompt: '',
      model: 'x',
      width: 100,
      height: 100,
      steps: 0,
      cfgScale: 99,
    });
    expect(result.success).toBe(false);
    const fields = new Set(result.error!.issues.map((i) => i.path.join('.')));
    expect(fields).toEqual(new Set(['prompt', 'model', 'width', 'height', 'steps', 'cfgScale']));
  });
});

describe('checkPlanLimits', () => {
  it('lets free users go up to 1024×1024', () => {
    expect(checkPlanLimits({ width: 1024, height: 1024 }, 'free')).toBeNull();
    expect(checkPlanLimits({ width: 2048, height: 512 }, 'free')).toBeNull();
    expect(checkPlanLimits({ width: 1088, height: 1024 }, 'free')).toBe(
      '1088×1024 is larger than the Free plan allows (up to 1024×1024 pixels)',
    );
  });

  it('lets starter users go up to 1536×1536', () => {
    expect(checkPlanLimits({ width: 1536, height: 1536 }, 'starter')).toBeNull();
    expect(checkPlanLimits({ width: 1600, height: 1536 }, 'starter')).toBe(
      '1600×1536 is larger than the Starter plan allows (up to 1536×1536 pixels)',
    );
  });

  it('lets pro users use the largest size the schema allows', () => {
    expect(checkPlanLimits({ width: 2048, height: 2048 }, 'pro')).toBeNull();
  });
});
