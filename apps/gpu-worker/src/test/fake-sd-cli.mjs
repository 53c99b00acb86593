#!/usr/bin/env node
/**
 * A stand-in for sd-cli's image tools in worker tests, until the reference engine honours
 * them: it takes the flags the worker sends, prints sd-cli's progress and save lines, and
 * writes images that show what it was given, so a test can check the worker's preparation:
 * - img_gen: each image is the init image (`-i`) where the mask (`--mask`) is black, and solid
 *   red where it is white; without `-i`, solid grey. `-b n` writes name_0.png … name_{n-1}.png.
 * - `-M upscale`: the source scaled 4× (nearest neighbour).
 * - `--preview-path`/`--preview-interval`: a frame (written to a temporary name, then renamed)
 *   every interval steps.
 * Environment: FAKE_ENGINE_ARGS (a file to write the argument list to, as JSON),
 * FAKE_ENGINE_STEP_MS (time per step).
 */
import { renameSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

const argv = process.argv.slice(2);
if (process.env.FAKE_ENGINE_ARGS) writeFileSync(process.env.FAKE_ENGINE_ARGS, JSON.stringify(argv));
const flag = (name, fallback) => {
  const i = argv.lastIndexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const stepMs = Number(process.env.FAKE_ENGINE_STEP_MS ?? 0);
const output = flag('-o', 'output.png');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function outputs(count) {
  if (count <= 1) return [output];
  const stem = output.replace(/\.png$/, '');
  return Array.from({ length: count }, (_, i) => `${stem}_${i}.png`);
}

async function save(paths, make) {
  for (const [i, path] of paths.entries()) {
    await make(i).png().toFile(path);
    console.log(`[INFO ] main.cpp:900 - save result image ${i} to '${path}' (success)`);
  }
  console.log(`[INFO ] main.cpp:905 - ${paths.length}/${paths.length} images saved`);
}

if (flag('-M', 'img_gen') === 'upscale') {
  const source = sharp(flag('-i'));
  const { width, height } = await source.metadata();
  await save([output], () => source.resize(width * 4, height * 4, { kernel: 'nearest' }));
  process.exit(0);
}

const width = Number(flag('-W', 512));
const height = Number(flag('-H', 512));
const count = Number(flag('-b', 1));
const strength = Number(flag('--strength', 0.75));
const init = flag('-i');
const steps = init ? Math.max(1, Math.ceil(Number(flag('--steps', 20)) * strength)) : Number(flag('--steps', 20));
const previewPath = flag('--preview-path');
const previewEvery = Number(flag('--preview-interval', 1));
const solid = (colour) => sharp({ create: { width, height, channels: 3, background: colour } });

console.log(`[INFO ] stable-diffusion.cpp:3000 - generating image: 1/${count} - seed ${flag('-s', 42)}`);
for (let step = 1; step <= steps; step++) {
  await sleep(stepMs);
  process.stdout.write(`\r  |==>  | ${step}/${steps} - ${(Math.max(stepMs, 1) / 1000).toFixed(2)}s/it\x1b[K`);
  if (previewPath && step % previewEvery === 0) {
    const shade = Math.round((255 * step) / steps);
    await solid({ r: shade, g: shade, b: shade }).png().toFile(`${previewPath}.tmp`);
    renameSync(`${previewPath}.tmp`, previewPath);
  }
}
process.stdout.write('\n');
console.log('[INFO ] stable-diffusion.cpp:3100 - sampling completed, taking 0.10s');

async function composed() {
  if (!init) return solid({ r: 128, g: 128, b: 128 });
  const mask = flag('--mask');
  if (!mask) return sharp(init);
  // Red where the mask is white: the mask becomes the alpha of a red layer over the init image.
  const alpha = await sharp(mask).greyscale().raw().toBuffer();
  const red = await solid({ r: 255, g: 0, b: 0 })
    .joinChannel(alpha, { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
  return sharp(
    await sharp(init)
      .composite([{ input: red }])
      .png()
      .toBuffer(),
  );
}
const image = await (await composed()).png().toBuffer();
await save(outputs(count), () => sharp(image));
console.log('[INFO ] main.cpp:910 - generate_image completed in 0.20s');
