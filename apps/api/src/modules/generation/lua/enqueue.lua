-- Adds (or re-adds) a job to the dispatch queue and wakes idle claimers.
-- KEYS: 1 queue, 2 owners (jobId → userId), 3 limits (userId → concurrent jobs), 4 claiming, 5 models (jobId → model)
-- ARGV: 1 jobId, 2 score, 3 userId, 4 concurrency limit, 5 wakeup channel, 6 model
-- Returns the job's rank: how many jobs are ahead of it.
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[5], '1')
return redis.call('ZRANK', KEYS[1], ARGV[1])
