-- queueengine Lua library, part 7: named throttles (concurrency limits shared across queues).
-- A job put with throttles=("api",) holds a slot of each named throttle while it runs. A job
-- that cannot get every slot at pop time waits in its queue's throttled set (state
-- 'throttled') and in the throttle's pending set; a released slot moves pending jobs back to
-- waiting with their original place in line. maximum 0 = unlimited.

function QE.throttles_in_use()
  if QE._throttles == nil then QE._throttles = redis.call('SCARD', QE.k('throttles')) > 0 end
  return QE._throttles
end

local function maximum(name)
  return tonumber(redis.call('HGET', QE.kth(name), 'maximum')) or 0
end

-- throttle_acquire(jid, queue, score) -> true when the job got every slot (it may run);
-- false when it was parked as throttled.
function QE.throttle_acquire(jid, queue, score)
  local raw = redis.call('HGET', QE.kj(jid), 'throttles')
  if raw == nil or raw == false or raw == '' or raw == '[]' then return true end
  local names = QE.decode_list(raw)
  for _, name in ipairs(names) do
    local max = maximum(name)
    if max > 0 and redis.call('SISMEMBER', QE.kth(name, 'locks'), jid) == 0
        and redis.call('SCARD', QE.kth(name, 'locks')) >= max then
      redis.call('ZADD', QE.kq(queue, 'throttled'), score, jid)
      redis.call('ZADD', QE.kth(name, 'pending'), score, jid)
      redis.call('HSET', QE.kj(jid), 'state', 'throttled')
      QE.history(jid, 'throttled', {throttle = name})
      QE.event('throttled', jid, queue, {throttle = name})
      return false
    end
  end
  for _, name in ipairs(names) do redis.call('SADD', QE.kth(name, 'locks'), jid) end
  return true
end

-- throttle_drain(name): move pending jobs back to waiting while the throttle has free slots.
function QE.throttle_drain(name)
  local max = maximum(name)
  local free = 10
  if max > 0 then free = max - redis.call('SCARD', QE.kth(name, 'locks')) end
  if free <= 0 then return end
  local pending = redis.call('ZRANGE', QE.kth(name, 'pending'), 0, free - 1, 'WITHSCORES')
  for i = 1, #pending, 2 do
    local jid, score = pending[i], pending[i + 1]
    redis.call('ZREM', QE.kth(name, 'pending'), jid)
    local f = redis.call('HMGET', QE.kj(jid), 'state', 'queue')
    if f[1] == 'throttled' then
      redis.call('ZREM', QE.kq(f[2], 'throttled'), jid)
      redis.call('ZADD', QE.kq(f[2], 'work'), score, jid)
      redis.call('HSET', QE.kj(jid), 'state', 'waiting')
      QE.event('unthrottled', jid, f[2], {throttle = name})
      QE.wake(f[2])
    end
  end
end

-- throttle_release(jid, j): give back the job's slots (and its place in pending sets).
function QE.throttle_release(jid, j)
  local raw = j.throttles
  if raw == nil or raw == '' or raw == '[]' then return end
  for _, name in ipairs(QE.decode_list(raw)) do
    redis.call('ZREM', QE.kth(name, 'pending'), jid)
    if redis.call('SREM', QE.kth(name, 'locks'), jid) == 1 then QE.throttle_drain(name) end
  end
end

-- throttle.set(name, maximum) -> 'OK'
function QE.cmd_throttle_set(name, max)
  QE.name(name, 'throttle')
  max = QE.integer(max, 'maximum', 0, 1000000000)
  redis.call('HSET', QE.kth(name), 'maximum', max)
  redis.call('SADD', QE.k('throttles'), name)
  QE.event('throttle', nil, nil, {throttle = name, maximum = max})
  QE.throttle_drain(name)
  return 'OK'
end

-- throttle.get(name) -> {name, maximum, locks: n, pending: n}
function QE.cmd_throttle_get(name)
  QE.name(name, 'throttle')
  return cjson.encode({name = name, maximum = maximum(name),
    locks = redis.call('SCARD', QE.kth(name, 'locks')),
    pending = redis.call('ZCARD', QE.kth(name, 'pending'))})
end

-- throttle.delete(name) -> 'OK' (pending jobs go back to waiting)
function QE.cmd_throttle_delete(name)
  QE.name(name, 'throttle')
  redis.call('HSET', QE.kth(name), 'maximum', 0)
  QE.throttle_drain(name)
  while redis.call('ZCARD', QE.kth(name, 'pending')) > 0 do QE.throttle_drain(name) end
  redis.call('DEL', QE.kth(name))
  redis.call('SREM', QE.k('throttles'), name)
  QE.event('throttle', nil, nil, {throttle = name, deleted = true})
  return 'OK'
end

-- throttle.locks(name) / throttle.pending(name) -> JSON jids
function QE.cmd_throttle_list(name, which)
  QE.name(name, 'throttle')
  if which == 'locks' then return QE.list_json(redis.call('SMEMBERS', QE.kth(name, 'locks'))) end
  return QE.list_json(redis.call('ZRANGE', QE.kth(name, 'pending'), 0, -1))
end
