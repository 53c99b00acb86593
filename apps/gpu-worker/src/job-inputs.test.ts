import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimedJob } from '@pingvas/core';
import { downloadInput, InputError, prepareInputs } from './job-inputs.js';

/**
 * Input preparation against a local HTTP server standing in for the store's presigned GETs:
 * what the engine gets (size, crop, a pure black-and-white mask) and what is refused.
 */

let server: Server;
let base: string;
let dir: string;
const routes = new Map<string, (res: ServerResponse) => void>();
const serve = (path: string, body: Buffer, type = 'image/png') =>
  routes.set(path, (res) => res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(body));

/** 400×200: green | white | red | white | blue bands of 100, 50, 100, 50, 100 px. */
async function bandedImage(): Promise<Buffer> {
  const band = (width: number, colour: { r: number; g: number; b: number }, left: number) => ({
    input: { create: { width, height: 200, channels: 3 as const, background: colour } },
    left,
    top: 0,
  });
  const white = { r: 255, g: 255, b: 255 };
  return sharp({ create: { width: 400, height: 200, channels: 3, background: white } })
    .composite([
      band(100, { r: 0, g: 255, b: 0 }, 0),
      band(100, { r: 255, g: 0, b: 0 }, 150),
      band(100, { r: 0, g: 0, b: 255 }, 300),
    ])
    .png()
    .toBuffer();
}

/** 400×200, grey rising from 0 at the left to 255 at the right: soft everywhere. */
async function gradientMask(): Promise<Buffer> {
  const pixels = Buffer.alloc(400 * 200);
  for (let y = 0; y < 200; y++) for (let x = 0; x < 400; x++) pixels[y * 400 + x] = Math.round((x * 255) / 399);
  return sharp(pixels, { raw: { width: 400, height: 200, channels: 1 } })
    .png()
    .toBuffer();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'job-inputs-test-'));
  serve('/init.png', await bandedImage());
  serve('/mask.png', await gradientMask());
  serve('/text', Buffer.from('this is not an image'), 'text/plain');
  routes.set('/declared-huge', (res) => res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000)));
  routes.set('/streamed-huge', (res) => {
    // No length up front: the limit must hold while reading.
    res.writeHead(200, { 'content-type': 'image/png' });
    for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000));
    res.end();
  });
  routes.set('/never-ends', (res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.write(Buffer.alloc(10));
  });
  server = createServer((req, res) => {
    const route = routes.get(req.url ?? '');
    if (route) route(res);
    else res.writeHead(404).end('no such object');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const job = (over: Partial<ClaimedJob['job']>): ClaimedJob['job'] => ({
  id: '00000000-0000-4000-8000-000000000001',
  userId: '00000000-0000-4000-8000-000000000002',
  kind: 'img2img',
  params: { prompt: 'p', model: 'sd15', width: 256, height: 256, steps: 10, cfgScale: 7, seed: 1, sampler: 'euler' },
  attempt: 1,
  count: 1,
  strength: 0.5,
  inputs: { initImage: { url: `${base}/init.png`, width: 400, height: 200 } },
  ...over,
});

let n = 0;
const jobDir = () => mkdtempSync(join(dir, `job-${++n}-`));
const never = new AbortController().signal;

async function pixel(path: string, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + info.channels)];
}

