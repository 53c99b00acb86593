import { estimateCredits, generationParamsSchema, type GenerationParams } from '@pingvas/core';
import { fieldErrorsFrom } from './errors.js';

export function formatCredits(amount: number): string {
  return amount.toLocaleString('en-US');
}

export function formatUsd(cents: number): string {
  return cents % 100 === 0 ? `$${(cents / 100).toLocaleString('en-US')}` : `$${(cents / 100).toFixed(2)}`;
}

export type ParamsCheck =
  | { ok: true; params: GenerationParams; estimate: number }
  | { ok: false; fieldErrors: Record<string, string>; estimate: number | null };

/**
 * Validates the studio form with the same schema the API uses and prices it with the same
 * estimate the API holds, so the number on the button is the number that gets reserved.
 * The estimate stays visible while only the prompt is missing.
 */
export function checkParams(input: unknown): ParamsCheck {
  const parsed = generationParamsSchema.safeParse(input);
  if (parsed.success) return { ok: true, params: parsed.data, estimate: estimateCredits(parsed.data) };
  const fieldErrors = fieldErrorsFrom(
    parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
  );
  const pricing = generationParamsSchema.pick({ model: true, width: true, height: true, steps: true }).safeParse(input);
  return { ok: false, fieldErrors, estimate: pricing.success ? estimateCredits(pricing.data) : null };
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
