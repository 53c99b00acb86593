import { Redis } from 'ioredis';

export type { Redis };

/**
 * Every Redis key and channel name the API uses, behind one prefix so tests (and several
 * studios) can share a server. Production leaves the prefix empty: keys read as designed.
 */
export function redisKeys(prefix: string) {
  return {
    queue: `${prefix}generation_queue`,
    /** Hash jobId → userId for queued jobs; the claim script needs the owner to apply limits. */
    queueOwners: `${prefix}generation_queue:owners`,
    /** Hash jobId → concurrency limit of the owner's plan at enqueue time. */
    queueLimits: `${prefix}generation_queue:limits`,
    running: (userId: string) => `${prefix}running:${userId}`,
    jobChannel: (jobId: string) => `${prefix}job:${jobId}`,
    rateLimit: (scope: string, subject: string) => `${prefix}ratelimit:${scope}:${subject}`,
    lock: (name: string) => `${prefix}lock:${name}`,
    prefix,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true, lazyConnect: false });
}
