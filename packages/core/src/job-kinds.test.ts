import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { estimateCredits } from './credits.js';
import { MODEL_IDS } from './models.js';
import { MAX_SIDE, MIN_SIDE, SAMPLERS, SIDE_STEP } from './generation.js';
import {
  checkUpscaleSize,
  classifyCreateInput,
  createJobInputSchema,
  effectiveSteps,
  engineArgs,
  engineOutputFiles,
  estimateCreateInput,
  estimateImg2img,
  estimateTxt2img,
  estimateUpscale,
  JOB_KINDS,
  upscaleInputSchema,
  upscalePlan,
  type EngineFiles,
  type EngineJob,
} from './job-kinds.js';

const UPLOAD = '0b0e8f4e-8d57-4a4e-9d42-2d6a3f0a5e11';
const IMAGE = '7d1c2a59-3c1e-4b8a-a2f5-52f4b1c6d0a9';
const base = {
  prompt: 'a lighthouse at dusk',
  model: 'sdxl',
  width: 1024,
  height: 1024,
  steps: 30,
  cfgScale: 7,
} as const;

function messages(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('createJobInputSchema', () => {
  it('classifies by what is present and applies the defaults', () => {
    const parse = (input: object) => classifyCreateInput(createJobInputSchema.parse({ ...base, ...input }));
    expect(parse({})).toMatchObject({ kind: 'txt2img', input: { count: 1 } });
    expect(parse({ initImage: { imageId: IMAGE } })).toMatchObject({
      kind: 'img2img',
      input: { initImage: { imageId: IMAGE }, strength: 0.75, count: 1 },
    });
    expect(parse({ initImage: { uploadId: UPLOAD }, mask: { uploadId: UPLOAD }, strength: 1, count: 4 })).toMatchObject(
      {
        kind: 'inpaint',
        input: { initImage: { uploadId: UPLOAD }, mask: { uploadId: UPLOAD }, strength: 1, count: 4 },
      },
    );
  });

  it.each([
    [{ strength: 0, initImage: { uploadId: UPLOAD } }, 'strength: strength must be at least 0.05'],
    [{ strength: 2, initImage: { uploadId: UPLOAD } }, 'strength: strength must be at most 1'],
    [{ strength: '0.5', initImage: { uploadId: UPLOAD } }, 'strength: strength must be a number'],
    [{ strength: 0.5 }, 'strength: strength applies only with an initImage'],
    [{ count: 5 }, 'count: count must be at most 4'],
    [{ count: 0 }, 'count: count must be at least 1'],
    [{ count: 1.5 }, 'count: count must be a whole number'],
    [{ mask: { uploadId: UPLOAD } }, 'mask: mask needs an initImage to paint over'],
    [{ seed: 4294967295, count: 2 }, 'seed: seed must be at most 4294967294 for a batch of 2 (image i uses seed + i)'],
    [{ seed: 4294967293, count: 4 }, 'seed: seed must be at most 4294967292 for a batch of 4 (image i uses seed + i)'],
    [{ initImage: {} }, 'initImage: initImage must be { uploadId } or { imageId }, exactly one'],
    [
      { initImage: { uploadId: UPLOAD, imageId: IMAGE } },
      'initImage: initImage must be { uploadId } or { imageId }, exactly one',
    ],
    [{ initImage: { uploadId: 'nope' } }, 'initImage.uploadId: initImage.uploadId must be a UUID'],
    [{ initImage: { url: 'http://x' } }, 'initImage: initImage takes only uploadId or imageId, not url'],
    [{ initImage: 'abc' }, 'initImage: initImage must be an object'],
    [{ initImage: { uploadId: UPLOAD }, mask: { imageId: IMAGE } }, 'mask: mask takes only uploadId, not imageId'],
  ])('refuses %j by name', (extra, message) => {
    expect(messages(createJobInputSchema, { ...base, ...extra })).toContain(message);
  });

  it('keeps the txt2img fields and their messages', () => {
    expect(messages(createJobInputSchema, { ...base, steps: 151 })).toEqual(['steps: steps must be at most 150']);
  });

  it('takes the largest seed that leaves room for every image of the batch', () => {
    expect(messages(createJobInputSchema, { ...base, seed: 4294967292, count: 4 })).toEqual([]);
    expect(messages(createJobInputSchema, { ...base, seed: 4294967295 })).toEqual([]);
  });
});

describe('upscaleInputSchema', () => {
  it('takes an image id and a scale of 2 or 4', () => {
    expect(upscaleInputSchema.parse({ imageId: IMAGE, scale: 4 })).toEqual({ imageId: IMAGE, scale: 4 });
    expect(messages(upscaleInputSchema, { imageId: IMAGE, scale: 3 })).toEqual(['scale: scale must be 2 or 4']);
    expect(messages(upscaleInputSchema, { imageId: 'x', scale: 2 })).toEqual(['imageId: imageId must be a UUID']);
  });

  it('refuses a result larger than 4,096 per side', () => {
    expect(checkUpscaleSize({ width: 1024, height: 1024 }, 4)).toBeNull();
    expect(checkUpscaleSize({ width: 2048, height: 1024 }, 2)).toBeNull();
    expect(checkUpscaleSize({ width: 1088, height: 1024 }, 4)).toMatch(/4352×4096; the most is 4096 per side/);
  });
});

describe('estimates (worked numbers in packages/core/README.md)', () => {
  it('prices txt2img exactly as before, times the batch', () => {
    expect(estimateTxt2img(base)).toBe(90);
    expect(estimateTxt2img({ ...base, count: 4 })).toBe(360);
  });

  it('prices image-to-image and inpainting by effective steps', () => {
    // sd-cli starts at t_enc = floor(steps × strength) and runs t_enc + 1 steps, at most all of them.
    expect(effectiveSteps(30, 0.7)).toBe(22); // 30 × 0.7 is 21.000000000000004 in floating point: t_enc 21
    expect(effectiveSteps(30, 0.75)).toBe(23);
    expect(effectiveSteps(20, 0.5)).toBe(11);
    expect(effectiveSteps(30, 1)).toBe(30);
    expect(effectiveSteps(1, 0.05)).toBe(1);
    expect(estimateImg2img({ ...base, strength: 0.75 })).toBe(69);
    expect(estimateImg2img({ ...base, strength: 1 })).toBe(90);
    expect(estimateImg2img({ model: 'sd15', width: 512, height: 512, steps: 20, strength: 0.5, count: 3 })).toBe(18);
    const inpaint = classifyCreateInput(
      createJobInputSchema.parse({
        ...base,
        initImage: { uploadId: UPLOAD },
        mask: { uploadId: UPLOAD },
        strength: 0.75,
      }),
    );
    expect(estimateCreateInput(inpaint)).toBe(69);
  });

  it('prices an upscale by the pixels of the 4× pass', () => {
    expect(upscalePlan({ width: 512, height: 512 }, 2)).toEqual({
      repeats: 1,
      engineOutput: { width: 2048, height: 2048 },
      delivered: { width: 1024, height: 1024 },
    });
    expect(estimateUpscale({ width: 512, height: 512 }, 4)).toBe(8);
    expect(estimateUpscale({ width: 512, height: 512 }, 2)).toBe(8);
    expect(estimateUpscale({ width: 1024, height: 1024 }, 4)).toBe(32);
    expect(estimateUpscale({ width: 2048, height: 2048 }, 2)).toBe(128);
    expect(estimateUpscale({ width: 256, height: 320 }, 2)).toBe(3); // 2.5 up
    expect(JOB_KINDS.upscale.estimate({ imageId: IMAGE, scale: 4 }, { width: 1024, height: 768 })).toBe(24);
  });

  const model = fc.constantFrom(...MODEL_IDS);
  const side = fc.integer({ min: MIN_SIDE / SIDE_STEP, max: MAX_SIDE / SIDE_STEP }).map((n) => n * SIDE_STEP);
  const steps = fc.integer({ min: 1, max: 150 });
  const strength = fc.integer({ min: 5, max: 100 }).map((n) => n / 100);
  const count = fc.integer({ min: 1, max: 4 });

  it('leaves txt2img unchanged for a single image', () => {
    fc.assert(
      fc.property(model, side, side, steps, (m, width, height, s) => {
        const input = { model: m, width, height, steps: s };
        expect(estimateTxt2img(input)).toBe(estimateCredits(input));
        expect(estimateImg2img({ ...input, strength: 1 })).toBe(estimateCredits(input));
      }),
    );
  });

  it('never goes below 1 and grows with steps, strength, count and pixels', () => {
    fc.assert(
      fc.property(model, side, side, steps, strength, strength, count, (m, width, height, s, a, b, n) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        const job = { model: m, width, height, steps: s, count: n };
        expect(estimateImg2img({ ...job, strength: low })).toBeGreaterThanOrEqual(1);
        expect(estimateImg2img({ ...job, strength: low })).toBeLessThanOrEqual(
          estimateImg2img({ ...job, strength: high }),
        );
        expect(estimateImg2img({ ...job, strength: low })).toBeLessThanOrEqual(estimateTxt2img(job));
        if (s < 150) {
          expect(estimateImg2img({ ...job, strength: low })).toBeLessThanOrEqual(
            estimateImg2img({ ...job, steps: s + 1, strength: low }),
          );
        }
        if (n < 4) expect(estimateTxt2img(job)).toBeLessThan(estimateTxt2img({ ...job, count: n + 1 }));
        if (width < MAX_SIDE) {
          expect(estimateTxt2img(job)).toBeLessThanOrEqual(estimateTxt2img({ ...job, width: width + SIDE_STEP }));
        }
      }),
    );
  });

  it('prices upscales at least 1, growing with pixels, and 4× never below 2×', () => {
    const anySide = fc.integer({ min: 1, max: 2048 });
    fc.assert(
      fc.property(anySide, anySide, (width, height) => {
        const two = estimateUpscale({ width, height }, 2);
        expect(two).toBeGreaterThanOrEqual(1);
        expect(estimateUpscale({ width, height }, 4)).toBeGreaterThanOrEqual(two);
        expect(estimateUpscale({ width: width + 1, height }, 2)).toBeGreaterThanOrEqual(two);
      }),
    );
  });
});

