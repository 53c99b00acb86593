import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createTestRedis, type TestRedis } from '@pingvas/testkit';
import { redisKeys } from './redis.js';
import { hitRateLimit } from './rate-limit.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await createTestRedis();
});
afterAll(async () => {
  await redis?.cleanup();
});

describe('hitRateLimit (fixed window in Redis)', () => {
  it('allows `limit` hits per window and subject, then refuses until the window closes', async () => {
    const keys = redisKeys(redis.prefix);
    const hit = (subject: string) =>
      hitRateLimit(redis.client, keys, { scope: 'unit', subject, limit: 2, windowSeconds: 30 });
    expect((await hit('a')).allowed).toBe(true);
    expect((await hit('a')).allowed).toBe(true);
    const third = await hit('a');
    expect(third).toEqual({ allowed: false, retryAfterSeconds: expect.any(Number) });
    expect(third.retryAfterSeconds).toBeGreaterThan(0);
    expect(third.retryAfterSeconds).toBeLessThanOrEqual(30);
    // The window is set by the first hit only: later hits do not extend it.
    await hit('b');
    await redis.client.expire(keys.rateLimit('unit', 'b'), 5);
    expect((await hit('b')).retryAfterSeconds).toBeLessThanOrEqual(5);
    expect(await redis.client.ttl(keys.rateLimit('unit', 'b'))).toBeLessThanOrEqual(5);

    // Closing the window (as its expiry would) lets the subject in again.
    await redis.client.del(keys.rateLimit('unit', 'a'));
    expect((await hit('a')).allowed).toBe(true);
  });

  it('lets sign-in through when Redis is unreachable rather than locking everyone out', async () => {
    const offline = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    try {
      expect(
        (await hitRateLimit(offline, redisKeys('x:'), { scope: 'unit', subject: 'a', limit: 1, windowSeconds: 30 }))
          .allowed,
      ).toBe(true);
    } finally {
      offline.disconnect();
    }
  });
});
