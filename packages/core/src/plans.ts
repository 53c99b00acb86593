export const TIERS = ['free', 'starter', 'pro'] as const;
export type Tier = (typeof TIERS)[number];
export const PAID_TIERS = ['starter', 'pro'] as const;
export type PaidTier = (typeof PAID_TIERS)[number];

export interface Plan {
  tier: Tier;
  name: string;
  priceUsdCents: number;
  monthlyCredits: number;
  queuePriority: number;
  concurrentJobs: number;
  /** Largest width × height a job on this plan may ask for. */
  maxPixels: number;
  /** Jobs that may wait in the queue at once (running ones not counted). */
  maxPendingJobs: number;
}

export const PLANS: Record<Tier, Plan> = {
  free: {
    tier: 'free',
    name: 'Free',
    priceUsdCents: 0,
    monthlyCredits: 0,
    queuePriority: 0,
    concurrentJobs: 1,
    maxPixels: 1024 * 1024,
    maxPendingJobs: 10,
  },
  starter: {
    tier: 'starter',
    name: 'Starter',
    priceUsdCents: 2000,
    monthlyCredits: 2000,
    queuePriority: 20,
    concurrentJobs: 2,
    maxPixels: 1536 * 1536,
    maxPendingJobs: 50,
  },
  pro: {
    tier: 'pro',
    name: 'Pro',
    priceUsdCents: 7500,
    monthlyCredits: 10000,
    queuePriority: 50,
    concurrentJobs: 4,
    maxPixels: 2048 * 2048,
    maxPendingJobs: 100,
  },
};

export const CREDIT_PACK_SIZES = [1000, 5000, 10000] as const;
export type CreditPackSize = (typeof CREDIT_PACK_SIZES)[number];

export interface CreditPack {
  credits: CreditPackSize;
  priceUsdCents: number;
}

export const CREDIT_PACKS: Record<CreditPackSize, CreditPack> = {
  1000: { credits: 1000, priceUsdCents: 1000 },
  5000: { credits: 5000, priceUsdCents: 4000 },
  10000: { credits: 10000, priceUsdCents: 7000 },
};

export function planFor(tier: Tier): Plan {
  return PLANS[tier];
}
