import type { AppDeps } from './deps.js';

export interface BackgroundTask {
  name: string;
  stop(): Promise<void>;
}

/** Loops the API process runs beside serving requests (reconciler, e-mail sender). */
export function startBackgroundTasks(_deps: AppDeps): BackgroundTask[] {
  return [];
}
