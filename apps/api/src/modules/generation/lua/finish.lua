-- A running job stopped (completed, failed, retried, cancelled or handed back): its owner
-- has one slot more, which may make a waiting job claimable, so idle claimers are woken.
-- Idempotent: a job that is not in the running set changes nothing.
-- KEYS: 1 running jobs, 2 running counts, 3 queue, 4 claiming
-- ARGV: 1 jobId, 2 wakeup channel
redis.call('ZREM', KEYS[4], ARGV[1])
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], owner, -1) <= 0 then
  redis.call('HDEL', KEYS[2], owner)
end
if redis.call('ZCARD', KEYS[3]) > 0 then
  redis.call('PUBLISH', ARGV[2], '1')
end
return 1
