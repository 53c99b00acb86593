import type { AppDeps } from './deps.js';
import type { BackgroundTask } from './infra/loop.js';
import { startEmailSender } from './modules/email/sender.js';
import { startSubscriptionEndTask } from './modules/payments/subscription-end.task.js';
import { startReconciler } from './modules/generation/reconciler.js';
import { startOrphanSweep } from './modules/worker/orphan-sweep.task.js';

/** Loops the API process runs beside serving requests (reconciler, e-mail sender, orphan sweep). */
export function startBackgroundTasks(deps: AppDeps): BackgroundTask[] {
  return [startEmailSender(deps), startSubscriptionEndTask(deps), startReconciler(deps), startOrphanSweep(deps)];
}
