-- Adds (or re-adds) a job to the dispatch queue and wakes idle claimers.
-- Returns the job's rank: how many jobs are ahead of it.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]    -- jobId → userId
local limitsKey = KEYS[3]    -- userId → concurrent jobs
local claimingKey = KEYS[4]
local modelsKey = KEYS[5]    -- jobId → model

local jobId = ARGV[1]
local score = ARGV[2]
local userId = ARGV[3]
local limit = ARGV[4]
local wakeupChannel = ARGV[5]
local model = ARGV[6]

-- @include "includes/addToQueue.lua"

addToQueue(queueKey, ownersKey, limitsKey, claimingKey, modelsKey, jobId, score, userId, limit, model)
redis.call('PUBLISH', wakeupChannel, '1')
return redis.call('ZRANK', queueKey, jobId)
