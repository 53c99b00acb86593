import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_MODEL_FILE } from '../config.js';
import { referenceEngine, runBinary } from '../test/reference-engine.js';
import { ProgressParser } from './progress.js';

/** The progress regex of docs/engine.md, applied as it tells the worker to. */
const BAR = /(\d+)\/(\d+) - ([\d.]+)(s\/it|it\/s)/;

let bin: string;
let dir: string;
let n = 0;
const out = () => join(dir, `out-${++n}.png`);

beforeAll(() => {
  bin = referenceEngine();
  dir = mkdtempSync(join(tmpdir(), 'refengine-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pngSize(file: string): { width: number; height: number } {
  const bytes = readFileSync(file);
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** The denoising bars: the `\r`-separated segments between `generating image:` and `sampling completed`. */
function samplingBars(stdout: string): string[] {
  const start = stdout.indexOf('generating image:');
  const end = stdout.indexOf('sampling completed');
  expect(start).toBeGreaterThan(-1);
  const phase = stdout.slice(stdout.indexOf('\n', start) + 1, end === -1 ? undefined : end);
  return phase
    .split(/[\r\n]/)
    .map((s) => s.replace(/\x1b\[K/g, ''))
    .filter((s) => s.trim() && !s.startsWith('['));
}

/** A run as the worker makes one: the registry's model flag first. */
async function generate(args: string[], env: Record<string, string> = {}) {
  const file = out();
  const result = await runBinary(bin, ['-m', REFERENCE_MODEL_FILE, ...args, '-o', file], env);
  return { ...result, file };
}

describe('reference engine', () => {
  it('labels itself in --version (first argument only, as sd-cli) and in the first line of --help', async () => {
    const result = await runBinary(bin, ['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^stable-diffusion\.cpp version refengine-\S+, commit reference \(reference engine — no model\)\n$/,
    );
    const help = await runBinary(bin, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe(result.stdout.trim());
    const late = await runBinary(bin, ['-m', REFERENCE_MODEL_FILE, '--version']);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/^\[ERROR\] common\.cpp:\d+\s+- error: unknown argument: --version$/m);
  });

  it('requires a model flag and a model file that exists; a missing split part is only a warning', async () => {
    const none = await runBinary(bin, ['-p', 'x', '-o', out()]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/error: the following arguments are required: model_path\/diffusion_model/);
    const missing = await runBinary(bin, ['-m', join(dir, 'gone.safetensors'), '-o', out()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`init model loader from file failed: '${join(dir, 'gone.safetensors')}'`);
    const splitPart = await generate([
      '-p',
      'x',
      '-W',
      '64',
      '-H',
      '64',
      '--steps',
      '2',
      '--vae',
      join(dir, 'gone-vae.safetensors'),
    ]);
    expect(splitPart.code).toBe(0);
    expect(splitPart.stdout).toMatch(/^\[WARN \] \S+:\d+\s+- loading vae from '.*gone-vae\.safetensors' failed$/m);
    expect(existsSync(splitPart.file)).toBe(true);
  });

  it('names batch images as sd-cli: name_0.png … name_{n-1}.png and no name.png', async () => {
    const file = out();
    const result = await runBinary(bin, [
      '-m',
      REFERENCE_MODEL_FILE,
      '-p',
      'three',
      '-W',
      '64',
      '-H',
      '64',
      '--steps',
      '2',
      '-b',
      '3',
      '-o',
      file,
    ]);
    expect(result.code).toBe(0);
    const stem = file.slice(0, -'.png'.length);
    expect([0, 1, 2].map((i) => existsSync(`${stem}_${i}.png`))).toEqual([true, true, true]);
    expect(existsSync(file)).toBe(false);
    expect(result.stdout).toContain(`save result image 2 to '${stem}_2.png' (success)`);
    expect(result.stdout).toMatch(/ - 3\/3 images saved$/m);
  });

  it('uses sd-cli defaults: 512×512, 20 steps, cfg 7, seed 42, euler_a', async () => {
    const defaults = await generate(['-p', 'a lighthouse at dusk', '-v']);
    expect(defaults.code).toBe(0);
    expect(pngSize(defaults.file)).toEqual({ width: 512, height: 512 });
    expect(defaults.stdout).toContain('generating image: 1/1 - seed 42');
    expect(defaults.stdout).toMatch(/cfg_scale:\s+7\.00/);
    expect(defaults.stdout).toMatch(/sample_method:\s+euler_a/);
    expect(samplingBars(defaults.stdout).at(-1)).toMatch(/ 20\/20 - /);

    const explicit = await generate([
      '-p',
      'a lighthouse at dusk',
      '-W',
      '512',
      '-H',
      '512',
      '--steps',
      '20',
      '--cfg-scale',
      '7',
      '-s',
      '42',
      '--sampling-method',
      'euler_a',
    ]);
    expect(explicit.code).toBe(0);
    expect(readFileSync(explicit.file).equals(readFileSync(defaults.file))).toBe(true);
  });

  it('honours -W, -H, --steps and -n', async () => {
    const result = await generate([
      '-p',
      'red circles',
      '-n',
      'blue',
      '-W',
      '320',
      '-H',
      '256',
      '--steps',
      '3',
      '-s',
      '7',
    ]);
    expect(result.code).toBe(0);
    expect(pngSize(result.file)).toEqual({ width: 320, height: 256 });
    expect(samplingBars(result.stdout)).toHaveLength(3);
  });

  it('writes byte-identical PNGs for the same inputs, and different ones for another prompt, negative prompt or seed', async () => {
    const base = ['-W', '256', '-H', '256', '--steps', '4'];
    const run = async (...args: string[]) => {
      const result = await generate([...base, ...args]);
      expect(result.code).toBe(0);
      return readFileSync(result.file);
    };
    const first = await run('-p', 'a green hill under a yellow sun', '-n', 'fog', '-s', '1234');
    const again = await run('-p', 'a green hill under a yellow sun', '-n', 'fog', '-s', '1234');
    expect(again.equals(first)).toBe(true);
    expect((await run('-p', 'a purple sea with red boats', '-n', 'fog', '-s', '1234')).equals(first)).toBe(false);
    expect((await run('-p', 'a green hill under a yellow sun', '-n', 'fog', '-s', '1235')).equals(first)).toBe(false);
    expect((await run('-p', 'a green hill under a yellow sun', '-n', 'night', '-s', '1234')).equals(first)).toBe(false);
  });

  it('draws one progress bar per step in the format of docs/engine.md, and ends with the save line', async () => {
    const result = await generate(['-p', 'stripes', '-W', '256', '-H', '256', '--steps', '6']);
    expect(result.code).toBe(0);
    const bars = samplingBars(result.stdout);
    expect(bars.map((bar) => BAR.exec(bar)?.slice(1, 3))).toEqual([1, 2, 3, 4, 5, 6].map((s) => [String(s), '6']));
    // Each bar is redrawn in place: `\r` before it, clear-to-end-of-line after; a newline only after the last.
    expect(result.stdout).toMatch(/\r {2}\|[=> ]+\| 1\/6 - [\d.]+(s\/it|it\/s)\x1b\[K\r/);
    expect(result.stdout).toMatch(/\| 6\/6 - [\d.]+(s\/it|it\/s)\x1b\[K\n/);
    expect(result.stdout).toMatch(/\[INFO \].* - sampling completed, taking [\d.]+s\n/);
    expect(result.stdout).toMatch(/ - generate_image completed in [\d.]+s$/m);
    const [save, saved] = result.stdout.trimEnd().split('\n').slice(-2);
    expect(save).toMatch(new RegExp(`save result image 0 to '${result.file}' \\(success\\)$`));
    expect(saved).toMatch(/ - 1\/1 images saved$/);
  });

  it('exits 1 on an unknown flag or a bad name, and aborts on a value that is not a number, like sd-cli', async () => {
    const unknown = await generate(['-p', 'x', '--no-such-flag']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout + unknown.stderr).toMatch(/unknown argument: --no-such-flag/);
    expect(existsSync(unknown.file)).toBe(false);

    const badSteps = await generate(['-p', 'x', '--steps', 'many']);
    expect(badSteps.signal).toBe('SIGABRT');
    expect(badSteps.stderr).toContain("terminate called after throwing an instance of 'std::invalid_argument'");
    const badSampler = await generate(['-p', 'x', '--sampling-method', 'magic']);
    expect(badSampler.code).toBe(1);
    const missingModel = await generate(['-p', 'x', '-m', join(dir, 'no-such-model.safetensors')]);
    expect(missingModel.code).toBe(1);
  });

  it('REFENGINE_STEP_MS makes each step take at least that long', async () => {
    const started = performance.now();
    const result = await generate(['-p', 'slow', '-W', '256', '-H', '256', '--steps', '4'], {
      REFENGINE_STEP_MS: '150',
    });
    expect(result.code).toBe(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(4 * 150);
    for (const bar of samplingBars(result.stdout)) {
      const [, , , rate, unit] = BAR.exec(bar)!;
      const secondsPerStep = unit === 's/it' ? Number(rate) : 1 / Number(rate);
      expect(secondsPerStep).toBeGreaterThanOrEqual(0.14);
    }
  });

  it('REFENGINE_LOAD_MS is the model load: a # bar in bytes per second before any step, which is no denoising progress', async () => {
    const result = await generate(['-p', 'a slow load', '-W', '64', '-H', '64', '--steps', '3'], {
      REFENGINE_LOAD_MS: '600',
    });
    expect(result.code).toBe(0);
    const loadStart = result.stdout.indexOf('loading model from');
    const loadEnd = result.stdout.indexOf('loading model completed');
    expect(loadStart).toBeGreaterThan(-1);
    expect(loadEnd).toBeGreaterThan(loadStart);
    expect(loadEnd).toBeLessThan(result.stdout.indexOf('generating image:'));
    const loadBars = result.stdout
      .slice(loadStart, loadEnd)
      .split(/[\r\n]/)
      .map((s) => s.replace(/\x1b\[K/g, '').trim())
      .filter((s) => s.startsWith('|'));
    // sd.cpp's pretty_bytes_progress: `#` columns, tensors done/total, GB/s from 1024 MB/s up, else MB/s.
    expect(loadBars.length).toBeGreaterThan(1);
    for (const bar of loadBars) expect(bar).toMatch(/^\|[# ]{50}\| \d+\/\d+ - [\d.]+[MG]B\/s$/);
    expect(loadBars.at(-1)).toMatch(/^\|#{50}\| (\d+)\/\1 - /);
    // The loading takes at least what the setting asks (a sleep), and says so.
    const [, tensors] = / - loading tensors completed, taking ([\d.]+)s$/m.exec(result.stdout)!;
    expect(Number(tensors)).toBeGreaterThanOrEqual(0.59);
    // The worker's parser sees the three denoising steps only.
    expect(new ProgressParser().push(result.stdout).map((p) => p.step)).toEqual([1, 2, 3]);
  });

  it('REFENGINE_OOM_AT_STEP prints the CUDA out-of-memory messages at that step and exits 1', async () => {
    const result = await generate(['-p', 'big', '-W', '256', '-H', '256', '--steps', '5'], {
      REFENGINE_OOM_AT_STEP: '3',
    });
    expect(result.code).toBe(1);
    expect(result.signal).toBeNull();
    expect(result.stderr).toContain('cudaMalloc failed: out of memory');
    expect(result.stdout + result.stderr).toContain('failed to allocate the compute buffer');
    expect(samplingBars(result.stdout).map((bar) => BAR.exec(bar)?.[1])).toEqual(['1', '2']);
    expect(existsSync(result.file)).toBe(false);
  });

  it('REFENGINE_ABORT_AT_STEP dies of SIGABRT at that step', async () => {
    const result = await generate(['-p', 'boom', '-W', '256', '-H', '256', '--steps', '5'], {
      REFENGINE_ABORT_AT_STEP: '2',
    });
    expect(result.signal).toBe('SIGABRT');
    expect(result.stderr).toContain('CUDA error');
    expect(samplingBars(result.stdout).map((bar) => BAR.exec(bar)?.[1])).toEqual(['1']);
    expect(existsSync(result.file)).toBe(false);
  });

  it('REFENGINE_HANG_AT_STEP stops answering at that step until it is killed', async () => {
    let pid = 0;
    let seen = '';
    let stepOneAt = 0;
    const running = runBinary(
      bin,
      ['-m', REFERENCE_MODEL_FILE, '-p', 'stuck', '-W', '256', '-H', '256', '--steps', '5', '-o', out()],
      { REFENGINE_HANG_AT_STEP: '2' },
      (chunk, childPid) => {
        pid = childPid;
        seen += chunk;
        if (!stepOneAt && BAR.test(seen.slice(seen.indexOf('generating image:')))) stepOneAt = performance.now();
      },
    );
    await expect.poll(() => stepOneAt, { timeout: 10_000 }).toBeGreaterThan(0);
    const before = seen.length;
    // Far longer than a 256×256 step takes; a hung engine says nothing more and stays alive.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(seen.length).toBe(before);
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    const result = await running;
    expect(result.signal).toBe('SIGKILL');
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A 128×96 picture with gradients and two halves, unlike anything the prompts below draw. */
function initPixels(width = 128, height = 96): Buffer {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = (x * 255) / width;
      px[i + 1] = (y * 255) / height;
      px[i + 2] = x < width / 2 ? 200 : 30;
    }
  return px;
}

const raw = (width: number, height: number, channels: 1 | 3 | 4 = 3) => ({ raw: { width, height, channels } });

async function writePng(file: string, pixels: Buffer, width: number, height: number, channels: 1 | 3 = 3) {
  let image = sharp(pixels, raw(width, height, channels));
  if (channels === 1) image = image.toColourspace('b-w');
  await image.png().toFile(file);
  return file;
}

/** White (repaint) inside the rectangle, black elsewhere. */
function maskPixels(width: number, height: number, box: { x0: number; y0: number; x1: number; y1: number }): Buffer {
  const px = Buffer.alloc(width * height);
  for (let y = box.y0; y < box.y1; y++) px.fill(255, y * width + box.x0, y * width + box.x1);
  return px;
}

async function rgbOf(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

const steps = (stdout: string) => samplingBars(stdout).map((bar) => Number(BAR.exec(bar)![1]));

describe('reference engine: image tools (as sd-cli)', () => {
  let init: string;
  beforeAll(async () => {
    init = await writePng(join(dir, 'init.png'), initPixels(), 128, 96);
  });

  it('img2img: the output takes the init image size, and runs the last floor(steps × strength) + 1 steps', async () => {
    for (const [strength, expected] of [
      ['0.5', 6],
      ['0.75', 8],
      ['0.05', 1],
      ['1', 10],
    ] as const) {
      const result = await generate([
        '-p',
        'a golden sun',
        '-i',
        init,
        '--strength',
        strength,
        '--steps',
        '10',
        '-s',
        '3',
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(pngSize(result.file)).toEqual({ width: 128, height: 96 });
      expect(result.stdout).toMatch(/^\[INFO \] common\.cpp:\d+\s+- set width x height to 128 x 96$/m);
      expect(result.stdout).toMatch(/ - IMG2IMG$/m);
      expect(steps(result.stdout)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
      expect(samplingBars(result.stdout).at(-1)).toContain(` ${expected}/${expected} - `);
      if (strength !== '1') expect(result.stdout).toContain(`target t_enc is ${expected - 1} steps`);
      else expect(result.stdout).not.toContain('target t_enc');
    }
  });

  it('img2img: the init image shows through less as strength grows; the same run gives the same bytes', async () => {
    const source = (await rgbOf(init)).data;
    const distances: number[] = [];
    const runs: Buffer[] = [];
    for (const strength of ['0.05', '0.3', '0.6', '1']) {
      const result = await generate([
        '-p',
        'a golden sun over a purple sea',
        '-i',
        init,
        '--strength',
        strength,
        '--steps',
        '12',
      ]);
      expect(result.code, result.stderr).toBe(0);
      distances.push(meanAbsDiff(source, (await rgbOf(result.file)).data));
      runs.push(readFileSync(result.file));
    }
    for (let i = 1; i < distances.length; i++)
      expect(distances[i]!, distances.join(' ')).toBeGreaterThan(distances[i - 1]! + 5);
    expect(distances[0]).toBeLessThan(5); // nearly the init image
    const again = await generate([
      '-p',
      'a golden sun over a purple sea',
      '-i',
      init,
      '--strength',
      '0.3',
      '--steps',
      '12',
    ]);
    expect(readFileSync(again.file).equals(runs[1]!)).toBe(true);
    expect(runs[1]!.equals(runs[2]!)).toBe(false);
  });

  it('img2img with -W and -H: the init image is centre-cropped to that aspect and resized, with sd-cli’s lines', async () => {
    const result = await generate(['-p', 'x', '-i', init, '-W', '64', '-H', '64', '--steps', '2']);
    expect(result.code, result.stderr).toBe(0);
    expect(pngSize(result.file)).toEqual({ width: 64, height: 64 });
    expect(result.stdout).toMatch(
      /^\[INFO \] media_io\.cpp:\d+\s+- crop input image from 128x96 to 96x96, image_path = .*init\.png$/m,
    );
    expect(result.stdout).toMatch(/^\[INFO \] media_io\.cpp:\d+\s+- resize input image from 96x96 to 64x64$/m);
    expect(result.stdout).not.toContain('set width x height');
    // Only -W: sd-cli takes the init image's size for both.
    const onlyWidth = await generate(['-p', 'x', '-i', init, '-W', '64', '--steps', '2']);
    expect(pngSize(onlyWidth.file)).toEqual({ width: 128, height: 96 });
  });

  it('inpainting: every pixel outside the mask is the init image’s, exactly (the label too stays inside the mask); -b 2 makes name_0 and name_1', async () => {
    // 256×192: big enough for the burnt-in label, which falls outside this mask.
    const init = await writePng(join(dir, 'init-256.png'), initPixels(256, 192), 256, 192);
    const mask = await writePng(
      join(dir, 'mask-256.png'),
      maskPixels(256, 192, { x0: 64, y0: 48, x1: 192, y1: 144 }),
      256,
      192,
      1,
    );
    const file = out();
    const result = await runBinary(bin, [
      '-m',
      REFERENCE_MODEL_FILE,
      '-p',
      'a golden sun over a purple sea',
      '-i',
      init,
      '--mask',
      mask,
      '--strength',
      '1',
      '--steps',
      '6',
      '-s',
      '7',
      '-b',
      '2',
      '-o',
      file,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('generating image: 1/2 - seed 7');
    expect(result.stdout).toContain('generating image: 2/2 - seed 8');
    expect(existsSync(file)).toBe(false);
    const source = (await rgbOf(init)).data;
    const maskBytes = (await sharp(mask).greyscale().raw().toBuffer()) as Buffer;
    const images = [];
    for (const name of outputFilesOf(file, 2)) {
      const image = await rgbOf(name);
      expect([image.width, image.height]).toEqual([256, 192]);
      let kept = 0;
      let repaintedDiff = 0;
      for (let px = 0; px < 256 * 192; px++) {
        const same = [0, 1, 2].every((c) => image.data[px * 3 + c] === source[px * 3 + c]);
        if (maskBytes[px] === 0) {
          expect(same, `pixel ${px % 256},${Math.floor(px / 256)} of ${name}`).toBe(true);
          kept++;
        } else if (!same) repaintedDiff++;
      }
      expect(kept).toBe(256 * 192 - 128 * 96);
      expect(repaintedDiff).toBeGreaterThan(128 * 96 * 0.9); // the masked part really was repainted
      images.push(image.data);
    }
    expect(images[0]!.equals(images[1]!)).toBe(false); // seed + i
  });

  it('a mask of another size is cropped and resized to the output as sd-cli does (not refused)', async () => {
    // 256×256 (square) for a 128×96 image: cropped to 256×192, then halved; the mask's box lands on the same pixels.
    const big = await writePng(
      join(dir, 'mask-big.png'),
      maskPixels(256, 256, { x0: 64, y0: 32 + 48, x1: 192, y1: 32 + 144 }),
      256,
      256,
      1,
    );
    const result = await generate(['-p', 'x', '-i', init, '--mask', big, '--steps', '3']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/crop input image from 256x256 to 256x192, image_path = .*mask-big\.png$/m);
    expect(result.stdout).toMatch(/resize input image from 256x192 to 128x96$/m);
    const source = (await rgbOf(init)).data;
    const image = await rgbOf(result.file);
    for (let y = 0; y < 96; y++)
      for (let x = 0; x < 128; x++) {
        if (x >= 32 && x < 96 && y >= 24 && y < 72) continue;
        const px = (y * 128 + x) * 3;
        expect(image.data.subarray(px, px + 3).equals(source.subarray(px, px + 3)), `${x},${y}`).toBe(true);
      }
  });

  it('-M upscale: 4× per repeat, no diffusion model loaded, the input really upscaled, -o as usual', async () => {
    for (const [repeats, factor] of [
      ['1', 4],
      ['2', 16],
    ] as const) {
      const file = out();
      const result = await runBinary(bin, [
        '-M',
        'upscale',
        '--upscale-model',
        REFERENCE_MODEL_FILE,
        '-i',
        init,
        '--upscale-repeats',
        repeats,
        '-o',
        file,
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      expect(pngSize(file)).toEqual({ width: 128 * factor, height: 96 * factor });
      expect(result.stdout).not.toContain('loading model from');
      expect(result.stdout.match(/ - upscaling from \(\d+ x \d+\) to \(\d+ x \d+\)$/gm)).toHaveLength(
        factor === 4 ? 1 : 2,
      );
      expect(result.stdout).toContain(`save result image 0 to '${file}' (success)`);
      // As sd-cli: a tile bar only for an input larger than one 128-px tile (the second pass's 512×384).
      expect(BAR.test(result.stdout)).toBe(factor === 16);
      // Shrunk back, it is the input (the label aside): an upscale, not a new picture.
      const back = await sharp(file).resize(128, 96, { kernel: 'lanczos3' }).removeAlpha().raw().toBuffer();
      expect(meanAbsDiff(back, (await rgbOf(init)).data)).toBeLessThan(4);
    }
  });

  it('-M upscale refuses what sd-cli refuses, and goes on without an upscaler file as sd-cli does', async () => {
    const noInit = await runBinary(bin, ['-M', 'upscale', '--upscale-model', REFERENCE_MODEL_FILE, '-o', out()]);
    expect(noInit.code).toBe(1);
    expect(noInit.stderr).toMatch(
      /^\[ERROR\] common\.cpp:\d+\s+- error: upscale mode needs an init image \(--init-img\)$/m,
    );
    const zero = await runBinary(bin, [
      '-M',
      'upscale',
      '--upscale-model',
      REFERENCE_MODEL_FILE,
      '-i',
      init,
      '--upscale-repeats',
      '0',
    ]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toBe(''); // sd-cli prints only its usage
    expect(zero.stdout).toMatch(/^stable-diffusion\.cpp version .*\nUsage: /);
    // sd-cli master-827 logs two errors, then saves the image as it came, and exits 0: the worker must check the size.
    const file = out();
    const missing = await runBinary(bin, [
      '-M',
      'upscale',
      '--upscale-model',
      join(dir, 'no-esrgan.pth'),
      '-i',
      init,
      '-o',
      file,
    ]);
    expect(missing.code).toBe(0);
    expect(missing.stdout).toMatch(/^\[WARN \] model_loader\.cpp:\d+\s+- file .*no-esrgan\.pth not found$/m);
    expect(missing.stderr).toMatch(
      /^\[ERROR\] upscaler\.cpp:\d+\s+- init model loader from file failed: '.*no-esrgan\.pth'$/m,
    );
    expect(missing.stderr).toMatch(/^\[ERROR\] main\.cpp:\d+\s+- new_upscaler_ctx failed$/m);
    expect(pngSize(file)).toEqual({ width: 128, height: 96 });
  });

  it('img_gen with --upscale-model upscales the generated images, as sd-cli does', async () => {
    const result = await generate([
      '-p',
      'x',
      '-W',
      '64',
      '-H',
      '32',
      '--steps',
      '2',
      '--upscale-model',
      REFERENCE_MODEL_FILE,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(pngSize(result.file)).toEqual({ width: 256, height: 128 });
  });

  it('--preview rewrites the preview file every --preview-interval steps (proj: 1/8 size, vae: full size)', async () => {
    const previewDir = join(dir, 'previews');
    mkdirSync(previewDir, { recursive: true });
    const preview = join(previewDir, 'live.png');
    const result = await generate([
      '-p',
      'x',
      '-W',
      '128',
      '-H',
      '64',
      '--steps',
      '10',
      '-b',
      '2',
      '-v',
      '--preview',
      'proj',
      '--preview-path',
      preview,
      '--preview-interval',
      '3',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const written = [
      ...result.stdout.matchAll(
        /\[DEBUG\] \S+:\d+\s+- preview (\d+): step (\d+)\/(\d+), (\d+)x(\d+) proj, written to '(.*)'$/gm,
      ),
    ];
    expect(written.map((m) => `${m[2]}/${m[3]}`)).toEqual(['3/10', '6/10', '9/10', '3/10', '6/10', '9/10']);
    expect(new Set(written.map((m) => `${m[4]}x${m[5]} ${m[6]}`))).toEqual(new Set([`16x8 ${preview}`]));
    expect(pngSize(preview)).toEqual({ width: 16, height: 8 });

    const vae = await generate([
      '-p',
      'x',
      '-W',
      '64',
      '-H',
      '32',
      '--steps',
      '4',
      '-v',
      '--preview',
      'vae',
      '--preview-path',
      preview,
      '--preview-interval',
      '2',
    ]);
    expect(vae.stdout.match(/ - preview \d+: step \d+\/4, 64x32 vae/g)).toHaveLength(2);
    expect(pngSize(preview)).toEqual({ width: 64, height: 32 });
  });

  it('--preview writes during sampling, each time a new complete file (temp + rename), ./preview.png by default', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const preview = join(cwd, 'preview.png');
    const versions = new Set<string>(); // the previews' contents seen while sampling
    let torn = 0; // reads that found less than a whole PNG
    let sampling = true;
    let seen = '';
    const poll = setInterval(() => {
      if (!sampling || !existsSync(preview)) return;
      try {
        const bytes = readFileSync(preview);
        if (bytes.subarray(-8, -4).toString('latin1') !== 'IEND') torn++;
        versions.add(createHash('sha1').update(bytes).digest('hex'));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }, 20);
    const result = await runBinary(
      bin,
      [
        '-m',
        REFERENCE_MODEL_FILE,
        '-p',
        'x',
        '-W',
        '64',
        '-H',
        '64',
        '--steps',
        '6',
        '--preview',
        'tae',
        '-o',
        join(cwd, 'out.png'),
      ],
      { REFENGINE_STEP_MS: '150', REFENGINE_LOAD_MS: '10' },
      (chunk) => {
        seen += chunk;
        if (seen.includes('sampling completed')) sampling = false;
      },
      cwd,
    );
    clearInterval(poll);
    expect(result.code, result.stderr).toBe(0);
    expect(versions.size).toBeGreaterThanOrEqual(3); // a new picture replaced the last one step after step
    expect(torn).toBe(0);
    expect(readdirSync(cwd).sort()).toEqual(['out.png', 'preview.png']); // no temporary file left behind
    expect(pngSize(preview)).toEqual({ width: 64, height: 64 });
  });

  it('a preview that cannot be written is sd-cli’s error line; the run goes on', async () => {
    const result = await generate([
      '-p',
      'x',
      '-W',
      '64',
      '-H',
      '64',
      '--steps',
      '2',
      '--preview',
      'proj',
      '--preview-path',
      join(dir, 'nowhere', 'p.png'),
    ]);
    expect(result.code).toBe(0);
    expect(
      result.stderr.match(/^\[ERROR\] main\.cpp:\d+\s+- save preview image to '.*nowhere\/p\.png' failed$/gm),
    ).toHaveLength(2);
    expect(existsSync(result.file)).toBe(true);
    const bad = await generate(['-p', 'x', '--preview', 'fancy']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^\[ERROR\] main\.cpp:\d+\s+- error: preview method fancy$/m);
    expect(bad.stderr).toMatch(/error: invalid parameter for argument: --preview$/m);
  });

  it('bad input images: sd-cli’s error lines and exit 1, before any model loads, and no output', async () => {
    const png = readFileSync(init);
    const cases: [string, string, RegExp[]][] = [
      [
        'missing',
        join(dir, 'absent.png'),
        [/^\[ERROR\] media_io\.cpp:\d+\s+- load image from '.*absent\.png' failed$/m],
      ],
      [
        'not a PNG',
        writeAt('not-png.png', Buffer.from('this is not an image\n')),
        [/media_io\.cpp:\d+\s+- load image from '.*not-png\.png' failed$/m],
      ],
      [
        'truncated',
        writeAt('truncated.png', png.subarray(0, Math.floor(png.length / 2))),
        [/media_io\.cpp:\d+\s+- load image from '.*truncated\.png' failed$/m],
      ],
      [
        'damaged',
        writeAt('damaged.png', corrupt(png)),
        [/media_io\.cpp:\d+\s+- load image from '.*damaged\.png' failed$/m],
      ],
      [
        'grayscale (sd-cli wants 3 channels)',
        await writePng(join(dir, 'gray.png'), maskPixels(128, 96, { x0: 0, y0: 0, x1: 10, y1: 10 }), 128, 96, 1),
        [
          /^the number of channels for the input image must be >= 3,but got 1 channels, image_path = .*gray\.png\[ERROR\] main\.cpp/m,
        ],
      ],
      [
        'interlaced',
        await sharp(initPixels(), raw(128, 96))
          .png({ progressive: true })
          .toFile(join(dir, 'adam7.png'))
          .then(() => join(dir, 'adam7.png')),
        [/^\[ERROR\] refengine\.c:\d+\s+- cannot read '.*adam7\.png': interlaced \(Adam7\) PNG/m],
      ],
      [
        'a JPEG',
        await sharp(initPixels(), raw(128, 96))
          .jpeg()
          .toFile(join(dir, 'photo.jpg'))
          .then(() => join(dir, 'photo.jpg')),
        [
          /^\[ERROR\] refengine\.c:\d+\s+- cannot read '.*photo\.jpg': a JPEG file, and the reference engine reads only PNG$/m,
        ],
      ],
    ];
    for (const [name, file, patterns] of cases) {
      const result = await generate(['-p', 'x', '-i', file, '--steps', '2']);
      const shown = `${name}\n${result.stdout}\n${result.stderr}`;
      expect(result.code, shown).toBe(1);
      for (const pattern of patterns) expect(result.stderr, shown).toMatch(pattern);
      expect(result.stderr, shown).toMatch(
        new RegExp(`\\[ERROR\\] main\\.cpp:\\d+\\s+- load image from '${file}' failed$`, 'm'),
      );
      expect(result.stdout, shown).not.toContain('loading model from');
      expect(existsSync(result.file), shown).toBe(false);
    }
    const badMask = await generate(['-p', 'x', '-i', init, '--mask', join(dir, 'absent-mask.png')]);
    expect(badMask.code).toBe(1);
    expect(badMask.stderr).toMatch(/^\[ERROR\] main\.cpp:829\s+- load image from '.*absent-mask\.png' failed$/m);
  });

  it('refuses a strength outside [0, 1] as sd-cli, aborts on one that is not a number, and an init size it cannot sample at', async () => {
    const high = await generate(['-p', 'x', '-i', init, '--strength', '1.5']);
    expect(high.code).toBe(1);
    expect(high.stderr).toMatch(
      /^\[ERROR\] common\.cpp:\d+\s+- error: can only work with strength in \[0\.0, 1\.0\]$/m,
    );
    const word = await generate(['-p', 'x', '-i', init, '--strength', 'strong']);
    expect(word.signal).toBe('SIGABRT');
    expect(word.stderr).toContain('what():  stof');
    const odd = await writePng(join(dir, 'odd.png'), initPixels(100, 60), 100, 60);
    const notEight = await generate(['-p', 'x', '-i', odd]);
    expect(notEight.code).toBe(1);
    expect(notEight.stderr).toMatch(
      /^\[ERROR\] refengine\.c:\d+\s+- the width must be a multiple of 8 \(got 100, from the init image .*odd\.png\)$/m,
    );
  });

  it('its PNG reader and inflate decode what libpng and zlib write, exactly, and fail cleanly on every truncation', async () => {
    const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
    expect(cc, 'a C compiler (the engine build needs one too)').toBeTruthy();
    const engineDir = fileURLToPath(new URL('../../reference-engine/', import.meta.url));
    const selftest = join(dir, 'pngread_selftest');
    const sources = ['test/pngread_selftest.c', 'pngread.c', 'inflate.c', 'png.c'].map((f) => join(engineDir, f));
    const sanitize = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all'];
    const build = (extra: string[]) =>
      spawnSync(cc!, ['-std=c11', '-O1', '-Wall', '-Wextra', '-Werror', ...extra, '-o', selftest, ...sources], {
        encoding: 'utf8',
      });
    if (build(sanitize).status !== 0) expect(build([]).stderr).toBe('');

    const pixels = initPixels();
    const pairs: string[] = [];
    // sharp writes 1-, 2- and 4-bit palettes for 2, 4 and 16 colours
    const variants: [string, Sharp][] = [
      ['rgb', sharp(pixels, raw(128, 96)).png()],
      ['rgb-stored', sharp(pixels, raw(128, 96)).png({ compressionLevel: 0 })],
      ['rgb-fast', sharp(pixels, raw(128, 96)).png({ compressionLevel: 1, adaptiveFiltering: true })],
      ['rgba', sharp(pixels, raw(128, 96)).ensureAlpha(0.5).png()],
      ['rgb16', sharp(pixels, raw(128, 96)).toColourspace('rgb16').png()],
      ['gray', sharp(pixels, raw(128, 96)).toColourspace('b-w').png()],
      ['gray-alpha', sharp(pixels, raw(128, 96)).toColourspace('b-w').ensureAlpha().png()],
      ['palette8', sharp(pixels, raw(128, 96)).png({ palette: true, colours: 200 })],
      ['palette4', sharp(pixels, raw(128, 96)).png({ palette: true, colours: 16 })],
      ['palette2', sharp(pixels, raw(128, 96)).png({ palette: true, colours: 4 })],
      ['palette1', sharp(pixels, raw(128, 96)).png({ palette: true, colours: 2 })],
      ['tiny', sharp(pixels.subarray(0, 9), raw(3, 1)).png()],
    ];
    for (const [name, image] of variants) {
      const file = join(dir, `${name}.png`);
      await image.toFile(file);
      writeFileSync(`${file}.rgb`, (await rgbOf(file)).data);
      pairs.push(file, `${file}.rgb`);
    }
    const pngs = execFileSync(selftest, pairs, { encoding: 'utf8' });
    expect(pngs.trim().split('\n')).toHaveLength(variants.length);

    const streams: string[] = [];
    const engineSource = readFileSync(join(engineDir, 'refengine.c'));
    const noise = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7919 + (i >> 3) * 104_729) & 0xff));
    for (const [name, data, level] of [
      ['empty', Buffer.alloc(0), 6],
      ['fixed-huffman', Buffer.from('abcabcabcabcabc hello hello'), 1],
      ['dynamic', engineSource, 9],
      ['stored', noise, 0],
      ['long-runs', Buffer.alloc(100_000, 7), 9],
    ] as const) {
      writeFileSync(join(dir, `${name}.bin`), data);
      writeFileSync(join(dir, `${name}.z`), deflateSync(data, { level }));
      streams.push(join(dir, `${name}.z`), join(dir, `${name}.bin`));
    }
    expect(
      execFileSync(selftest, ['--zlib', ...streams], { encoding: 'utf8' })
        .trim()
        .split('\n'),
    ).toHaveLength(5);
  }, 180_000); // a compile with sanitizers, on a busy machine
});

function writeAt(name: string, bytes: Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

/** A byte inside the image data flipped: the chunk's CRC no longer matches. */
function corrupt(png: Buffer): Buffer {
  const copy = Buffer.from(png);
  const idat = copy.indexOf('IDAT');
  copy[idat + 20] = copy[idat + 20]! ^ 0x55;
  return copy;
}

function outputFilesOf(file: string, count: number): string[] {
  const stem = file.slice(0, -'.png'.length);
  return Array.from({ length: count }, (_, i) => `${stem}_${i}.png`);
}
