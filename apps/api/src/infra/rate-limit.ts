import type { Redis, RedisKeys } from './redis.js';

export interface RateLimitVerdict {
  allowed: boolean;
  /** Seconds until the current window closes (for Retry-After). */
  retryAfterSeconds: number;
}

/**
 * A fixed-window counter in Redis: the first hit opens a window of `windowSeconds`, every
 * hit in it counts, and more than `limit` are refused until it closes. Shared by all API
 * replicas. Used for sign-in (per IP), generation.create and every mutation (per user). If
 * Redis is down nothing is blocked: the limit guards against abuse, and failing closed would
 * lock every user out with it.
 */
export async function hitRateLimit(
  redis: Redis,
  keys: RedisKeys,
  input: { scope: string; subject: string; limit: number; windowSeconds: number },
): Promise<RateLimitVerdict> {
  const key = keys.rateLimit(input.scope, input.subject);
  try {
    const results = await redis.multi().incr(key).expire(key, input.windowSeconds, 'NX').pttl(key).exec();
    const count = Number(results?.[0]?.[1] ?? 0);
    const ttlMs = Number(results?.[2]?.[1] ?? input.windowSeconds * 1000);
    return { allowed: count <= input.limit, retryAfterSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) };
  } catch {
    return { allowed: true, retryAfterSeconds: 0 };
  }
}
