import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineOutputFiles } from '@pingvas/core';
import { REFERENCE_MODEL_FILE, REFERENCE_REGISTRY } from '../config.js';
import { referenceEngine, runBinary, type EngineExit } from '../test/reference-engine.js';
import { CliEngine, classifyFailure } from './cli-engine.js';
import { ProgressParser } from './progress.js';

/**
 * One table of command lines, run against the reference engine always and against a real
 * stable-diffusion.cpp `sd-cli` when SD_CLI_BIN names one. Without weights a real sd-cli still
 * parses its arguments and fails at model loading, which checks flags, error lines and exit
 * codes; the cases that need an image run against it only when SD_CLI_MODEL names a real model,
 * and those that upscale only when SD_CLI_UPSCALE_MODEL names an ESRGAN model it can load.
 */

type ExitClass = 'ok' | 'error' | 'abort';

interface Paths {
  /** A model file the engine loads (the reference engine's stand-in, or SD_CLI_MODEL). */
  model: string;
  /** Where the image goes, in this case's own folder. */
  output: string;
  missing: string;
  /** Input images: a 96×64 RGB PNG, a mask of the same size, a file that is no image. */
  init: string;
  mask: string;
  notImage: string;
  /** An upscaler the engine loads (the stand-in, or SD_CLI_UPSCALE_MODEL). */
  upscaler: string;
}

interface ConformanceCase {
  name: string;
  args: (paths: Paths) => string[];
  /** Needs a model that really loads: an image is made (or its saving tried). */
  generates?: boolean;
  /** Needs an upscaler model that really loads. */
  upscales?: boolean;
  /**
   * Only "the arguments were accepted": with a loadable model the run makes an image; without
   * one (a real sd-cli and no weights) it gets as far as loading the model and fails there.
   */
  accepted?: boolean;
  exit?: ExitClass;
  stderr?: RegExp[];
  stdout?: RegExp[] | ((paths: Paths) => RegExp[]);
  /** Steps the adapter's progress parser must see, in order. */
  progress?: number[];
  files?: (paths: Paths) => { exist: string[]; absent: string[] };
  /** The size of every file in `files().exist`. */
  size?: { width: number; height: number };
}

const ARG_ERROR =
  /error: (unknown argument|invalid parameter for argument|invalid mode|invalid sample method|invalid scheduler)/;
/** The argument list of a command the worker would run (a refusal here is the table's bug). */
function workerArgs(command: ReturnType<CliEngine['commandFor']>): string[] {
  if ('refused' in command) throw new Error(command.refused);
  return command.args;
}

