import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { MAX_ORIGINAL_BYTES, MAX_UPLOAD_BYTES, MAX_UPSCALED_SIDE, type ClaimedJob } from '@pingvas/core';
import type { EngineJobFiles } from './engines/engine.js';

type Job = ClaimedJob['job'];

/** An input the job cannot run with: unreachable, too large, or not an image. */
export class InputError extends Error {}

export interface DownloadLimits {
  /** An input is a checked upload or a gallery image (an upscaled one at most): never more than this. */
  maxBytes: number;
  timeoutMs: number;
}

export const INPUT_LIMITS: DownloadLimits = {
  maxBytes: Math.max(MAX_UPLOAD_BYTES, MAX_ORIGINAL_BYTES),
  timeoutMs: 60_000,
};
/** No stored image is wider or taller than an upscale result; a larger header is a decompression bomb. */
const MAX_INPUT_PIXELS = MAX_UPSCALED_SIDE * MAX_UPSCALED_SIDE;
/** Mask pixels at or above this grey become white (repaint), the rest black (keep). */
const MASK_THRESHOLD = 128;

/** Fetches a presigned GET into memory, refusing more than `maxBytes` before reading it all. */
export async function downloadInput(
  url: string,
  what: string,
  signal: AbortSignal,
  limits: DownloadLimits = INPUT_LIMITS,
): Promise<Buffer> {
  const fetchSignal = AbortSignal.any([signal, AbortSignal.timeout(limits.timeoutMs)]);
  let response: Response;
  try {
    response = await fetch(url, { signal: fetchSignal });
  } catch (error) {
    if (signal.aborted) throw error;
    throw new InputError(`the ${what} could not be downloaded: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new InputError(`the ${what} could not be downloaded: HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > limits.maxBytes) {
    await response.body?.cancel();
    throw new InputError(`the ${what} is ${declared} bytes, more than the ${limits.maxBytes} an input may be`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.byteLength;
      if (total > limits.maxBytes) {
        throw new InputError(`the ${what} is more than the ${limits.maxBytes} bytes an input may be`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof InputError || signal.aborted) throw error;
    throw new InputError(`the ${what} could not be downloaded: ${(error as Error).message}`);
  } finally {
    // Ends the transfer when the loop was left early (too large, stopped).
    await response.body?.cancel().catch(() => {});
  }
  return Buffer.concat(chunks);
}

function decode(bytes: Buffer): Sharp {
  return sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
}

async function encode(image: Sharp, path: string, what: string): Promise<string> {
  try {
    await writeFile(path, await image.png().toBuffer());
  } catch (error) {
    throw new InputError(`the ${what} is not an image we can read: ${(error as Error).message}`);
  }
  return path;
}

/**
 * The init image at the job's size: scaled to cover it, centre cropped, transparency on white,
 * always three channels (sd-cli refuses an init image with fewer, and sharp would keep a black and
 * white picture as one).
 */
export function prepareInitImage(bytes: Buffer, size: { width: number; height: number }, path: string) {
  const image = decode(bytes)
    .resize(size.width, size.height, { fit: 'cover', position: 'centre' })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb');
  return encode(image, path, 'init image');
}

/**
 * The mask at the job's size, cropped as the init image is, then pure black and white: the
 * engine blends by the mask's value, and a soft edge from resizing would half-repaint pixels
 * the user left out. Transparent counts as black (keep).
 */
export function prepareMask(bytes: Buffer, size: { width: number; height: number }, path: string) {
  const image = decode(bytes)
    .flatten({ background: '#000000' })
    .resize(size.width, size.height, { fit: 'cover', position: 'centre' })
    .greyscale()
    .threshold(MASK_THRESHOLD)
    .toColourspace('b-w');
  return encode(image, path, 'mask');
}

/** An upscale's source, as it is (only re-encoded as a three-channel PNG, which also proves it is an image). */
export function prepareSource(bytes: Buffer, path: string) {
  return encode(decode(bytes).flatten({ background: '#ffffff' }).toColourspace('srgb'), path, 'source image');
}

/**
 * Downloads the job's inputs into its folder and prepares them for the engine: `init.png` and
 * `mask.png` at the job's size, or an upscale's `source.png`. Throws InputError for an input
 * the job cannot run with; rejects with the signal's reason when stopped.
 */
export async function prepareInputs(
  job: Job,
  dir: string,
  signal: AbortSignal,
  limits: DownloadLimits = INPUT_LIMITS,
): Promise<EngineJobFiles['inputs']> {
  const { initImage, mask } = job.inputs;
  if (job.kind === 'txt2img') return {};
  if (!initImage) throw new InputError(`the API sent a ${job.kind} job without its image`);
  if (job.kind === 'upscale') {
    const source = await downloadInput(initImage.url, 'source image', signal, limits);
    return { initImage: await prepareSource(source, join(dir, 'source.png')) };
  }
  const size = { width: job.params.width, height: job.params.height };
  if (job.kind === 'inpaint' && !mask) throw new InputError('the API sent an inpaint job without its mask');
  const [initBytes, maskBytes] = await Promise.all([
    downloadInput(initImage.url, 'init image', signal, limits),
    job.kind === 'inpaint' ? downloadInput(mask!.url, 'mask', signal, limits) : undefined,
  ]);
  const [initPath, maskPath] = await Promise.all([
    prepareInitImage(initBytes, size, join(dir, 'init.png')),
    maskBytes ? prepareMask(maskBytes, size, join(dir, 'mask.png')) : undefined,
  ]);
  return { initImage: initPath, ...(maskPath ? { mask: maskPath } : {}) };
}
