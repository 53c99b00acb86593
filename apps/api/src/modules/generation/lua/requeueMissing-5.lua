-- The reconciler's repair of the queue: re-adds pending jobs (PostgreSQL's truth) that are
-- neither queued nor being claimed. A `claiming` entry older than the cutoff belongs to a claim
-- that died before its DB commit; its job is re-added too.
-- ARGV after the first two: per job, jobId, score, userId, limit, model.
-- Returns how many jobs were re-added.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]
local limitsKey = KEYS[3]
local claimingKey = KEYS[4]
local modelsKey = KEYS[5]    -- jobId → model

local cutoff = tonumber(ARGV[1])   -- stale-claim cutoff (ms)
local wakeupChannel = ARGV[2]

-- @include "includes/addToQueue.lua"

local added = 0
for i = 3, #ARGV, 5 do
  local jobId = ARGV[i]
  if not redis.call('ZSCORE', queueKey, jobId) then
    local claimedAt = redis.call('ZSCORE', claimingKey, jobId)
    if not claimedAt or tonumber(claimedAt) < cutoff then
      local score, userId, limit, model = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
      addToQueue(queueKey, ownersKey, limitsKey, claimingKey, modelsKey, jobId, score, userId, limit, model)
      added = added + 1
    end
  end
end
if added > 0 then redis.call('PUBLISH', wakeupChannel, '1') end
return added