/** The sd-cli options that take a value; everything else in a list must be one of these or a value. */
const VALUE_FLAGS = new Set([
  '-m',
  '-p',
  '-n',
  '-W',
  '-H',
  '--steps',
  '--cfg-scale',
  '-s',
  '--sampling-method',
  '-b',
  '-o',
  '-i',
  '--strength',
  '--mask',
  '-M',
  '--upscale-model',
  '--upscale-repeats',
  '--preview',
  '--preview-path',
  '--preview-interval',
]);
const NUMERIC_FLAGS = new Set([
  '-W',
  '-H',
  '--steps',
  '--cfg-scale',
  '-s',
  '-b',
  '--strength',
  '--upscale-repeats',
  '--preview-interval',
]);

/** Reads a list back the way sd-cli does: each flag once, each followed by its value. */
function parseArgs(args: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i]!;
    expect(VALUE_FLAGS, `unknown flag ${flag} at ${i} in ${JSON.stringify(args)}`).toContain(flag);
    expect(options.has(flag), `${flag} given twice`).toBe(false);
    const value = args[i + 1];
    expect(value, `${flag} has no value`).toBeTypeOf('string');
    if (NUMERIC_FLAGS.has(flag)) expect(Number.isFinite(Number(value)), `${flag} ${value} is not a number`).toBe(true);
    options.set(flag, value!);
  }
  return options;
}

