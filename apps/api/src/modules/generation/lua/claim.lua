-- Pops the best job whose owner is below their concurrency limit, in score order.
-- Jobs of owners at their limit are skipped, not removed, so one busy user never stalls the
-- others. The walk is bounded: at most ARGV[3] entries, read in batches of ARGV[2]; beyond
-- that the claim reports nothing rather than make Redis scan an arbitrarily long queue.
-- The popped job goes to `claiming` (until the caller's DB commit) and into the running
-- set at once, so a concurrent claim already sees the owner's new running count.
-- Model-aware dispatch (the block below `take`): a job for a model the worker cannot run is
-- skipped, never handed out; a job whose model is warm on the worker is preferred within a
-- window of the head. The job plain order would hand out next, and any job of a higher tier
-- than the warm job taken, are passed over that way for at most ARGV[7] ms in all.
-- KEYS: 1 queue, 2 owners, 3 limits, 4 claiming, 5 running jobs (jobId → userId), 6 running counts (userId → n),
--       7 models (jobId → model), 8 skipped (jobId → ms when a claim first passed it over for a warm job)
-- ARGV: 1 now (ms), 2 batch size, 3 max entries scanned,
--       4 warm models (comma-separated, may be empty), 5 loadable models (comma-separated, or * for any),
--       6 affinity window (runnable entries from the head), 7 max affinity delay (ms)
-- Returns {jobId, userId} or false.
local batch = tonumber(ARGV[2])
local maxScan = tonumber(ARGV[3])

local function take(jobId, owner)
  redis.call('ZREM', KEYS[1], jobId)
  redis.call('HDEL', KEYS[2], jobId)
  redis.call('HDEL', KEYS[7], jobId)
  redis.call('HDEL', KEYS[8], jobId)
  redis.call('ZADD', KEYS[4], ARGV[1], jobId)
  if redis.call('HSETNX', KEYS[5], jobId, owner) == 1 then
    redis.call('HINCRBY', KEYS[6], owner, 1)
  end
  return {jobId, owner}
end

-- ── model-aware dispatch ──────────────────────────────────────────────────────────────
local now = tonumber(ARGV[1])
local function set(list)
  local s = {}
  for m in string.gmatch(list, '[^,]+') do s[m] = true end
  return s
end
local warm = set(ARGV[4])
local hasWarm = next(warm) ~= nil
local anyModel = ARGV[5] == '*'
local loadable = set(ARGV[5])
local window = tonumber(ARGV[6])
local maxDelay = tonumber(ARGV[7])
-- Runnable cold jobs passed over while looking for a warm one ({jobId, owner, tier}), and the
-- first of them (taken when no warm job is found in the window).
local passed = {}
local fallback = nil
local coldSeen = 0

-- The tier part of a queue score (core queueScore: -priority × 10^10 + seconds): lower is a higher tier.
local function tierOf(score)
  return math.floor(tonumber(score) / 1e10)
end
-- Taking `tier`'s job delays the passed-over ones: the first (plain order's next) and those of a
-- higher tier start their clock (once). Same-tier jobs further back get theirs when they are next.
local function stampPassed(tier)
  for i, p in ipairs(passed) do
    if i == 1 or p[3] < tier then redis.call('HSETNX', KEYS[8], p[1], now) end
  end
end

-- What to do with a job the owner's limit allows: {jobId, owner} to take it, nil to go on.
local function consider(jobId, owner, score)
  local model = redis.call('HGET', KEYS[7], jobId)
  -- A job queued without a model (before this field existed) runs anywhere, cold.
  if model and not anyModel and not loadable[model] then return nil end
  if not hasWarm then return {jobId, owner} end
  if model and warm[model] then
    stampPassed(tierOf(score))
    return {jobId, owner}
  end
  coldSeen = coldSeen + 1
  if coldSeen > window then return fallback or {jobId, owner} end
  local since = redis.call('HGET', KEYS[8], jobId)
  if since and now - tonumber(since) >= maxDelay then
    -- Passed over long enough: it goes now, ahead of any warm job behind it.
    stampPassed(tierOf(score))
    return {jobId, owner}
  end
  fallback = fallback or {jobId, owner}
  passed[#passed + 1] = {jobId, owner, tierOf(score)}
  return nil
end
-- ── end of model-aware dispatch ───────────────────────────────────────────────────────

local full = {}
local start = 0
local scanned = 0
while scanned < maxScan do
  local entries = redis.call('ZRANGE', KEYS[1], start, start + batch - 1, 'WITHSCORES')
  if #entries == 0 then break end
  local removed = 0
  for e = 1, #entries, 2 do
    local jobId, score = entries[e], entries[e + 1]
    scanned = scanned + 1
    local owner = redis.call('HGET', KEYS[2], jobId)
    if not owner then
      -- Not written by enqueue.lua: unusable. The reconciler re-adds it whole if it is still pending.
      redis.call('ZREM', KEYS[1], jobId)
      redis.call('HDEL', KEYS[7], jobId)
      redis.call('HDEL', KEYS[8], jobId)
      removed = removed + 1
    elseif not full[owner] then
      local limit = tonumber(redis.call('HGET', KEYS[3], owner) or '1')
      local running = tonumber(redis.call('HGET', KEYS[6], owner) or '0')
      if running < limit then
        local chosen = consider(jobId, owner, score)
        if chosen then return take(chosen[1], chosen[2]) end
      else
        full[owner] = true
      end
    end
    if scanned >= maxScan then break end
  end
  start = start + #entries / 2 - removed
end
if fallback then return take(fallback[1], fallback[2]) end
return false
