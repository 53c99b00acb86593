import {
  classifyCreateInput,
  createJobInputSchema,
  estimateCreateInput,
  estimateImg2img,
  estimateTxt2img,
  generationParamsSchema,
  MAX_COUNT,
} from '@pingvas/core';
import { fieldErrorsFrom } from './errors.js';

export function formatCredits(amount: number): string {
  return amount.toLocaleString('en-US');
}

export function formatUsd(cents: number): string {
  return cents % 100 === 0 ? `$${(cents / 100).toLocaleString('en-US')}` : `$${(cents / 100).toFixed(2)}`;
}

/** What `generation.create` takes, parsed: the txt2img fields plus count, init image, strength, mask. */
export type CreateParams = ReturnType<typeof createJobInputSchema.parse>;

export type ParamsCheck =
  | { ok: true; params: CreateParams; estimate: number }
  | { ok: false; fieldErrors: Record<string, string>; estimate: number | null };

const pricingSchema = generationParamsSchema.pick({ model: true, width: true, height: true, steps: true });

/** The price of what can be priced: an img2img's follows its strength, a batch's its count. */
function partialEstimate(input: unknown): number | null {
  const pricing = pricingSchema.safeParse(input);
  if (!pricing.success) return null;
  const { count, strength, initImage } = (input ?? {}) as { count?: unknown; strength?: unknown; initImage?: unknown };
  const n = typeof count === 'number' && Number.isInteger(count) && count >= 1 && count <= MAX_COUNT ? count : 1;
  if (initImage && typeof strength === 'number' && Number.isFinite(strength)) {
    return estimateImg2img({ ...pricing.data, strength, count: n });
  }
  return estimateTxt2img({ ...pricing.data, count: n });
}

/**
 * Validates the studio form with the same schema the API uses and prices it with the same
 * estimate the API holds (kind, strength and count included), so the number on the button
 * is the number that gets reserved. The estimate stays visible while only the prompt is missing.
 */
export function checkParams(input: unknown): ParamsCheck {
  const parsed = createJobInputSchema.safeParse(input);
  if (parsed.success) {
    return { ok: true, params: parsed.data, estimate: estimateCreateInput(classifyCreateInput(parsed.data)) };
  }
  const fieldErrors = fieldErrorsFrom(
    parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
  return { ok: false, fieldErrors, estimate: partialEstimate(input) };
}

export interface Affordability {
  affordable: boolean;
  /** Credits still missing; 0 when affordable. */
  shortBy: number;
}

export function affordability(estimate: number, balance: number | null | undefined): Affordability {
  if (balance === null || balance === undefined) return { affordable: true, shortBy: 0 };
  return { affordable: balance >= estimate, shortBy: Math.max(0, estimate - balance) };
}

const TRANSACTION_LABELS: Record<string, string> = {
  monthly_allocation: 'Monthly plan credits',
  purchase: 'Credit pack purchased',
  adjustment: 'Adjustment',
  refund: 'Refunded',
  downgrade: 'Plan credits ended',
  plan_change: 'Plan changed',
  expiry: 'Plan credits of an earlier period lapsed',
  hold: 'Reserved for a generation',
  capture: 'Generation charged — unused credits returned',
  release: 'Generation did not run — credits returned',
};

/** The history's wording for a ledger entry type. */
export function transactionLabel(type: string): string {
  return TRANSACTION_LABELS[type] ?? type.replace(/_/g, ' ');
}

/** "+5,000" / "−90" / "0" for a change of the spendable balance. */
export function formatDelta(amount: number): string {
  if (amount === 0) return '0';
  return `${amount > 0 ? '+' : '−'}${formatCredits(Math.abs(amount))}`;
}
