-- Pops the best job whose owner is below their concurrency limit, in score order.
-- Jobs of owners at their limit are skipped, not removed, so one busy user never stalls the
-- others. The walk is bounded: at most ARGV[3] entries, read in batches of ARGV[2]; beyond
-- that the claim reports nothing rather than make Redis scan an arbitrarily long queue.
-- The popped job goes to `claiming` (until the caller's DB commit) and into the running
-- set at once, so a concurrent claim already sees the owner's new running count.
-- KEYS: 1 queue, 2 owners, 3 limits, 4 claiming, 5 running jobs (jobId → userId), 6 running counts (userId → n)
-- ARGV: 1 now (ms), 2 batch size, 3 max entries scanned
-- Returns {jobId, userId} or false.
local batch = tonumber(ARGV[2])
local maxScan = tonumber(ARGV[3])
local full = {}
local start = 0
local scanned = 0
while scanned < maxScan do
  local ids = redis.call('ZRANGE', KEYS[1], start, start + batch - 1)
  if #ids == 0 then return false end
  local removed = 0
  for _, jobId in ipairs(ids) do
    scanned = scanned + 1
    local owner = redis.call('HGET', KEYS[2], jobId)
    if not owner then
      -- Not written by enqueue.lua: unusable. The reconciler re-adds it whole if it is still pending.
      redis.call('ZREM', KEYS[1], jobId)
      removed = removed + 1
    elseif not full[owner] then
      local limit = tonumber(redis.call('HGET', KEYS[3], owner) or '1')
      local running = tonumber(redis.call('HGET', KEYS[6], owner) or '0')
      if running < limit then
        redis.call('ZREM', KEYS[1], jobId)
        redis.call('HDEL', KEYS[2], jobId)
        redis.call('ZADD', KEYS[4], ARGV[1], jobId)
        if redis.call('HSETNX', KEYS[5], jobId, owner) == 1 then
          redis.call('HINCRBY', KEYS[6], owner, 1)
        end
        return {jobId, owner}
      end
      full[owner] = true
    end
  end
  start = start + #ids - removed
end
return false
