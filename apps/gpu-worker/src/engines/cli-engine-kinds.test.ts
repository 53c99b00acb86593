import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineJob, EngineParams } from '@pingvas/core';
import { CliEngine } from './cli-engine.js';
import type { EngineJobFiles } from './engine.js';

/**
 * The CLI engine for every job kind: the command line it builds (core's engineArgs after the
 * registry's model flags), and what it makes of a run's files, against a fake sd-cli that
 * honours -i, --mask, -b, -M upscale and --preview (src/test/fake-sd-cli.mjs).
 */

const FAKE_ENGINE = fileURLToPath(new URL('../test/fake-sd-cli.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cli-engine-kinds-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const jobDir = () => {
  const path = join(dir, `job-${++n}`);
  mkdirSync(path);
  return path;
};

const params: EngineParams = {
  prompt: 'a harbour at dusk',
  model: 'sdxl',
  width: 64,
  height: 48,
  steps: 6,
  cfgScale: 5,
  seed: 3,
  sampler: 'euler',
};
const models = { sdxl: { args: ['-m', '/models/sdxl.safetensors'] } };
const engine = (over: { bin?: string; upscaleModel?: string; env?: Record<string, string> } = {}) =>
  new CliEngine({ bin: over.bin ?? FAKE_ENGINE, name: 'sd-cli', models, ...over });
const prefix = ['-m', '/models/sdxl.safetensors', '-p', 'a harbour at dusk', '-W', '64', '-H', '48', '--steps', '6'];
const sampling = ['--cfg-scale', '5', '-s', '3', '--sampling-method', 'euler'];

describe('CliEngine.commandFor', () => {
  const files = (over: Partial<EngineJobFiles> = {}): EngineJobFiles => ({
    inputs: {},
    output: '/j/original.png',
    ...over,
  });

  it('txt2img: a batch asks -b, a preview asks proj frames at the interval', () => {
    const command = engine().commandFor(
      { kind: 'txt2img', params, count: 4 },
      files({ preview: { path: '/j/preview.png', intervalSteps: 2 } }),
    );
    expect(command).toEqual({
      args: [
        ...prefix,
        ...sampling,
        '-b',
        '4',
        '--preview',
        'proj',
        '--preview-path',
        '/j/preview.png',
        '--preview-interval',
        '2',
        '-o',
        '/j/original.png',
      ],
    });
  });

  it('img2img and inpaint: the prepared init image, the mask, the strength; one image needs no -b', () => {
    const inputs = { initImage: '/j/init.png', mask: '/j/mask.png' };
    expect(engine().commandFor({ kind: 'img2img', params, count: 1, strength: 0.4 }, files({ inputs }))).toEqual({
      args: [...prefix, ...sampling, '-i', '/j/init.png', '--strength', '0.4', '-o', '/j/original.png'],
    });
    expect(engine().commandFor({ kind: 'inpaint', params, count: 2, strength: 1 }, files({ inputs }))).toEqual({
      args: [
        ...prefix,
        ...sampling,
        '-b',
        '2',
        '-i',
        '/j/init.png',
        '--mask',
        '/j/mask.png',
        '--strength',
        '1',
        '-o',
        '/j/original.png',
      ],
    });
  });

  it('upscale: one ESRGAN pass on the source with the worker’s upscale model, no model registry flags', () => {
    const job: EngineJob = { kind: 'upscale', scale: 2, source: { width: 64, height: 48 } };
    const inputs = { initImage: '/j/source.png' };
    expect(engine({ upscaleModel: '/models/esrgan.pth' }).commandFor(job, files({ inputs }))).toEqual({
      args: [
        '-M',
        'upscale',
        '--upscale-model',
        '/models/esrgan.pth',
        '-i',
        '/j/source.png',
        '--upscale-repeats',
        '1',
        '-o',
        '/j/original.png',
      ],
    });
    expect(engine().commandFor(job, files({ inputs }))).toEqual({
      refused: 'this worker has no upscale model (ENGINE_UPSCALE_MODEL)',
    });
  });

  it('refuses a job whose input file is missing, as an engine error, without running anything', async () => {
    const outcome = await engine().run({ kind: 'img2img', params, count: 1, strength: 0.5 }, files(), {
      timeoutMs: 5_000,
    });
    expect(outcome).toMatchObject({ ok: false, code: 'ENGINE_ERROR', detail: 'a img2img job needs an init image' });
  });
});

describe('CliEngine.run with the image tools', () => {
  async function initImage(folder: string): Promise<string> {
    const path = join(folder, 'init.png');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 0, g: 0, b: 255 } } })
      .png()
      .toFile(path);
    return path;
  }

  it('returns every image of a batch, in index order, each checked', async () => {
    const folder = jobDir();
    const outcome = await engine().run(
      { kind: 'img2img', params, count: 3, strength: 0.5 },
      { inputs: { initImage: await initImage(folder) }, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(outcome).toMatchObject({
      ok: true,
      images: [0, 1, 2].map((i) => ({ path: join(folder, `original_${i}.png`), width: 64, height: 48 })),
    });
    // The fake engine paints its init image: the prepared file is what it read.
    expect(await sharp(join(folder, 'original_2.png')).stats()).toMatchObject({
      channels: [{ mean: 0 }, { mean: 0 }, { mean: 255 }],
    });
  });

  it('fails a batch with one image missing as BAD_OUTPUT naming it', async () => {
    const folder = jobDir();
    const wrapper = join(folder, 'loses-one.sh');
    writeFileSync(wrapper, `#!/bin/sh\n"${FAKE_ENGINE}" "$@" && rm "${join(folder, 'original_1.png')}"\n`);
    chmodSync(wrapper, 0o755);
    const outcome = await engine({ bin: wrapper }).run(
      { kind: 'txt2img', params, count: 2 },
      { inputs: {}, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(outcome).toMatchObject({
      ok: false,
      code: 'BAD_OUTPUT',
      detail: 'the engine exited successfully but wrote no image (image 1 of 2)',
    });
  });

  it('expects an upscale pass to write four times the source', async () => {
    const folder = jobDir();
    const outcome = await engine({ upscaleModel: '/models/esrgan.pth' }).run(
      { kind: 'upscale', scale: 4, source: { width: 64, height: 48 } },
      { inputs: { initImage: await initImage(folder) }, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(outcome).toMatchObject({ ok: true, images: [{ width: 256, height: 192 }] });
    // A source of another size than the job's makes an image of the wrong size: refused.
    const wrong = await engine({ upscaleModel: '/models/esrgan.pth' }).run(
      { kind: 'upscale', scale: 4, source: { width: 32, height: 32 } },
      { inputs: { initImage: await initImage(jobDir()) }, output: join(jobDir(), 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(wrong).toMatchObject({ ok: false, code: 'BAD_OUTPUT' });
  });

  it('passes the preview file to the engine, which writes frames there', async () => {
    const folder = jobDir();
    const argsFile = join(folder, 'args.json');
    const preview = { path: join(folder, 'preview.png'), intervalSteps: 2 };
    const outcome = await engine({ env: { FAKE_ENGINE_ARGS: argsFile } }).run(
      { kind: 'txt2img', params, count: 1 },
      { inputs: {}, output: join(folder, 'original.png'), preview },
      { timeoutMs: 20_000 },
    );
    expect(outcome.ok).toBe(true);
    const args = JSON.parse(readFileSync(argsFile, 'utf8')) as string[];
    expect(args.slice(args.indexOf('--preview'), args.indexOf('--preview') + 6)).toEqual([
      '--preview',
      'proj',
      '--preview-path',
      preview.path,
      '--preview-interval',
      '2',
    ]);
    expect(existsSync(preview.path)).toBe(true);
  });
});
