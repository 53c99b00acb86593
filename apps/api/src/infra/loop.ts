import type { Logger } from './logger.js';

/** A loop the API process runs beside serving requests; `stop` waits for the work in flight. */
export interface BackgroundTask {
  name: string;
  stop(): Promise<void>;
}

/**
 * Runs `tick` every `intervalMs` (measured from the end of the previous tick, so ticks never
 * overlap) until stopped. A failing tick is logged and the loop goes on. `stop` waits for a
 * tick in flight to finish.
 */
export function startLoop(options: {
  name: string;
  intervalMs: number;
  logger: Logger;
  tick: () => Promise<void>;
}): BackgroundTask {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = options
        .tick()
        .catch((err: unknown) => options.logger.error({ err, task: options.name }, 'background task failed'))
        .finally(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    name: options.name,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
