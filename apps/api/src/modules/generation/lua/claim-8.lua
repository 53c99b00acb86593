-- Pops the best job whose owner is below their concurrency limit, in score order.
-- Jobs of owners at their limit are skipped, not removed, so one busy user never stalls the
-- others. The walk is bounded: at most maxScan entries, read in batches; beyond that the
-- claim reports nothing rather than make Redis scan an arbitrarily long queue.
-- The popped job goes to `claiming` (until the caller's DB commit) and into the running
-- set at once, so a concurrent claim already sees the owner's new running count.
-- Model-aware dispatch (the block below `take`): a job for a model the worker cannot run is
-- skipped, never handed out; a job whose model is warm on the worker is preferred within a
-- window of the head. The job plain order would hand out next, and any job of a higher tier
-- than the warm job taken, are passed over that way for at most maxDelay ms in all.
-- Returns {jobId, userId} or false.
local queueKey = KEYS[1]
local ownersKey = KEYS[2]          -- jobId → userId
local limitsKey = KEYS[3]          -- userId → concurrent jobs
local claimingKey = KEYS[4]
local runningJobsKey = KEYS[5]     -- jobId → userId
local runningCountsKey = KEYS[6]   -- userId → n
local modelsKey = KEYS[7]          -- jobId → model
local skippedKey = KEYS[8]         -- jobId → ms when a claim first passed it over for a warm job

local now = tonumber(ARGV[1])      -- ms
local batch = tonumber(ARGV[2])
local maxScan = tonumber(ARGV[3])
local warmModels = ARGV[4]         -- comma-separated, may be empty
local loadableModels = ARGV[5]     -- comma-separated, or * for any
local window = tonumber(ARGV[6])   -- runnable entries from the head
local maxDelay = tonumber(ARGV[7]) -- ms

local function take(jobId, owner)
  redis.call('ZREM', queueKey, jobId)
  redis.call('HDEL', ownersKey, jobId)
  redis.call('HDEL', modelsKey, jobId)
  redis.call('HDEL', skippedKey, jobId)
  redis.call('ZADD', claimingKey, now, jobId)
  if redis.call('HSETNX', runningJobsKey, jobId, owner) == 1 then
    redis.call('HINCRBY', runningCountsKey, owner, 1)
  end
  return {jobId, owner}
end

-- ── model-aware dispatch ──────────────────────────────────────────────────────────────
local function set(list)
  local s = {}
  for m in string.gmatch(list, '[^,]+') do s[m] = true end
  return s
end
local warm = set(warmModels)
local hasWarm = next(warm) ~= nil
local anyModel = loadableModels == '*'
local loadable = set(loadableModels)
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
    if i == 1 or p[3] < tier then redis.call('HSETNX', skippedKey, p[1], now) end
  end
end

-- What to do with a job the owner's limit allows: {jobId, owner} to take it, nil to go on.
local function consider(jobId, owner, score)
  local model = redis.call('HGET', modelsKey, jobId)
  -- A job queued without a model (before this field existed) runs anywhere, cold.
  if model and not anyModel and not loadable[model] then return nil end
  if not hasWarm then return {jobId, owner} end
  if model and warm[model] then
    stampPassed(tierOf(score))
    return {jobId, owner}
  end
  coldSeen = coldSeen + 1
  if coldSeen > window then return fallback or {jobId, owner} end
  local since = redis.call('HGET', skippedKey, jobId)
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
  local entries = redis.call('ZRANGE', queueKey, start, start + batch - 1, 'WITHSCORES')
  if #entries == 0 then break end
  local removed = 0
  for e = 1, #entries, 2 do
    local jobId, score = entries[e], entries[e + 1]
    scanned = scanned + 1
    local owner = redis.call('HGET', ownersKey, jobId)
    if not owner then
      -- Not written by addToQueue: unusable. The reconciler re-adds it whole if it is still pending.
      redis.call('ZREM', queueKey, jobId)
      redis.call('HDEL', modelsKey, jobId)
      redis.call('HDEL', skippedKey, jobId)
      removed = removed + 1
    elseif not full[owner] then
      local limit = tonumber(redis.call('HGET', limitsKey, owner) or '1')
      local running = tonumber(redis.call('HGET', runningCountsKey, owner) or '0')
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
