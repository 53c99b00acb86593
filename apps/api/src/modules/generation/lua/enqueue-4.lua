-- Adds (or re-adds) a job to the dispatch queue and wakes idle claimers.
-- Returns the job's rank: how many jobs are ahead of it.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]    -- jobId → userId
local limitsKey = KEYS[3]    -- userId → concurrent jobs
local claimingKey = KEYS[4]

local jobId = ARGV[1]
local score = ARGV[2]
local userId = ARGV[3]
local limit = ARGV[4]
local wakeupChannel = ARGV[5]

-- @include "includes/addToQueue.lua"

addToQueue(queueKey, ownersKey, limitsKey, claimingKey, jobId, score, userId, limit)
redis.call('PUBLISH', wakeupChannel, '1')
return redis.call('ZRANK', queueKey, jobId)
