/**
 * Exponential backoff with full jitter, capped: a fleet of workers that lost the API does
 * not come back in lockstep, and none of them spins.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = 250,
    private readonly capMs = 30_000,
  ) {}

  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return this.baseMs / 2 + Math.random() * (ceiling - this.baseMs / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Waits, or stops waiting as soon as the signal aborts (it does not throw). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
