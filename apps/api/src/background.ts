import type { AppDeps } from './deps.js';
import { startEmailSender } from './modules/email/sender.js';
import { startSubscriptionEndCheck } from './modules/payments/subscriptions.js';
import { startReconciler } from './modules/generation/reconciler.js';
import { startOrphanSweep } from './modules/worker/orphan-sweep.task.js';
import { startUploadExpiry } from './modules/uploads/uploads-expiry.task.js';

export interface BackgroundTask {
  name: string;
  stop(): Promise<void>;
}

/** Loops the API process runs beside serving requests (reconciler, e-mail sender, orphan and upload sweeps). */
export function startBackgroundTasks(deps: AppDeps): BackgroundTask[] {
  return [startEmailSender(deps), startSubscriptionEndCheck(deps), startReconciler(deps), startOrphanSweep(deps),
    startUploadExpiry(deps)];
}
