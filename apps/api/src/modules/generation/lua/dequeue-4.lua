-- Takes a job out of the queue (a cancelled pending job). Returns 1 if it was queued.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]
local modelsKey = KEYS[3]    -- jobId → model
local skippedKey = KEYS[4]   -- jobId → ms (see claim)

local jobId = ARGV[1]

redis.call('HDEL', ownersKey, jobId)
redis.call('HDEL', modelsKey, jobId)
redis.call('HDEL', skippedKey, jobId)
return redis.call('ZREM', queueKey, jobId)
