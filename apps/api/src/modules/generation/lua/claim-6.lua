-- Pops the best job whose owner is below their concurrency limit, in score order.
-- Jobs of owners at their limit are skipped, not removed, so one busy user never stalls the
-- others. The walk is bounded: at most maxScan entries, read in batches; beyond that the
-- claim reports nothing rather than make Redis scan an arbitrarily long queue.
-- The popped job goes to `claiming` (until the caller's DB commit) and into the running
-- set at once, so a concurrent claim already sees the owner's new running count.
-- Returns {jobId, userId} or false.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]          -- jobId → userId
local limitsKey = KEYS[3]          -- userId → concurrent jobs
local claimingKey = KEYS[4]
local runningJobsKey = KEYS[5]     -- jobId → userId
local runningCountsKey = KEYS[6]   -- userId → n

local now = ARGV[1]                -- ms
local batch = tonumber(ARGV[2])
local maxScan = tonumber(ARGV[3])

local full = {}
local start = 0
local scanned = 0
while scanned < maxScan do
  local ids = redis.call('ZRANGE', queueKey, start, start + batch - 1)
  if #ids == 0 then return false end
  local removed = 0
  for _, jobId in ipairs(ids) do
    scanned = scanned + 1
    local owner = redis.call('HGET', ownersKey, jobId)
    if not owner then
      -- Not written by addToQueue: unusable. The reconciler re-adds it whole if it is still pending.
      redis.call('ZREM', queueKey, jobId)
      removed = removed + 1
    elseif not full[owner] then
      local limit = tonumber(redis.call('HGET', limitsKey, owner) or '1')
      local running = tonumber(redis.call('HGET', runningCountsKey, owner) or '0')
      if running < limit then
        redis.call('ZREM', queueKey, jobId)
        redis.call('HDEL', ownersKey, jobId)
        redis.call('ZADD', claimingKey, now, jobId)
        if redis.call('HSETNX', runningJobsKey, jobId, owner) == 1 then
          redis.call('HINCRBY', runningCountsKey, owner, 1)
        end
        return {jobId, owner}
      end
      full[owner] = true
    end
  end
  start = start + #ids - removed
end
return false
