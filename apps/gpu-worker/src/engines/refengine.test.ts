import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_MODEL_FILE } from '../config.js';
import { referenceEngine, runBinary } from '../test/reference-engine.js';

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