const small = ['-W', '64', '-H', '64', '--steps', '2', '-s', '7'];
const error = (message: string | RegExp) =>
  new RegExp(`^\\[ERROR\\] \\S+:\\d+\\s+- ${typeof message === 'string' ? escape(message) : message.source}$`, 'm');
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const CASES: ConformanceCase[] = [
  {
    name: 'unknown flag',
    args: (p) => ['-m', p.model, '--bogus'],
    exit: 'error',
    stderr: [error('error: unknown argument: --bogus')],
  },
  {
    name: '--sample-method is not a flag',
    args: (p) => ['-m', p.model, '--sample-method', 'euler'],
    exit: 'error',
    stderr: [error('error: unknown argument: --sample-method')],
  },
  {
    name: '--schedule is not a flag',
    args: (p) => ['-m', p.model, '--schedule', 'karras'],
    exit: 'error',
    stderr: [error('error: unknown argument: --schedule')],
  },
  {
    name: '-M txt2img is not a mode',
    args: (p) => ['-m', p.model, '-M', 'txt2img'],
    exit: 'error',
    stderr: [
      error('error: invalid mode txt2img, must be one of [img_gen, adetailer, vid_gen, convert, upscale, metadata]'),
    ],
  },
  {
    name: 'unknown sampler',
    args: (p) => ['-m', p.model, '--sampling-method', 'magic'],
    exit: 'error',
    stderr: [
      error('error: invalid sample method magic'),
      error('error: invalid parameter for argument: --sampling-method'),
    ],
  },
  {
    name: 'unknown scheduler',
    args: (p) => ['-m', p.model, '--scheduler', 'nope'],
    exit: 'error',
    stderr: [error('error: invalid scheduler nope'), error('error: invalid parameter for argument: --scheduler')],
  },
  {
    name: 'a flag without its value',
    args: (p) => ['-m', p.model, '-W'],
    exit: 'error',
    stderr: [error('error: invalid parameter for argument: -W')],
  },
  {
    name: 'no model flag',
    args: (p) => ['-p', 'x', '-o', p.output],
    exit: 'error',
    stderr: [error('error: the following arguments are required: model_path/diffusion_model')],
  },
  {
    name: 'upscale mode without an upscaler',
    args: () => ['-M', 'upscale'],
    exit: 'error',
    stderr: [error('error: upscale mode needs an upscaler model (--upscale-model)')],
  },
  {
    name: 'an init image that does not exist',
    args: (p) => ['-m', p.model, '-i', join(p.output, '..', 'absent.png'), '-o', p.output],
    exit: 'error',
    stderr: [/^\[ERROR\] main\.cpp:\d+\s+- load image from '.*absent\.png' failed$/m],
    files: (p) => ({ exist: [], absent: [p.output] }),
  },
  {
    name: 'an init image that is not an image',
    args: (p) => ['-m', p.model, '-i', p.notImage, '-o', p.output],
    exit: 'error',
    stderr: [/^\[ERROR\] main\.cpp:\d+\s+- load image from '.*not-an-image\.png' failed$/m],
  },
  {
    name: 'a mask that does not exist',
    args: (p) => ['-m', p.model, '-i', p.init, '--mask', join(p.output, '..', 'absent-mask.png'), '-o', p.output],
    exit: 'error',
    stderr: [/^\[ERROR\] main\.cpp:\d+\s+- load image from '.*absent-mask\.png' failed$/m],
  },
  {
    name: 'a strength above 1',
    args: (p) => ['-m', p.model, '-i', p.init, '--strength', '1.5'],
    exit: 'error',
    stderr: [error('error: can only work with strength in [0.0, 1.0]')],
  },
  {
    name: 'a strength that is not a number aborts',
    args: (p) => ['-m', p.model, '--strength', 'strong'],
    exit: 'abort',
    stderr: [/std::invalid_argument/],
  },
  {
    name: 'an unknown preview method',
    args: (p) => ['-m', p.model, '--preview', 'fancy'],
    exit: 'error',
    stderr: [error('error: preview method fancy'), error('error: invalid parameter for argument: --preview')],
  },
  {
    name: 'upscale mode without an init image',
    args: (p) => ['-M', 'upscale', '--upscale-model', p.upscaler, '-o', p.output],
    exit: 'error',
    stderr: [error('error: upscale mode needs an init image (--init-img)')],
  },
  {
    name: 'upscale mode with an upscaler file that does not exist: two errors, the input saved as it came, exit 0',
    args: (p) => ['-M', 'upscale', '--upscale-model', p.missing, '-i', p.init, '-o', p.output],
    exit: 'ok',
    stderr: [
      /^\[ERROR\] upscaler\.cpp:\d+\s+- init model loader from file failed: '.*missing\.safetensors'$/m,
      error('new_upscaler_ctx failed'),
    ],
    stdout: (p) => [new RegExp(`save result image 0 to '${escape(p.output)}' \\(success\\)$`, 'm')],
    files: (p) => ({ exist: [p.output], absent: [] }),
    size: { width: 96, height: 64 },
  },
  {
    name: 'a width that is not a number aborts',
    args: (p) => ['-m', p.model, '-W', 'abc'],
    exit: 'abort',
    stderr: [/std::invalid_argument/],
  },
  {
    name: 'steps out of range abort',
    args: (p) => ['-m', p.model, '--steps', '99999999999'],
    exit: 'abort',
    stderr: [/std::out_of_range/],
  },
  {
    name: 'a cfg scale that is not a number aborts',
    args: (p) => ['-m', p.model, '--cfg-scale', 'high'],
    exit: 'abort',
    stderr: [/std::invalid_argument/],
  },
  {
    name: 'a seed that is not a number aborts',
    args: (p) => ['-m', p.model, '-s', 'zz'],
    exit: 'abort',
    stderr: [/std::invalid_argument/],
  },
  {
    name: 'a model file that does not exist',
    args: (p) => ['-m', p.missing, '-o', p.output],
    exit: 'error',
    stderr: [/^\[ERROR\] \S+:\d+\s+- init model loader from file failed: '.*missing\.safetensors'$/m],
  },
  {
    name: '--version as the first argument',
    args: () => ['--version'],
    exit: 'ok',
    stdout: [/^stable-diffusion\.cpp version \S+, commit \S+/],
  },
  {
    name: '--version anywhere else',
    args: (p) => ['-m', p.model, '--version'],
    exit: 'error',
    stderr: [error('error: unknown argument: --version')],
  },
  { name: '--help', args: () => ['--help'], exit: 'ok', stdout: [/^stable-diffusion\.cpp version .*\nUsage: /] },
  ...[
    ['--scheduler', 'karras'],
    ['--scheduler', 'kl_optimal'],
    ['--mmap'],
    ['--fa'],
    ['--auto-fit'],
    ['--disable-image-metadata'],
    ['--vae-tiling'],
    ['--offload-to-cpu'],
    ['-t', '2'],
    ['-M', 'img_gen'],
    ['-v'],
    ['--color'],
    ['--sampling-method', 'res_multistep'],
    ['--sampling-method', 'er_sde'],
    ['--sampling-method', 'lms'],
    ['--preview', 'proj', '--preview-interval', '2'],
    ['--preview', 'vae', '--preview-path', 'preview-here.png'],
    ['--strength', '0.4'],
    ['--upscale-repeats', '2'],
  ].map((flags): ConformanceCase => ({
    name: `accepts ${flags.join(' ')}`,
    accepted: true,
    args: (p) => ['-m', p.model, '-p', 'a red house', ...small, ...flags, '-o', p.output],
  })),
  {
    name: "the worker's own command line: progress, completion and save lines",
    generates: true,
    args: (p) => [
      ...workerArgs(
        new CliEngine({ bin: '', name: '', models: { sd15: { args: ['-m', p.model] } } }).commandFor(
          {
            kind: 'txt2img',
            count: 1,
            params: {
              prompt: 'a red house by a lake',
              negativePrompt: 'fog',
              model: 'sd15',
              width: 64,
              height: 64,
              steps: 3,
              cfgScale: 7,
              seed: 7,
              sampler: 'euler_a',
            },
          },
          { inputs: {}, output: p.output },
        ),
      ),
    ],
    exit: 'ok',
    progress: [1, 2, 3],
    stdout: (p) => [
      /^\[INFO \] \S+:\d+\s+- generating image: 1\/1 - seed 7$/m,
      /^\[INFO \] \S+:\d+\s+- sampling completed, taking [\d.]+s$/m,
      /^\[INFO \] \S+:\d+\s+- generate_image completed in [\d.]+s$/m,
      new RegExp(`^\\[INFO \\] \\S+:\\d+\\s+- save result image 0 to '${escape(p.output)}' \\(success\\)$`, 'm'),
      /^\[INFO \] \S+:\d+\s+- 1\/1 images saved$/m,
    ],
    files: (p) => ({ exist: [p.output], absent: [] }),
  },
  {
    name: 'a batch is saved as name_0 … name_{n-1}, never name',
    generates: true,
    args: (p) => ['-m', p.model, '-p', 'two', ...small, '-b', '2', '-o', p.output],
    exit: 'ok',
    progress: [1, 2, 1, 2],
    stdout: [/ - 2\/2 images saved$/m],
    files: (p) => ({ exist: engineOutputFiles(p.output, 2), absent: [p.output] }),
  },
  {
    name: 'img2img: the init image sets the size, the last floor(steps × strength) + 1 steps run',
    generates: true,
    args: (p) => [
      '-m',
      p.model,
      '-p',
      'a red house',
      '-i',
      p.init,
      '--steps',
      '4',
      '--strength',
      '0.5',
      '-s',
      '7',
      '-o',
      p.output,
    ],
    exit: 'ok',
    progress: [1, 2, 3],
    stdout: [/ - set width x height to 96 x 64$/m, / - 1\/1 images saved$/m],
    files: (p) => ({ exist: [p.output], absent: [] }),
    size: { width: 96, height: 64 },
  },
  {
    name: 'inpainting in a batch: name_0 and name_1 at the init image size',
    generates: true,
    args: (p) => [
      '-m',
      p.model,
      '-p',
      'a red house',
      '-i',
      p.init,
      '--mask',
      p.mask,
      '--steps',
      '2',
      '-b',
      '2',
      '-o',
      p.output,
    ],
    exit: 'ok',
    progress: [1, 2, 1, 2],
    files: (p) => ({ exist: engineOutputFiles(p.output, 2), absent: [p.output] }),
    size: { width: 96, height: 64 },
  },
  {
    name: 'upscale mode: 4×, no diffusion model (a second pass on a CPU would take minutes; refengine.test.ts has it)',
    upscales: true,
    args: (p) => ['-M', 'upscale', '--upscale-model', p.upscaler, '-i', p.init, '-o', p.output],
    exit: 'ok',
    stdout: [/ - upscaling from \(96 x 64\) to \(384 x 256\)$/m, / - input_image_tensor upscaled, taking [\d.]+s$/m],
    files: (p) => ({ exist: [p.output], absent: [] }),
    size: { width: 384, height: 256 },
  },
  {
    name: 'an output folder that cannot be made',
    generates: true,
    args: (p) => ['-m', p.model, '-p', 'x', ...small, '-o', '/dev/null/out.png'],
    exit: 'error',
    stderr: [error("failed to create directory '/dev/null': Not a directory")],
  },
];

