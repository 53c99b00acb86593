import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis tests share (each file under its own prefix) when `TEST_REDIS_URL` is unset. */
export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? DEFAULT_TEST_REDIS_URL;

export interface TestRedis {
  url: string;
  /** Unique per test file: pass it as REDIS_PREFIX so files never see each other's keys. */
  prefix: string;
  client: Redis;
  /** Deletes every key under the prefix and disconnects. */
  cleanup(): Promise<void>;
}

export async function createTestRedis(): Promise<TestRedis> {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const client = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2 });
  return {
    url: TEST_REDIS_URL,
    prefix,
    client,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await client.del(...keys);
      } while (cursor !== '0');
      client.disconnect();
    },
  };
}
