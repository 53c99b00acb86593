-- The reconciler's repair of the queue: re-adds pending jobs (PostgreSQL's truth) that are
-- neither queued nor being claimed. A `claiming` entry older than ARGV[1] belongs to a claim
-- that died before its DB commit; its job is re-added too.
-- KEYS: 1 queue, 2 owners, 3 limits, 4 claiming, 5 models
-- ARGV: 1 stale-claim cutoff (ms), 2 wakeup channel, then per job: jobId, score, userId, limit, model
-- Returns how many jobs were re-added.
local added = 0
local cutoff = tonumber(ARGV[1])
for i = 3, #ARGV, 5 do
  local jobId = ARGV[i]
  if not redis.call('ZSCORE', KEYS[1], jobId) then
    local claimedAt = redis.call('ZSCORE', KEYS[4], jobId)
    if not claimedAt or tonumber(claimedAt) < cutoff then
      redis.call('HSET', KEYS[2], jobId, ARGV[i + 2])
      redis.call('HSET', KEYS[5], jobId, ARGV[i + 4])
      redis.call('HSET', KEYS[3], ARGV[i + 2], ARGV[i + 3])
      redis.call('ZADD', KEYS[1], ARGV[i + 1], jobId)
      redis.call('ZREM', KEYS[4], jobId)
      added = added + 1
    end
  end
end
if added > 0 then redis.call('PUBLISH', ARGV[2], '1') end
return added
