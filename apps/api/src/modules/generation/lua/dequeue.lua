-- Takes a job out of the queue (a cancelled pending job). Returns 1 if it was queued.
-- KEYS: 1 queue, 2 owners, 3 models, 4 skipped (see claim.lua)
-- ARGV: 1 jobId
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