describe('engineArgs', () => {
  const params = { ...base, negativePrompt: 'blur', seed: 42, sampler: 'euler_a' as const };
  const files: EngineFiles = { modelArgs: ['-m', '/models/sdxl.safetensors'], output: '/tmp/job/out.png' };

  it('keeps the txt2img command line the worker runs today', () => {
    expect(engineArgs({ kind: 'txt2img', params, count: 1 }, files)).toEqual([
      '-m',
      '/models/sdxl.safetensors',
      '-p',
      'a lighthouse at dusk',
      '-n',
      'blur',
      '-W',
      '1024',
      '-H',
      '1024',
      '--steps',
      '30',
      '--cfg-scale',
      '7',
      '-s',
      '42',
      '--sampling-method',
      'euler_a',
      '-o',
      '/tmp/job/out.png',
    ]);
  });

  it('adds the image tools, the batch and the previews as sd-cli names them', () => {
    const inpaint = engineArgs(
      { kind: 'inpaint', params, count: 4, strength: 0.6 },
      {
        ...files,
        initImage: '/tmp/job/init.png',
        mask: '/tmp/job/mask.png',
        preview: { path: '/tmp/job/preview.png', intervalSteps: 3 },
      },
    );
    expect(inpaint.slice(-16)).toEqual([
      '-b',
      '4',
      '-i',
      '/tmp/job/init.png',
      '--mask',
      '/tmp/job/mask.png',
      '--strength',
      '0.6',
      '--preview',
      'proj',
      '--preview-path',
      '/tmp/job/preview.png',
      '--preview-interval',
      '3',
      '-o',
      '/tmp/job/out.png',
    ]);
    expect(
      engineArgs(
        { kind: 'upscale', scale: 2, source: { width: 512, height: 512 } },
        {
          output: '/tmp/job/out.png',
          initImage: '/tmp/job/source.png',
          upscaleModel: '/models/esrgan-x4.pth',
          modelArgs: ['-m', '/models/sdxl.safetensors'],
        },
      ),
    ).toEqual([
      '-M',
      'upscale',
      '--upscale-model',
      '/models/esrgan-x4.pth',
      '-i',
      '/tmp/job/source.png',
      '--upscale-repeats',
      '1',
      '-o',
      '/tmp/job/out.png',
    ]);
  });

  it('refuses to build a command line without the files the kind needs', () => {
    expect(() => engineArgs({ kind: 'img2img', params, count: 1, strength: 0.5 }, files)).toThrow(
      'a img2img job needs an init image',
    );
    expect(() =>
      engineArgs({ kind: 'inpaint', params, count: 1, strength: 0.5 }, { ...files, initImage: '/i.png' }),
    ).toThrow(/a mask/);
    expect(() => engineArgs({ kind: 'upscale', scale: 4, source: { width: 8, height: 8 } }, files)).toThrow(
      /upscale model/,
    );
    expect(() =>
      engineArgs({ kind: 'txt2img', params, count: 1 }, { ...files, preview: { path: '/p.png', intervalSteps: 0 } }),
    ).toThrow(RangeError);
  });

  const path = fc.stringMatching(/^\/[a-z0-9_/.-]{1,30}$/);
  const text = fc.string({ minLength: 1, maxLength: 40 });
  const job: fc.Arbitrary<EngineJob> = fc.oneof(
    fc.record({
      kind: fc.constantFrom('txt2img' as const, 'img2img' as const, 'inpaint' as const),
      params: fc.record({
        prompt: text,
        negativePrompt: fc.option(text, { nil: undefined }),
        model: fc.constantFrom(...MODEL_IDS),
        width: fc.integer({ min: 4, max: 32 }).map((n) => n * 64),
        height: fc.integer({ min: 4, max: 32 }).map((n) => n * 64),
        steps: fc.integer({ min: 1, max: 150 }),
        cfgScale: fc.double({ min: 0, max: 30, noNaN: true }),
        seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        sampler: fc.constantFrom(...SAMPLERS),
      }),
      count: fc.integer({ min: 1, max: 4 }),
      strength: fc.integer({ min: 5, max: 100 }).map((n) => n / 100),
    }) as fc.Arbitrary<EngineJob>,
    fc.record({
      kind: fc.constant('upscale' as const),
      scale: fc.constantFrom(2 as const, 4 as const),
      source: fc.record({ width: fc.integer({ min: 1, max: 1024 }), height: fc.integer({ min: 1, max: 1024 }) }),
    }),
  );

  it('always gives flag–value pairs that read back to the job', () => {
    fc.assert(
      fc.property(
        job,
        path,
        path,
        path,
        path,
        fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
        (j, out, init, mask, model, every) => {
          const preview = every === undefined ? undefined : { path: `${out}.preview.png`, intervalSteps: every };
          const args = engineArgs(j, {
            modelArgs: ['-m', model],
            output: out,
            initImage: init,
            mask,
            upscaleModel: model,
            preview,
          });
          const options = parseArgs(args);
          expect(options.get('-o')).toBe(out);
          if (j.kind === 'upscale') {
            expect(options.get('-M')).toBe('upscale');
            expect(options.get('-i')).toBe(init);
            expect([...options.keys()].sort()).toEqual(['--upscale-model', '--upscale-repeats', '-M', '-i', '-o']);
            return;
          }
          expect(options.get('-p')).toBe(j.params.prompt);
          expect(options.get('-n')).toBe(j.params.negativePrompt || undefined);
          expect(Number(options.get('-W'))).toBe(j.params.width);
          expect(Number(options.get('--cfg-scale'))).toBe(j.params.cfgScale);
          expect(Number(options.get('-s'))).toBe(j.params.seed);
          expect(options.get('-b')).toBe(j.count > 1 ? String(j.count) : undefined);
          expect(options.get('--preview-interval')).toBe(every === undefined ? undefined : String(every));
          expect(options.get('-i')).toBe(j.kind === 'txt2img' ? undefined : init);
          expect(options.get('--mask')).toBe(j.kind === 'inpaint' ? mask : undefined);
          expect(Number(options.get('--strength') ?? 'NaN')).toBe(j.kind === 'txt2img' ? NaN : j.strength);
        },
      ),
    );
  });
});

describe('engineOutputFiles', () => {
  it('names a batch as sd-cli writes it', () => {
    expect(engineOutputFiles('/tmp/a.b/out.png', 1)).toEqual(['/tmp/a.b/out.png']);
    expect(engineOutputFiles('/tmp/a.b/out.png', 3)).toEqual([
      '/tmp/a.b/out_0.png',
      '/tmp/a.b/out_1.png',
      '/tmp/a.b/out_2.png',
    ]);
    // Any other extension (or none) gets .png added, as sd-cli does.
    expect(engineOutputFiles('/tmp/a.b/out', 2)).toEqual(['/tmp/a.b/out_0.png', '/tmp/a.b/out_1.png']);
    expect(engineOutputFiles('/j/original', 1)).toEqual(['/j/original.png']);
    expect(engineOutputFiles('/j/original.tmp', 1)).toEqual(['/j/original.tmp.png']);
    expect(engineOutputFiles('/j/original.PNG', 1)).toEqual(['/j/original.PNG']);
    expect(engineOutputFiles('/j/.hidden', 1)).toEqual(['/j/.hidden.png']);
  });
});
