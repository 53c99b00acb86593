-- The reconciler's repair of the running counts from PostgreSQL's in_progress jobs.
-- A running entry PostgreSQL does not know is dropped unless its claim is still committing
-- (fresh `claiming` entry); every in_progress job is (re)added; the counts are rebuilt.
-- Stale `claiming` entries (older than ARGV[1]) are dropped last: requeue_missing.lua has
-- already re-added the pending ones among them.
-- KEYS: 1 running jobs, 2 running counts, 3 claiming, 4 queue
-- ARGV: 1 stale-claim cutoff (ms), 2 wakeup channel, then per job: jobId, userId
-- Returns the number of running jobs after the repair.
local truth = {}
for i = 3, #ARGV, 2 do truth[ARGV[i]] = ARGV[i + 1] end
local cutoff = tonumber(ARGV[1])
local current = redis.call('HGETALL', KEYS[1])
for i = 1, #current, 2 do
  local jobId = current[i]
  if not truth[jobId] then
    local claimedAt = redis.call('ZSCORE', KEYS[3], jobId)
    if not claimedAt or tonumber(claimedAt) < cutoff then
      redis.call('HDEL', KEYS[1], jobId)
    end
  end
end
for jobId, owner in pairs(truth) do redis.call('HSET', KEYS[1], jobId, owner) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])
local before = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 2, #all, 2 do redis.call('HINCRBY', KEYS[2], all[i], 1) end
if #before > 0 and redis.call('ZCARD', KEYS[4]) > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return #all / 2
