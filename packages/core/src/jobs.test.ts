import { describe, expect, it } from 'vitest';
import { queueScore } from './jobs.js';
import { PLANS, TIERS, type Tier } from './plans.js';

const DAY = 24 * 3600 * 1000;
const t0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const score = (tier: Tier, at: number) => queueScore(PLANS[tier].queuePriority, at);

/** The order Redis would dispatch in: lowest score first. */
function dispatchOrder(jobs: { name: string; tier: Tier; at: number }[]): string[] {
  return [...jobs].sort((a, b) => score(a.tier, a.at) - score(b.tier, b.at)).map((j) => j.name);
}

describe('queueScore', () => {
  it('puts higher tiers first, then first come first served within a tier', () => {
    expect(
      dispatchOrder([
        { name: 'free-1', tier: 'free', at: t0 },
        { name: 'starter-1', tier: 'starter', at: t0 + 1000 },
        { name: 'pro-1', tier: 'pro', at: t0 + 2000 },
        { name: 'free-2', tier: 'free', at: t0 + 3000 },
        { name: 'pro-2', tier: 'pro', at: t0 + 4000 },
        { name: 'starter-2', tier: 'starter', at: t0 + 5000 },
      ]),
    ).toEqual(['pro-1', 'pro-2', 'starter-1', 'starter-2', 'free-1', 'free-2']);
  });

  it('keeps a higher tier ahead however long a lower-tier job has waited', () => {
    for (const waited of [1, 30, 231, 365, 10 * 365]) {
      expect(score('starter', t0 + waited * DAY)).toBeLessThan(score('free', t0));
      expect(score('pro', t0 + waited * DAY)).toBeLessThan(score('starter', t0));
    }
  });

  it('stays FIFO within a tier to the millisecond, years after the epoch', () => {
    for (const tier of TIERS) {
      for (const at of [t0, t0 + 10 * 365 * DAY, t0 + 50 * 365 * DAY]) {
        expect(score(tier, at)).toBeLessThan(score(tier, at + 1));
      }
    }
  });

  it('is a plain increasing function of time within a tier', () => {
    const times = Array.from({ length: 100 }, (_, i) => t0 + i * 7919 * 1000);
    const scores = times.map((at) => score('pro', at));
    expect([...scores].sort((a, b) => a - b)).toEqual(scores);
  });
});