describe('prepareInputs', () => {
  it('scales the init image to cover the job size and crops the centre', async () => {
    const inputs = await prepareInputs(job({}), jobDir(), never);
    expect(inputs).toEqual({ initImage: expect.stringMatching(/\/init\.png$/) });
    expect(await sharp(inputs.initImage!).metadata()).toMatchObject({ format: 'png', width: 256, height: 256 });
    // 400×200 → 512×256, crop x 128…384 = source x 100…300: white | red | white, no green or blue.
    const close = (actual: number[], expected: number[]) =>
      actual.slice(0, 3).forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(24));
    close(await pixel(inputs.initImage!, 4, 128), [255, 255, 255]);
    close(await pixel(inputs.initImage!, 128, 128), [255, 0, 0]);
    close(await pixel(inputs.initImage!, 251, 128), [255, 255, 255]);
  });

  it('crops the mask as the init image and leaves it pure black and white', async () => {
    const inputs = await prepareInputs(
      job({
        kind: 'inpaint',
        inputs: {
          initImage: { url: `${base}/init.png`, width: 400, height: 200 },
          mask: { url: `${base}/mask.png`, width: 400, height: 200 },
        },
      }),
      jobDir(),
      never,
    );
    expect(inputs.mask).toMatch(/\/mask\.png$/);
    const { data, info } = await sharp(inputs.mask!).raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 256, height: 256 });
    expect(new Set(data)).toEqual(new Set([0, 255]));
    // The crop keeps source x 100…300, grey 64…191: the threshold at 128 splits it in the middle.
    expect((await pixel(inputs.mask!, 20, 100))[0]).toBe(0);
    expect((await pixel(inputs.mask!, 236, 100))[0]).toBe(255);
    const whiteColumns = [...Array(256).keys()].filter(
      (x) => data[100 * info.width * info.channels + x * info.channels] === 255,
    );
    expect(whiteColumns[0]).toBeGreaterThan(110);
    expect(whiteColumns[0]).toBeLessThan(146);
  });

  it('keeps an upscale source at its own size', async () => {
    const inputs = await prepareInputs(
      job({ kind: 'upscale', strength: undefined, upscale: { scale: 2, width: 800, height: 400 } }),
      jobDir(),
      never,
    );
    expect(inputs.initImage).toMatch(/\/source\.png$/);
    expect(await sharp(inputs.initImage!).metadata()).toMatchObject({ format: 'png', width: 400, height: 200 });
  });

  it('writes three channels whatever came in (sd-cli refuses a grey or grey+alpha init image)', async () => {
    const pngOfChannels = (channels: 1 | 2) =>
      sharp(Buffer.alloc(64 * 64 * channels, 128), { raw: { width: 64, height: 64, channels } })
        .toColourspace('b-w')
        .png()
        .toBuffer();
    const [grey, greyAlpha] = await Promise.all([pngOfChannels(1), pngOfChannels(2)]);
    expect((await sharp(grey).metadata()).channels).toBe(1);
    expect((await sharp(greyAlpha).metadata()).channels).toBe(2);
    serve('/grey.png', grey);
    serve('/grey-alpha.png', greyAlpha);
    const fromGrey = await prepareInputs(
      job({ inputs: { initImage: { url: `${base}/grey.png`, width: 64, height: 64 } } }),
      jobDir(),
      never,
    );
    const upscaleFromGreyAlpha = await prepareInputs(
      job({
        kind: 'upscale',
        strength: undefined,
        upscale: { scale: 2, width: 128, height: 128 },
        inputs: { initImage: { url: `${base}/grey-alpha.png`, width: 64, height: 64 } },
      }),
      jobDir(),
      never,
    );
    expect((await sharp(fromGrey.initImage!).metadata()).channels).toBe(3);
    expect((await sharp(upscaleFromGreyAlpha.initImage!).metadata()).channels).toBe(3);
  });

  it('needs nothing for text to image', async () => {
    expect(await prepareInputs(job({ kind: 'txt2img', strength: undefined, inputs: {} }), jobDir(), never)).toEqual({});
  });

  it('refuses a download that is not an image, and a missing object', async () => {
    const notImage = job({ inputs: { initImage: { url: `${base}/text`, width: 1, height: 1 } } });
    await expect(prepareInputs(notImage, jobDir(), never)).rejects.toThrow(
      expect.objectContaining({
        constructor: InputError,
        message: expect.stringMatching(/^the init image is not an image we can read/),
      }),
    );
    const missing = job({ inputs: { initImage: { url: `${base}/gone.png`, width: 1, height: 1 } } });
    await expect(prepareInputs(missing, jobDir(), never)).rejects.toThrow(
      'the init image could not be downloaded: HTTP 404',
    );
  });
});

describe('downloadInput', () => {
  const limits = { maxBytes: 4000, timeoutMs: 10_000 };

  it('returns the bytes within the limit', async () => {
    const bytes = await downloadInput(`${base}/text`, 'mask', never, limits);
    expect(bytes.toString()).toBe('this is not an image');
  });

  it('refuses a download over the limit, whether it says its length or not', async () => {
    await expect(downloadInput(`${base}/declared-huge`, 'mask', never, limits)).rejects.toThrow(
      new InputError('the mask is 5000 bytes, more than the 4000 an input may be'),
    );
    await expect(downloadInput(`${base}/streamed-huge`, 'mask', never, limits)).rejects.toThrow(
      new InputError('the mask is more than the 4000 bytes an input may be'),
    );
  });

  it('gives up at its timeout, and stops at once when the job is stopped', async () => {
    await expect(
      downloadInput(`${base}/never-ends`, 'mask', never, { maxBytes: 4000, timeoutMs: 300 }),
    ).rejects.toThrow(InputError);
    const stopper = new AbortController();
    const download = downloadInput(`${base}/never-ends`, 'mask', stopper.signal, limits);
    stopper.abort('shutdown');
    // A stop is not the input's fault: the caller sees its own reason, not an InputError.
    await expect(download).rejects.toBe('shutdown');
  });
});
