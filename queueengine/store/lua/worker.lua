-- queueengine Lua library, part 8: worker registry, retention (completed and failed jobs)
-- and the bounded housekeeping pass.

-- prune_workers(n) -> workers forgotten (unseen for max-worker-age), at most n per call.
function QE.prune_workers(n)
  local age = QE.confnum('max-worker-age', 86400)
  if age <= 0 then return 0 end
  local old = redis.call('ZRANGEBYSCORE', QE.k('workers'), '-inf', QE.now - age, 'LIMIT', 0, n)
  for _, w in ipairs(old) do
    redis.call('ZREM', QE.k('workers'), w)
    redis.call('DEL', QE.kw(w), QE.kwinfo(w))
    QE.event('worker', nil, nil, {worker = w, action = 'pruned'})
  end
  return #old
end

local function worker_entry(name, seen)
  local key = QE.kw(name)
  local now = QE.nows
  local info = redis.call('GET', QE.kwinfo(name))
  return '{"name":' .. cjson.encode(name)
    .. ',"jobs":' .. redis.call('ZCOUNT', key, '(' .. now, '+inf')
    .. ',"stalled":' .. redis.call('ZCOUNT', key, '-inf', now)
    .. ',"last_seen":' .. QE.fnum(tonumber(seen))
    .. ',"info":' .. (info or '{}') .. '}'
end

-- workers() -> [{name, jobs, stalled, last_seen, info}] most recently seen first
-- workers(name) -> {jobs:[jid], stalled:[jid], info, last_seen|null}
function QE.cmd_workers(name)
  if name ~= nil and name ~= '' then QE.name(name, 'worker') end
  QE.prune_workers(QE.batch())
  local now = QE.nows
  if name ~= nil and name ~= '' then
    local key = QE.kw(name)
    local seen = redis.call('ZSCORE', QE.k('workers'), name)
    return '{"jobs":' .. QE.list_json(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf'))
      .. ',"stalled":' .. QE.list_json(redis.call('ZRANGEBYSCORE', key, '-inf', now))
      .. ',"info":' .. (redis.call('GET', QE.kwinfo(name)) or '{}')
      .. ',"last_seen":' .. (seen and QE.fnum(tonumber(seen)) or 'null') .. '}'
  end
  local all = redis.call('ZREVRANGE', QE.k('workers'), 0, -1, 'WITHSCORES')
  local out = {}
  for i = 1, #all, 2 do out[#out + 1] = worker_entry(all[i], all[i + 1]) end
  return '[' .. table.concat(out, ',') .. ']'
end

-- worker.register(name, info_json) -> 'OK'
function QE.cmd_worker_register(name, info)
  QE.name(name, 'worker')
  QE.json(info, 'info', 'object')
  redis.call('ZADD', QE.k('workers'), QE.nows, name)
  redis.call('SET', QE.kwinfo(name), info)
  QE.event('worker', nil, nil, {worker = name, action = 'registered'})
  return 'OK'
end

-- worker.beat(name) -> 'OK' (last seen = now)
function QE.cmd_worker_beat(name)
  QE.name(name, 'worker')
  redis.call('ZADD', QE.k('workers'), QE.nows, name)
  return 'OK'
end

-- worker.deregister(name...) -> 'OK'
function QE.cmd_worker_deregister(names)
  for _, w in ipairs(names) do QE.name(w, 'worker') end
  for _, w in ipairs(names) do
    redis.call('ZREM', QE.k('workers'), w)
    redis.call('DEL', QE.kwinfo(w))
    QE.event('worker', nil, nil, {worker = w, action = 'deregistered'})
  end
  return 'OK'
end

-- ---------------------------------------------------------------- retention
local function expire_one(jid, reason)
  local j = QE.job(jid)
  if j ~= nil then
    QE.unindex_failure(jid, j)
    QE.destroy(jid, j)
    QE.event('expired', jid, j.queue, {reason = reason})
  else
    redis.call('ZREM', QE.k('completed'), jid)
    redis.call('ZREM', QE.k('failed'), jid)
  end
end

-- expire_completed(n) -> completed jobs deleted (older than jobs-history seconds, or beyond
-- the newest jobs-history-count), at most n per call.
function QE.expire_completed(n)
  local key = QE.k('completed')
  local done = 0
  local age = QE.confnum('jobs-history', 604800)
  for _, jid in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', QE.now - age, 'LIMIT', 0, n)) do
    expire_one(jid, 'age'); done = done + 1
  end
  local keep = QE.confnum('jobs-history-count', 50000)
  local extra = redis.call('ZCARD', key) - math.max(keep, 0)
  if extra > 0 and done < n then
    for _, jid in ipairs(redis.call('ZRANGE', key, 0, math.min(extra, n - done) - 1)) do
      expire_one(jid, 'count'); done = done + 1
    end
  end
  return done
end

-- expire_failed(n) -> failed jobs deleted under failed-history (seconds, 0 = keep) and
-- failed-history-count (0 = no limit), at most n per call.
function QE.expire_failed(n)
  local key = QE.k('failed')
  local done = 0
  local age = QE.confnum('failed-history', 0)
  if age > 0 then
    for _, jid in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', QE.now - age, 'LIMIT', 0, n)) do
      expire_one(jid, 'failed-age'); done = done + 1
    end
  end
  local keep = QE.confnum('failed-history-count', 0)
  if keep > 0 and done < n then
    local extra = redis.call('ZCARD', key) - keep
    if extra > 0 then
      for _, jid in ipairs(redis.call('ZRANGE', key, 0, math.min(extra, n - done) - 1)) do
        expire_one(jid, 'failed-count'); done = done + 1
      end
    end
  end
  return done
end

-- housekeep(queue...) -> {promoted, spawned, reclaimed, expired, failed_expired,
--   workers_pruned}: one bounded pass (at most housekeeping-batch items per step and queue);
-- no queue given = every known queue. Reclaimed jobs go back to waiting.
function QE.cmd_housekeep(queues)
  for _, q in ipairs(queues) do QE.name(q, 'queue') end
  if #queues == 0 then queues = redis.call('ZRANGE', QE.k('queues'), 0, -1) end
  local n = QE.batch()
  local r = {promoted = 0, spawned = 0, reclaimed = 0, expired = 0, failed_expired = 0, workers_pruned = 0}
  for _, q in ipairs(queues) do
    r.reclaimed = r.reclaimed + QE.reclaim(q, n, nil)
    r.spawned = r.spawned + QE.spawn_recurring(q, n)
    r.promoted = r.promoted + QE.promote(q, n)
  end
  r.expired = QE.expire_completed(n)
  r.failed_expired = QE.expire_failed(n)
  r.workers_pruned = QE.prune_workers(n)
  return cjson.encode(r)
end
