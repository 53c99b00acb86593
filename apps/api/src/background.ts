import type { AppDeps } from './deps.js';
import { startEmailSender } from './modules/email/sender.js';
import { startSubscriptionEndCheck } from './modules/payments/subscriptions.js';
import { startReconciler } from './modules/generation/reconciler.js';
import { startRedisLossWatch } from './modules/generation/redis-loss.task.js';

export interface BackgroundTask {
  name: string;
  stop(): Promise<void>;
}

/** Loops the API process runs beside serving requests (reconciler, e-mail sender). */
export function startBackgroundTasks(deps: AppDeps): BackgroundTask[] {
  return [startEmailSender(deps), startSubscriptionEndCheck(deps), startReconciler(deps), startRedisLossWatch(deps)];
}
