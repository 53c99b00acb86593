-- A running job stopped (completed, failed, retried, cancelled or handed back): its owner
-- has one slot more, which may make a waiting job claimable, so idle claimers are woken.
-- Idempotent: a job that is not in the running set changes nothing.
local runningJobsKey = KEYS[1]     -- jobId → userId
local runningCountsKey = KEYS[2]   -- userId → n
local queueKey = KEYS[3]
local claimingKey = KEYS[4]

local jobId = ARGV[1]
local wakeupChannel = ARGV[2]

redis.call('ZREM', claimingKey, jobId)
local owner = redis.call('HGET', runningJobsKey, jobId)
if not owner then return 0 end
redis.call('HDEL', runningJobsKey, jobId)
if redis.call('HINCRBY', runningCountsKey, owner, -1) <= 0 then
  redis.call('HDEL', runningCountsKey, owner)
end
if redis.call('ZCARD', queueKey) > 0 then
  redis.call('PUBLISH', wakeupChannel, '1')
end
return 1
