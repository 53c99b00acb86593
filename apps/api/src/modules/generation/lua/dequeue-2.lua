-- Takes a job out of the queue (a cancelled pending job). Returns 1 if it was queued.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]

local jobId = ARGV[1]

redis.call('HDEL', ownersKey, jobId)
return redis.call('ZREM', queueKey, jobId)
