import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import type { CreditPackSize, PaidTier, Tier } from '@pingvas/core';
import { useTRPC } from '../app/trpc.js';
import { formatCredits, formatUsd } from '../lib/credits.js';
import { Skeleton } from './Feedback.js';

function maxSide(pixels: number): number {
  return Math.floor(Math.sqrt(pixels));
}

interface PlanCardsProps {
  currentTier?: Tier;
  /** The button of a paid tier; absent on the landing page (there the CTA is sign-up). */
  action?: (tier: PaidTier) => ReactNode;
}

export function PlanCards({ currentTier, action }: PlanCardsProps) {
  const trpc = useTRPC();
  const plans = useQuery(trpc.payments.plans.queryOptions(undefined, { staleTime: 10 * 60_000 }));
  if (!plans.data)
    return (
      <div className="plan-grid">
        {[0, 1, 2].map((i) => (
          <Skeleton key={i} className="plan-skeleton" />
        ))}
      </div>
    );
  return (
    <div className="plan-grid">
      {plans.data.tiers.map((plan) => (
        <article
          key={plan.tier}
          className={`plan-card${plan.tier === 'pro' ? ' featured' : ''}${plan.tier === currentTier ? ' current' : ''}`}
          data-testid={`plan-${plan.tier}`}
        >
          {plan.tier === 'pro' && <span className="ribbon">Most popular</span>}
          <h3>{plan.name}</h3>
          <p className="price">
            {plan.priceUsdCents === 0 ? 'Free' : formatUsd(plan.priceUsdCents)}
            {plan.priceUsdCents > 0 && <span>/month</span>}
          </p>
          <ul>
            <li>
              <strong>{formatCredits(plan.monthlyCredits)}</strong> credits a month
            </li>
            <li>
              {plan.concurrentJobs} {plan.concurrentJobs === 1 ? 'job' : 'jobs'} at a time
            </li>
            <li>
              Up to {maxSide(plan.maxPixels)}×{maxSide(plan.maxPixels)} px
            </li>
            <li>{plan.queuePriority > 0 ? `Priority queue (${plan.queuePriority})` : 'Standard queue'}</li>
          </ul>
          {plan.tier === currentTier ? (
            <span className="current-label">Your plan</span>
          ) : (
            plan.tier !== 'free' && action?.(plan.tier)
          )}
        </article>
      ))}
    </div>
  );
}

export function PackCards({ action }: { action?: (pack: CreditPackSize) => ReactNode }) {
  const trpc = useTRPC();
  const plans = useQuery(trpc.payments.plans.queryOptions(undefined, { staleTime: 10 * 60_000 }));
  if (!plans.data)
    return (
      <div className="pack-grid">
        {[0, 1, 2].map((i) => (
          <Skeleton key={i} className="pack-skeleton" />
        ))}
      </div>
    );
  return (
    <div className="pack-grid">
      {plans.data.packs.map((pack) => (
        <article key={pack.pack} className="pack-card" data-testid={`pack-${pack.pack}`}>
          <p className="pack-credits">
            {formatCredits(pack.credits)} <span>credits</span>
          </p>
          <p className="pack-price">
            {formatUsd(pack.priceUsdCents)}{' '}
            <span>· {formatUsd(Math.round(pack.priceUsdCents / (pack.credits / 1000)))} per 1,000</span>
          </p>
          <p className="muted small">One-time. Never expire, kept when you change plan.</p>
          {action?.(pack.pack)}
        </article>
      ))}
    </div>
  );
}
