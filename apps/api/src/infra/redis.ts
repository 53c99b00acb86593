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
    /** Hash userId → concurrency limit of the owner's plan, as of their latest enqueue. */
    queueLimits: `${prefix}generation_queue:limits`,
    /** Hash jobId → model of queued jobs: a claim hands a job only to a worker that can run its model. */
    queueModels: `${prefix}generation_queue:models`,
    /** Hash jobId → when (ms) a claim first passed the job over for a warm-model job: bounds that delay. */
    queueSkipped: `${prefix}generation_queue:skipped`,
    /** Sorted set jobId → claim time (ms): popped by a claim whose DB commit is not done yet. */
    queueClaiming: `${prefix}generation_queue:claiming`,
    /** Pub/sub channel: "the queue may have a claimable job", wakes long-polling claims. */
    queueWakeup: `${prefix}generation_queue:wakeup`,
    /** Hash jobId → userId of running jobs, and userId → how many: the claim-time concurrency gate. */
    runningJobs: `${prefix}running:jobs`,
    runningCounts: `${prefix}running:counts`,
    /** Capped list of recent engine seconds, for wait estimates. */
    recentDurations: `${prefix}generation:recent_durations`,
    /** Sorted set workerId → last seen (ms): the active worker count for wait estimates. */
    workersSeen: `${prefix}generation:workers`,
    /** Present while Redis keeps its data; its absence means Redis restarted empty or was flushed. */
    dataMarker: `${prefix}generation:data_marker`,
    jobChannel: (jobId: string) => `${prefix}job:${jobId}`,
    rateLimit: (scope: string, subject: string) => `${prefix}ratelimit:${scope}:${subject}`,
    lock: (name: string) => `${prefix}lock:${name}`,
    /** JSON { readAt, counts } of finished jobs by state: one count per cache period shared by every replica. */
    metricsFinishedJobs: `${prefix}metrics:finished_jobs`,
    /** A development checkout intent (no Lemon Squeezy account), kept for an hour. */
    testCheckout: (id: string) => `${prefix}test_checkout:${id}`,
    prefix,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

export function createRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2, enableAutoPipelining: true, lazyConnect: false });
}
