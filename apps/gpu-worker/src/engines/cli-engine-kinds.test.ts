import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSCALE_MODEL_ID, type EngineJob, type EngineParams } from '@pingvas/core';
import { REFERENCE_MODEL_FILE } from '../config.js';
import { referenceEngine } from '../test/reference-engine.js';
import { CliEngine } from './cli-engine.js';
import type { EngineJobFiles } from './engine.js';

/**
 * The CLI engine for every job kind: the command line it builds (core's engineArgs after the
 * registry's model flags), and what it makes of a run's files, against the reference engine.
 */

let bin: string;
beforeAll(() => {
  bin = referenceEngine();
});
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
const engine = (over: { upscaleModel?: string } = {}) => new CliEngine({ bin, name: 'sd-cli', models, ...over });
/** The reference engine wants its model files to exist. */
const runnable = (over: { bin?: string; upscaleModel?: string } = {}) =>
  new CliEngine({
    bin: over.bin ?? bin,
    name: 'reference',
    models: { sdxl: { args: ['-m', REFERENCE_MODEL_FILE] } },
    ...over,
  });
const prefix = ['-m', '/models/sdxl.safetensors', '-p', 'a harbour at dusk', '-W', '64', '-H', '48', '--steps', '6'];
const sampling = ['--cfg-scale', '5', '-s', '3', '--sampling-method', 'euler'];

describe('CliEngine.models', () => {
  it('lists the upscaler among its models only with ESRGAN weights, so that upscales go elsewhere otherwise', () => {
    expect(engine().models()).toEqual({ warm: [], loadable: ['sdxl'] });
    expect(engine({ upscaleModel: '/models/esrgan.pth' }).models()).toEqual({
      warm: [],
      loadable: ['sdxl', UPSCALE_MODEL_ID],
    });
  });
});

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
    const outcome = await runnable().run({ kind: 'img2img', params, count: 1, strength: 0.5 }, files(), {
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
    const outcome = await runnable().run(
      { kind: 'img2img', params, count: 3, strength: 0.5 },
      { inputs: { initImage: await initImage(folder) }, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(outcome).toMatchObject({
      ok: true,
      images: [0, 1, 2].map((i) => ({ path: join(folder, `original_${i}.png`), width: 64, height: 48 })),
    });
  });

  /** Per-channel stats of a 32-column half of a 64×48 image (stats() alone would read the whole input). */
  async function regionStats(path: string, left: number) {
    return sharp(await sharp(path).extract({ left, top: 0, width: 32, height: 48 }).png().toBuffer()).stats();
  }

  it('inpaints only where the mask is white: the rest of every image is the init image, exactly', async () => {
    const folder = jobDir();
    const mask = join(folder, 'mask.png');
    const columns = Buffer.alloc(64 * 48);
    for (let i = 0; i < columns.length; i++) columns[i] = i % 64 >= 32 ? 255 : 0;
    await sharp(columns, { raw: { width: 64, height: 48, channels: 1 } })
      .png()
      .toFile(mask);
    const outcome = await runnable().run(
      { kind: 'inpaint', params, count: 2, strength: 1 },
      { inputs: { initImage: await initImage(folder), mask }, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    if (!outcome.ok) throw new Error(outcome.detail);
    expect(outcome.images).toHaveLength(2);
    for (const image of outcome.images) {
      const kept = await regionStats(image.path, 0);
      expect(kept.channels.map((c) => [c.min, c.max])).toEqual([
        [0, 0],
        [0, 0],
        [255, 255],
      ]);
      const painted = await regionStats(image.path, 32);
      expect(painted.channels.map((c) => [c.min, c.max])).not.toEqual([
        [0, 0],
        [0, 0],
        [255, 255],
      ]);
    }
  });

  it('fails a batch with one image missing as BAD_OUTPUT naming it', async () => {
    const folder = jobDir();
    const wrapper = join(folder, 'loses-one.sh');
    writeFileSync(wrapper, `#!/bin/sh\n"${bin}" "$@" && rm "${join(folder, 'original_1.png')}"\n`);
    chmodSync(wrapper, 0o755);
    const outcome = await runnable({ bin: wrapper }).run(
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
    const outcome = await runnable({ upscaleModel: REFERENCE_MODEL_FILE }).run(
      { kind: 'upscale', scale: 4, source: { width: 64, height: 48 } },
      { inputs: { initImage: await initImage(folder) }, output: join(folder, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(outcome).toMatchObject({ ok: true, images: [{ width: 256, height: 192 }] });
    // A source of another size than the job says makes an image of the wrong size: refused.
    const other = jobDir();
    const wrong = await runnable({ upscaleModel: REFERENCE_MODEL_FILE }).run(
      { kind: 'upscale', scale: 4, source: { width: 32, height: 32 } },
      { inputs: { initImage: await initImage(other) }, output: join(other, 'original.png') },
      { timeoutMs: 20_000 },
    );
    expect(wrong).toMatchObject({ ok: false, code: 'BAD_OUTPUT' });
  });

  it('passes the preview file to the engine, which writes frames there', async () => {
    const folder = jobDir();
    const preview = { path: join(folder, 'preview.png'), intervalSteps: 2 };
    const outcome = await runnable().run(
      { kind: 'txt2img', params, count: 1 },
      { inputs: {}, output: join(folder, 'original.png'), preview },
      { timeoutMs: 20_000 },
    );
    expect(outcome.ok).toBe(true);
    // proj previews are the latent projected to RGB: an eighth of each side.
    expect(await sharp(preview.path).metadata()).toMatchObject({ format: 'png', width: 8, height: 6 });
  });
});
