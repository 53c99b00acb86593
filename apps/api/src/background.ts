import type { AppDeps } from './deps.js';
import { startEmailSender } from './modules/email/sender.js';
import { startSubscriptionEndTask } from './modules/payments/subscription-end.task.js';
import { startReconciler } from './modules/generation/reconciler.js';

export interface BackgroundTask {
  name: string;
  stop(): Promise<void>;
}

/** Loops the API process runs beside serving requests (reconciler, e-mail sender). */
export function startBackgroundTasks(deps: AppDeps): BackgroundTask[] {
  return [startEmailSender(deps), startSubscriptionEndTask(deps), startReconciler(deps)];
}
