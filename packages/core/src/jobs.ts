export const JOB_STATES = ['pending', 'in_progress', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_JOB_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export const MAX_JOB_ATTEMPTS = 3;

/**
 * Seconds one priority point outweighs. The product spec's 1,000,000 let a free job that had waited
 * 231 days (20 points × 10⁶ s) overtake a new starter job; 10¹⁰ s (over 300 years) makes the
 * tier always decide first, while scores (≤ 5·10¹¹) still resolve enqueue times to 0.1 ms.
 */
const PRIORITY_WEIGHT = 10_000_000_000;

/**
 * The dispatch order in Redis, lowest first: higher tiers first, FIFO inside a tier.
 * Enqueue time is in seconds-with-fraction relative to QUEUE_EPOCH so it stays well
 * inside a double's exact range next to the priority weight.
 */
export const QUEUE_EPOCH_MS = Date.UTC(2025, 0, 1);

export function queueScore(priority: number, enqueuedAtMs: number): number {
  return -(priority * PRIORITY_WEIGHT) + (enqueuedAtMs - QUEUE_EPOCH_MS) / 1000;
}

export const FAILURE_CODES = [
  'OOM',
  'CRASH',
  'TIMEOUT',
  'BAD_OUTPUT',
  'LEASE_EXPIRED',
  'ENGINE_ERROR',
  'CANCELLED',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export const FAILURE_MESSAGES: Record<FailureCode, string> = {
  OOM: 'The GPU ran out of memory. Try a smaller size.',
  CRASH: 'The engine crashed while generating.',
  TIMEOUT: 'The generation took too long and was stopped.',
  BAD_OUTPUT: 'The engine finished without a valid image.',
  LEASE_EXPIRED: 'The worker running this job stopped answering.',
  ENGINE_ERROR: 'The engine reported an error.',
  CANCELLED: 'Cancelled.',
};