interface Target {
  name: string;
  bin: string;
  /** A model that really loads, or null when only argument handling can be checked. */
  model: string | null;
  /** An ESRGAN model that really loads, or null. */
  upscaler: string | null;
}

const scratch = mkdtempSync(join(tmpdir(), 'conformance-'));
const inputs = {
  init: join(scratch, 'init.png'),
  mask: join(scratch, 'mask.png'),
  notImage: join(scratch, 'not-an-image.png'),
};
beforeAll(async () => {
  const pixels = Buffer.alloc(96 * 64 * 3, 0);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) & 0xff;
  await sharp(pixels, { raw: { width: 96, height: 64, channels: 3 } })
    .png()
    .toFile(inputs.init);
  const mask = Buffer.alloc(96 * 64, 0).fill(255, 96 * 16, 96 * 48);
  await sharp(mask, { raw: { width: 96, height: 64, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(inputs.mask);
  writeFileSync(inputs.notImage, 'this is not an image\n');
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function exitClass(result: EngineExit): string {
  if (result.signal === 'SIGABRT' || result.code === 134) return 'abort';
  if (result.signal) return `signal ${result.signal}`;
  if (result.code === 0) return 'ok';
  return result.code === 1 ? 'error' : `exit ${result.code}`;
}

async function runCase(target: Target, testCase: ConformanceCase, index: number): Promise<void> {
  const dir = join(scratch, `${target.name}-${index}`);
  const paths: Paths = {
    model: target.model ?? REFERENCE_MODEL_FILE,
    output: join(dir, 'out.png'),
    missing: join(dir, 'missing.safetensors'),
    ...inputs,
    upscaler: target.upscaler ?? join(dir, 'no-upscaler.pth'),
  };
  // Every run in its own folder: a default `output.png` lands there, never in the repository.
  const result = await runBinary(target.bin, testCase.args(paths), { REFENGINE_LOAD_MS: '10' }, undefined, scratch);
  const shown = `${target.name} ${testCase.args(paths).join(' ')}\n--- stdout\n${result.stdout.slice(-3000)}\n--- stderr\n${result.stderr.slice(-3000)}`;

  if (testCase.accepted) {
    expect(result.stderr, shown).not.toMatch(ARG_ERROR);
    if (target.model) {
      expect(exitClass(result), shown).toBe('ok');
      expect(existsSync(paths.output), shown).toBe(true);
    } else {
      expect(result.stderr, shown).toMatch(/init model loader from file failed/);
    }
    return;
  }
  expect(exitClass(result), shown).toBe(testCase.exit);
  for (const pattern of testCase.stderr ?? []) expect(result.stderr, shown).toMatch(pattern);
  const stdoutPatterns = typeof testCase.stdout === 'function' ? testCase.stdout(paths) : (testCase.stdout ?? []);
  for (const pattern of stdoutPatterns) expect(result.stdout, shown).toMatch(pattern);
  if (testCase.progress) {
    const steps = new ProgressParser().push(`${result.stdout}\n`).map((p) => p.step);
    // A batch restarts the count at each image; the parser reports each image's steps.
    expect(steps, shown).toEqual(testCase.progress);
  }
  if (testCase.files) {
    const { exist, absent } = testCase.files(paths);
    for (const file of exist)
      expect(readFileSync(file).subarray(1, 4).toString('latin1'), `${file}\n${shown}`).toBe('PNG');
    for (const file of absent) expect(existsSync(file), `${file}\n${shown}`).toBe(false);
    if (testCase.size)
      for (const file of exist) expect(await sharp(file).metadata(), `${file}\n${shown}`).toMatchObject(testCase.size);
  }
  if (result.code !== 0 || result.signal) {
    // The adapter reads the same run as the failure class the table expects.
    const failure = classifyFailure(result.code, result.signal, result.stdout, result.stderr, 0);
    expect(failure.code, shown).toBe(testCase.exit === 'abort' ? 'CRASH' : 'ENGINE_ERROR');
  }
}

function conformanceSuite(target: () => Target): void {
  CASES.forEach((testCase, index) => {
    it(testCase.name, async (context) => {
      const t = target();
      if (testCase.generates && !t.model) context.skip('needs SD_CLI_MODEL: a model this sd-cli can load');
      if (testCase.upscales && !t.upscaler)
        context.skip('needs SD_CLI_UPSCALE_MODEL: an ESRGAN model this sd-cli can load');
      await runCase(t, testCase, index);
    });
  });
}

describe('conformance: reference engine', () => {
  let bin = '';
  it('builds', () => {
    bin = referenceEngine();
    expect(REFERENCE_REGISTRY.sd15!.args).toEqual(['-m', REFERENCE_MODEL_FILE]);
  });
  conformanceSuite(() => ({ name: 'reference', bin, model: REFERENCE_MODEL_FILE, upscaler: REFERENCE_MODEL_FILE }));
});

const sdCli = process.env.SD_CLI_BIN;
if (!sdCli)
  console.log(
    'conformance: SD_CLI_BIN is not set, so the real sd-cli cases are skipped (set it to a built sd-cli to run them)',
  );
describe.skipIf(!sdCli)(`conformance: real sd-cli (${sdCli ?? 'SD_CLI_BIN not set'})`, () => {
  conformanceSuite(() => ({
    name: 'sd-cli',
    bin: sdCli!,
    model: process.env.SD_CLI_MODEL || null,
    upscaler: process.env.SD_CLI_UPSCALE_MODEL || null,
  }));
});
