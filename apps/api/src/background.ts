import type { AppDeps } from './deps.js';
import type { BackgroundTask } from './infra/loop.js';
import { startEmailSender } from './modules/email/sender.task.js';
import { startSubscriptionEndTask } from './modules/payments/subscription-end.task.js';
import { startReconciler } from './modules/generation/reconciler.task.js';
import { startOrphanSweep } from './modules/worker/orphan-sweep.task.js';
import { startRedisLossWatch } from './modules/generation/redis-loss.task.js';
import { startUploadExpiry } from './modules/uploads/uploads-expiry.task.js';

/** Loops each API replica runs beside serving requests; every one is safe on all replicas at once. */
export function startBackgroundTasks(deps: AppDeps): BackgroundTask[] {
  return [
    startEmailSender(deps),
    startSubscriptionEndTask(deps),
    startReconciler(deps),
    startOrphanSweep(deps),
    startRedisLossWatch(deps),
    startUploadExpiry(deps),
  ];
}
