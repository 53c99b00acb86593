import type { EngineProgress } from './engine.js';

const BAR = /(\d+)\/(\d+) - ([\d.]+)(s\/it|it\/s)/;
const CLEAR_LINE = /\x1b\[K/g;
const SAMPLING_STARTS = 'generating image:';
const SAMPLING_ENDS = 'sampling completed';

/**
 * Turns the engine's stdout into denoising progress (docs/engine.md): the bar is redrawn in
 * place with `\r`, and the same bar is drawn for model loading and VAE decode, so only bars
 * between `generating image:` and `sampling completed` count.
 */
export class ProgressParser {
  private pending = '';
  private sampling = false;
  private lastStep = -1;

  /** Feeds a chunk of stdout; returns the new denoising steps it completed, in order. */
  push(chunk: string): EngineProgress[] {
    const segments = (this.pending + chunk).split(/[\r\n]/);
    this.pending = segments.pop()!;
    // A bar is terminated by the clear-to-end-of-line code before the next `\r` arrives:
    // reading it now rather than at the next step keeps the last step from waiting.
    if (this.pending.endsWith('\x1b[K')) {
      segments.push(this.pending);
      this.pending = '';
    }
    const events: EngineProgress[] = [];
    for (const segment of segments) {
      const event = this.line(segment.replace(CLEAR_LINE, ''));
      if (event) events.push(event);
    }
    return events;
  }

  private line(text: string): EngineProgress | null {
    if (text.includes(SAMPLING_STARTS)) {
      this.sampling = true;
      this.lastStep = -1;
      return null;
    }
    if (text.includes(SAMPLING_ENDS)) {
      this.sampling = false;
      return null;
    }
    if (!this.sampling) return null;
    const match = BAR.exec(text);
    if (!match) return null;
    const step = Number(match[1]);
    const totalSteps = Number(match[2]);
    if (totalSteps < 1 || step > totalSteps || step <= this.lastStep) return null;
    this.lastStep = step;
    const rate = Number(match[3]);
    const secondsPerStep = match[4] === 's/it' ? rate : rate > 0 ? 1 / rate : undefined;
    return {
      percent: Math.round((step / totalSteps) * 1000) / 10,
      step,
      totalSteps,
      ...(secondsPerStep === undefined ? {} : { secondsPerStep }),
    };
  }
}

/**
 * Passes progress on at most once per interval, keeping the latest one for the end of the
 * interval, and the last step at once: a 30-step job on a fast GPU should not send 30
 * updates in a second, and the user must see 100%.
 */
export class ProgressThrottle {
  private lastSentAt = -Infinity;
  private held: EngineProgress | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly send: (progress: EngineProgress) => void,
    private readonly intervalMs = 250,
  ) {}

  push(progress: EngineProgress): void {
    const now = performance.now();
    if (progress.step >= progress.totalSteps || now - this.lastSentAt >= this.intervalMs) {
      this.emit(progress, now);
      return;
    }
    this.held = progress;
    this.timer ??= setTimeout(
      () => {
        this.timer = null;
        if (this.held) this.emit(this.held, performance.now());
      },
      this.intervalMs - (now - this.lastSentAt),
    );
  }

  /** Drops whatever is held back: the run is over. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.held = null;
  }

  private emit(progress: EngineProgress, now: number): void {
    this.held = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastSentAt = now;
    this.send(progress);
  }
}
