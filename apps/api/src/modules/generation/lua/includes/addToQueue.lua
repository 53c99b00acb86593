-- The writes that put a job into the dispatch queue, shared by enqueue and requeueMissing so a
-- field added here reaches both: its owner, its model, the owner's concurrency limit, its score,
-- and no leftover `claiming` entry.
local function addToQueue(queueKey, ownersKey, limitsKey, claimingKey, modelsKey, jobId, score, userId, limit, model)
  redis.call('HSET', ownersKey, jobId, userId)
  redis.call('HSET', modelsKey, jobId, model)
  redis.call('HSET', limitsKey, userId, limit)
  redis.call('ZADD', queueKey, score, jobId)
  redis.call('ZREM', claimingKey, jobId)
end
