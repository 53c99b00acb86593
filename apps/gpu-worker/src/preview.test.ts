import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { PREVIEW_MAX_BYTES, PREVIEW_MIN_INTERVAL_MS, PREVIEW_SIDE } from '@pingvas/core';
import {
  encodePreview,
  PreviewGate,
  previewIntervalSteps,
  PreviewWatcher,
  StepSpeeds,
  type PreviewFrame,
} from './preview.js';

const dir = mkdtempSync(join(tmpdir(), 'preview-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Random pixels: WebP cannot squeeze them, so the quality ladder is exercised. */
function noise(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(Math.random() * 256);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

const solid = (shade: number, width = 64, height = 64) =>
  sharp({ create: { width, height, channels: 3, background: { r: shade, g: shade, b: shade } } })
    .png()
    .toBuffer();

describe('previewIntervalSteps', () => {
  it('aims at a frame every 1.5 s from the expected step time', () => {
    expect(previewIntervalSteps(30, 0.1)).toBe(15);
    expect(previewIntervalSteps(30, 0.5)).toBe(3);
    expect(previewIntervalSteps(30, 1.2)).toBe(1);
    // Slower than a frame's worth per step: every step.
    expect(previewIntervalSteps(30, 4)).toBe(1);
  });

  it('never waits past the last step, and without a measured speed gives about 20 frames', () => {
    expect(previewIntervalSteps(8, 0.01)).toBe(8);
    expect(previewIntervalSteps(50, undefined)).toBe(3);
    expect(previewIntervalSteps(10, undefined)).toBe(1);
    expect(previewIntervalSteps(1, undefined)).toBe(1);
  });
});

describe('StepSpeeds', () => {
  it('scales what it measured for a model by the pixels of the next job', () => {
    const speeds = new StepSpeeds();
    expect(speeds.expected('sdxl', { width: 1024, height: 1024 })).toBeUndefined();
    speeds.record('sdxl', { width: 512, height: 512 }, 0.2);
    expect(speeds.expected('sdxl', { width: 1024, height: 1024 })).toBeCloseTo(0.8);
    expect(speeds.expected('sd15', { width: 512, height: 512 })).toBeUndefined();
  });
});

describe('encodePreview', () => {
  it('fits the frame inside the preview square, keeping its shape, as WebP', async () => {
    const frame = (await encodePreview(await solid(90, 1024, 768)))!;
    expect(frame).toMatchObject({ width: PREVIEW_SIDE, height: 192 });
    const webp = Buffer.from(frame.webpBase64, 'base64');
    expect(await sharp(webp).metadata()).toMatchObject({ format: 'webp', width: PREVIEW_SIDE, height: 192 });
    expect(webp.length).toBeLessThanOrEqual(PREVIEW_MAX_BYTES);
  });

  it('lowers the quality until the frame fits, and gives up when nothing does', async () => {
    const png = await noise(256, 256);
    const first = await sharp(png).webp({ quality: 70, effort: 2 }).toBuffer();
    const limit = Math.floor(first.length * 0.6);
    const frame = (await encodePreview(png, limit))!;
    expect(Buffer.from(frame.webpBase64, 'base64').length).toBeLessThanOrEqual(limit);
    expect(await encodePreview(png, 100)).toBeNull();
  });
});

describe('PreviewGate', () => {
  const frame = (n: number): PreviewFrame => ({ webpBase64: String(n), width: 1, height: 1 });

  it('lets a frame out at most once per interval, always the newest', () => {
    let now = 10_000;
    const gate = new PreviewGate(PREVIEW_MIN_INTERVAL_MS, () => now);
    expect(gate.take()).toBeUndefined();
    expect(gate.waitMs()).toBeNull();

    gate.offer(frame(1));
    expect(gate.waitMs()).toBe(0);
    expect(gate.take()).toEqual(frame(1));
    expect(gate.take()).toBeUndefined();

    now += 300;
    gate.offer(frame(2));
    gate.offer(frame(3));
    expect(gate.waitMs()).toBe(PREVIEW_MIN_INTERVAL_MS - 300);
    expect(gate.take()).toBeUndefined();
    now += PREVIEW_MIN_INTERVAL_MS - 300;
    expect(gate.take()).toEqual(frame(3));
    expect(gate.take()).toBeUndefined();
  });
});

describe('PreviewWatcher', () => {
  it('hands on each new frame the engine writes, and nothing while the file is unchanged or missing', async () => {
    const path = join(dir, 'preview.png');
    const frames: PreviewFrame[] = [];
    const watcher = new PreviewWatcher(path, (f) => frames.push(f), 10);
    watcher.start();
    try {
      const write = async (shade: number, width: number) => {
        writeFileSync(`${path}.tmp`, await solid(shade, width, 32));
        renameSync(`${path}.tmp`, path);
      };
      await write(10, 40);
      await expect.poll(() => frames.length).toBe(1);
      await write(200, 48);
      await expect.poll(() => frames.length).toBe(2);
      expect(frames.map((f) => f.width)).toEqual([40, 48]);
      // Many polls later, the unchanged file has given no third frame.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(frames).toHaveLength(2);
    } finally {
      watcher.stop();
    }
  });

  it('skips a file that is not an image and reports it as trouble, without throwing', async () => {
    const path = join(dir, 'broken.png');
    writeFileSync(path, 'half a png');
    const troubles: unknown[] = [];
    const frames: PreviewFrame[] = [];
    const watcher = new PreviewWatcher(
      path,
      (f) => frames.push(f),
      10,
      (error) => troubles.push(error),
    );
    watcher.start();
    try {
      await expect.poll(() => troubles.length).toBe(1);
      writeFileSync(`${path}.tmp`, await solid(50));
      renameSync(`${path}.tmp`, path);
      await expect.poll(() => frames.length).toBe(1);
    } finally {
      watcher.stop();
    }
  });
});
