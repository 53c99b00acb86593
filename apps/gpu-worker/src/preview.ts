import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { PREVIEW_MAX_BYTES, PREVIEW_MIN_INTERVAL_MS, PREVIEW_SIDE } from '@pingvas/core';

/**
 * Live previews: the engine rewrites one PNG (atomically) every `intervalSteps` steps; the
 * worker polls its mtime, shrinks each new frame to a small WebP, and the job's heartbeat
 * carries the newest one at most once per PREVIEW_MIN_INTERVAL_MS. Nothing here may fail a job.
 */

/** How often the preview file is checked for a new frame. */
export const PREVIEW_POLL_MS = 250;
/** A frame about this often: the browser shows at most one a second, the engine's decode is not free. */
const SECONDS_PER_FRAME = 1.5;
/** Before this worker has timed a model, at most this many frames per job. */
const FRAMES_WITHOUT_SPEED = 20;
/** WebP qualities tried in turn until the frame fits in PREVIEW_MAX_BYTES. */
const QUALITIES = [70, 50, 35, 20, 10];

export interface PreviewFrame {
  webpBase64: string;
  width: number;
  height: number;
}

/**
 * The engine's `--preview-interval`, fixed when it starts: a frame every SECONDS_PER_FRAME at
 * the expected seconds per step, at least every step, and no rarer than the last step. Without
 * an expected speed, `steps / FRAMES_WITHOUT_SPEED` steps.
 */
export function previewIntervalSteps(steps: number, secondsPerStep: number | undefined): number {
  const interval =
    secondsPerStep && secondsPerStep > 0
      ? Math.round(SECONDS_PER_FRAME / secondsPerStep)
      : Math.ceil(steps / FRAMES_WITHOUT_SPEED);
  return Math.min(Math.max(1, interval), Math.max(1, steps));
}

/**
 * Seconds per step that this worker measured, per model and per megapixel (a step's time grows
 * with the pixels), so that the next job's preview interval can be chosen before it starts.
 */
export class StepSpeeds {
  private readonly perMegapixel = new Map<string, number>();

  record(model: string, size: { width: number; height: number }, secondsPerStep: number): void {
    if (!(secondsPerStep > 0)) return;
    this.perMegapixel.set(model, secondsPerStep / megapixels(size));
  }

  expected(model: string, size: { width: number; height: number }): number | undefined {
    const rate = this.perMegapixel.get(model);
    return rate === undefined ? undefined : rate * megapixels(size);
  }
}

function megapixels(size: { width: number; height: number }): number {
  return (size.width * size.height) / 1e6;
}

/** A frame shrunk to fit PREVIEW_SIDE, as WebP within `maxBytes`; null when even the lowest quality is too big. */
export async function encodePreview(png: Buffer, maxBytes = PREVIEW_MAX_BYTES): Promise<PreviewFrame | null> {
  const { data, info } = await sharp(png)
    .resize(PREVIEW_SIDE, PREVIEW_SIDE, { fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
  for (const quality of QUALITIES) {
    const webp = await sharp(data, raw).webp({ quality, effort: 2 }).toBuffer();
    if (webp.length <= maxBytes) return { webpBase64: webp.toString('base64'), width: info.width, height: info.height };
  }
  return null;
}

/**
 * Keeps the newest frame until it may be sent: at most one per `minIntervalMs`, and a frame
 * that waited is replaced by a newer one rather than queued.
 */
export class PreviewGate<Frame = PreviewFrame> {
  private pending: Frame | null = null;
  private lastSentAt = -Infinity;

  constructor(
    private readonly minIntervalMs = PREVIEW_MIN_INTERVAL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  offer(frame: Frame): void {
    this.pending = frame;
  }

  /** The waiting frame, if the last one went out long enough ago; it then counts as sent. */
  take(): Frame | undefined {
    if (!this.pending || this.waitMs()! > 0) return undefined;
    const frame = this.pending;
    this.pending = null;
    this.lastSentAt = this.now();
    return frame;
  }

  /** How long until the waiting frame may go (0: now); null when none waits. */
  waitMs(): number | null {
    if (!this.pending) return null;
    return Math.max(0, this.lastSentAt + this.minIntervalMs - this.now());
  }
}

/**
 * Polls the preview file's mtime and size; each new version is encoded and handed to `onFrame`.
 * One read at a time; a file that is missing, half-read or not an image is skipped quietly.
 */
export class PreviewWatcher {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastVersion = '';

  constructor(
    private readonly path: string,
    private readonly onFrame: (frame: PreviewFrame) => void,
    private readonly pollMs = PREVIEW_POLL_MS,
    private readonly onTrouble: (error: unknown) => void = () => {},
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const info = await stat(this.path).catch(() => null);
      const version = info ? `${info.mtimeMs}:${info.size}` : '';
      if (!info || version === this.lastVersion) return;
      this.lastVersion = version;
      const frame = await encodePreview(await readFile(this.path));
      if (frame && this.timer) this.onFrame(frame);
    } catch (error) {
      this.onTrouble(error);
    } finally {
      this.busy = false;
    }
  }
}
