import { CREDIT_PACK_SIZES, CREDIT_PACKS, PAID_TIERS, PLANS, type CreditPackSize, type PaidTier } from '@pingvas/core';
import type { ApiConfig } from '../../config.js';

export type Product = { kind: 'subscription'; tier: PaidTier } | { kind: 'credits'; pack: CreditPackSize };

/**
 * Stand-in variant ids for the local test checkout (no Lemon Squeezy account). They only
 * ever appear in webhooks the API signs for itself.
 */
const DEV_VARIANTS = { starter: 900001, pro: 900002, 1000: 900101, 5000: 900105, 10000: 900110 } as const;

/** The Lemon Squeezy variant id of each product, from config (or the dev stand-ins). */
export function variantIds(config: ApiConfig): Record<PaidTier | CreditPackSize, number | undefined> {
  const dev = !config.lemonSqueezyEnabled;
  const pick = (configured: number | undefined, fallback: number) => configured ?? (dev ? fallback : undefined);
  return {
    starter: pick(config.LEMONSQUEEZY_VARIANT_STARTER, DEV_VARIANTS.starter),
    pro: pick(config.LEMONSQUEEZY_VARIANT_PRO, DEV_VARIANTS.pro),
    1000: pick(config.LEMONSQUEEZY_VARIANT_PACK_1000, DEV_VARIANTS[1000]),
    5000: pick(config.LEMONSQUEEZY_VARIANT_PACK_5000, DEV_VARIANTS[5000]),
    10000: pick(config.LEMONSQUEEZY_VARIANT_PACK_10000, DEV_VARIANTS[10000]),
  };
}

export function variantFor(config: ApiConfig, product: Product): number | undefined {
  return variantIds(config)[product.kind === 'subscription' ? product.tier : product.pack];
}

/** What a variant id sells, or null for a variant this studio does not know. */
export function productForVariant(config: ApiConfig, variantId: number): Product | null {
  const ids = variantIds(config);
  for (const tier of PAID_TIERS) if (ids[tier] === variantId) return { kind: 'subscription', tier };
  for (const pack of CREDIT_PACK_SIZES) if (ids[pack] === variantId) return { kind: 'credits', pack };
  return null;
}

export function productName(product: Product): string {
  return product.kind === 'subscription'
    ? `Pingvas ${PLANS[product.tier].name} (monthly)`
    : `${CREDIT_PACKS[product.pack].credits.toLocaleString('en-US')} credits`;
}

export function productPriceCents(product: Product): number {
  return product.kind === 'subscription' ? PLANS[product.tier].priceUsdCents : CREDIT_PACKS[product.pack].priceUsdCents;
}

/** The pricing page's data: paid tiers and packs with prices. */
export function publicCatalog() {
  return {
    tiers: (['free', ...PAID_TIERS] as const).map((tier) => {
      const plan = PLANS[tier];
      return {
        tier,
        name: plan.name,
        priceUsdCents: plan.priceUsdCents,
        monthlyCredits: plan.monthlyCredits,
        queuePriority: plan.queuePriority,
        concurrentJobs: plan.concurrentJobs,
        maxPixels: plan.maxPixels,
      };
    }),
    packs: CREDIT_PACK_SIZES.map((pack) => ({
      pack,
      credits: CREDIT_PACKS[pack].credits,
      priceUsdCents: CREDIT_PACKS[pack].priceUsdCents,
    })),
  };
}
