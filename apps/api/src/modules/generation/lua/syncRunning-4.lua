-- The reconciler's repair of the running counts from PostgreSQL's in_progress jobs.
-- A running entry PostgreSQL does not know is dropped unless its claim is still committing
-- (fresh `claiming` entry); every in_progress job is (re)added; the counts are rebuilt.
-- Stale `claiming` entries (older than the cutoff) are dropped last: requeueMissing has
-- already re-added the pending ones among them.
-- ARGV after the first two: per job, jobId, userId.
-- Returns the number of running jobs after the repair.
local runningJobsKey = KEYS[1]     -- jobId → userId
local runningCountsKey = KEYS[2]   -- userId → n
local claimingKey = KEYS[3]
local queueKey = KEYS[4]

local cutoffArg = ARGV[1]          -- stale-claim cutoff (ms)
local cutoff = tonumber(cutoffArg)
local wakeupChannel = ARGV[2]

local truth = {}
for i = 3, #ARGV, 2 do truth[ARGV[i]] = ARGV[i + 1] end
local current = redis.call('HGETALL', runningJobsKey)
for i = 1, #current, 2 do
  local jobId = current[i]
  if not truth[jobId] then
    local claimedAt = redis.call('ZSCORE', claimingKey, jobId)
    if not claimedAt or tonumber(claimedAt) < cutoff then
      redis.call('HDEL', runningJobsKey, jobId)
    end
  end
end
for jobId, owner in pairs(truth) do redis.call('HSET', runningJobsKey, jobId, owner) end
redis.call('ZREMRANGEBYSCORE', claimingKey, '-inf', '(' .. cutoffArg)
local before = redis.call('HGETALL', runningCountsKey)
redis.call('DEL', runningCountsKey)
local all = redis.call('HGETALL', runningJobsKey)
for i = 2, #all, 2 do redis.call('HINCRBY', runningCountsKey, all[i], 1) end
if #before > 0 and redis.call('ZCARD', queueKey) > 0 then redis.call('PUBLISH', wakeupChannel, '1') end
return #all / 2
