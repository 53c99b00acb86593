import { MODELS, type ModelId } from './models.js';

export interface EstimateInput {
  model: ModelId;
  width: number;
  height: number;
  steps: number;
}

const BASE_PIXELS = 512 * 512;
const CREDITS_PER_STEP = 0.5;

/** steps × 0.5 × (width×height)/(512×512) × model factor, rounded up (never 0). */
export function estimateCredits({ model, width, height, steps }: EstimateInput): number {
  // Integer arithmetic first: the factor has one decimal, so scale by 10 to keep exactness.
  const factorTenths = Math.round(MODELS[model].priceFactor * 10);
  const numerator = steps * width * height * factorTenths;
  const denominator = (BASE_PIXELS * 10) / CREDITS_PER_STEP;
  return Math.max(1, Math.ceil(numerator / denominator));
}

/** 1 credit per engine second, rounded up, at least 1, never more than the hold. */
export function chargeCredits(engineSeconds: number, held: number): number {
  if (!Number.isFinite(engineSeconds) || engineSeconds < 0) {
    throw new RangeError(`engine seconds must be a finite non-negative number, got ${engineSeconds}`);
  }
  return Math.min(held, Math.max(1, Math.ceil(engineSeconds)));
}

export const CREDIT_BUCKETS = ['subscription', 'purchased'] as const;
export type CreditBucket = (typeof CREDIT_BUCKETS)[number];

/** Subscription credits are spent first; returns how much of `amount` each bucket pays. */
export function splitSpend(
  available: { subscription: number; purchased: number },
  amount: number,
): { subscription: number; purchased: number } {
  const subscription = Math.min(available.subscription, amount);
  return { subscription, purchased: amount - subscription };
}
