-- queueengine Lua library, part 3: one job: record, history, index helpers, failing and
-- releasing dependents, and the commands get, multiget, cancel, depends, priority. What a
-- worker does to a leased job is in lifecycle.lua; tag/track/log commands are in tags.lua.

-- ---------------------------------------------------------------- record and payload
function QE.job(jid)
  return QE.hgetall(QE.kj(jid))
end

-- job_fields(jid, names) -> table of just those fields (names[1] must be 'state', which every
-- record has) or nil when the job does not exist. Cheaper than QE.job: the data is not copied.
function QE.job_fields(jid, names)
  local v = redis.call('HMGET', QE.kj(jid), unpack(names))
  if not v[1] then return nil end
  local t = {jid = jid}
  for i, name in ipairs(names) do
    if v[i] then t[name] = v[i] end
  end
  return t
end

-- the fields complete/heartbeat need: checks, lease structures, stats, reply, dependents
QE.DONE_FIELDS = {'state', 'worker', 'queue', 'expires', 'time', 'reply', 'inbox', 'throttles', 'dents',
  'failure', 'exhausted', 'grace', 'retries', 'priority', 'klass'}
QE.BEAT_FIELDS = {'state', 'worker', 'queue', 'expires', 'grace'}

-- state_of(j): the state a reader sees: a running job whose lease expired is 'stalled'.
function QE.state_of(j)
  local state = j.state
  if state == 'running' then
    local expires = tonumber(j.expires) or 0
    if expires > 0 and expires <= QE.now then return 'stalled' end
  end
  return state
end

local function raw_or(v, default)
  if v == nil or v == '' then return default end
  return v
end

-- due_at(jid, j) -> when a scheduled job becomes ready (its score in the queue's scheduled
-- set), or nil for a job in any other state.
function QE.due_at(jid, j)
  if j.state ~= 'scheduled' or j.queue == nil then return nil end
  return tonumber(redis.call('ZSCORE', QE.kq(j.queue, 'scheduled'), jid))
end

-- job_json(j, full) -> JSON object string:
--   {jid, klass, queue, state, worker, priority, expires, retries, remaining, data, tags,
--    failure|null, exhausted|null, spawned_from_jid|null, throttles, backoff|null, reply,
--    result|null, time, scheduled|null, due_at|null [, tracked, dependencies, dependents,
--    history]}
-- scheduled: the record's field (a depends job's pending delay, as pop and peek rows carry it);
-- due_at: when a scheduled job becomes ready (null in every other state).
-- data/tags/failure/result are embedded raw (they are stored as JSON); data that other readers
-- cannot read (written around the engine) is null, its text in data_unreadable.
function QE.job_json(j, full)
  local jid = j.jid
  local data, unreadable = j.data, ''
  if data ~= nil and data ~= '' and not QE.readable_json(data) then  -- written around the engine
    data, unreadable = nil, ',"data_unreadable":' .. cjson.encode(j.data)
  end
  local due = QE.due_at(jid, j)
  local scheduled = tonumber(j.scheduled)
  local s = '{"jid":' .. cjson.encode(jid)
    .. ',"klass":' .. cjson.encode(j.klass or '')
    .. ',"queue":' .. cjson.encode(j.queue or '')
    .. ',"state":' .. cjson.encode(QE.state_of(j))
    .. ',"worker":' .. cjson.encode(j.worker or '')
    .. ',"priority":' .. (tonumber(j.priority) or 0)
    .. ',"expires":' .. QE.fnum(tonumber(j.expires) or 0)
    .. ',"retries":' .. (tonumber(j.retries) or 0)
    .. ',"remaining":' .. (tonumber(j.remaining) or 0)
    .. ',"data":' .. raw_or(data, 'null') .. unreadable
    .. ',"tags":' .. raw_or(j.tags, '[]')
    .. ',"failure":' .. raw_or(j.failure, 'null')
    .. ',"exhausted":' .. raw_or(j.exhausted, 'null')
    .. ',"spawned_from_jid":' .. (j.spawned_from_jid and j.spawned_from_jid ~= ''
      and cjson.encode(j.spawned_from_jid) or 'null')
    .. ',"throttles":' .. raw_or(j.throttles, '[]')
    .. ',"backoff":' .. raw_or(j.backoff, 'null')
    .. ',"reply":' .. ((j.reply == '1') and 'true' or 'false')
    .. ',"result":' .. raw_or(j.result, 'null')
    .. ',"time":' .. QE.fnum(tonumber(j.time) or 0)
    .. ',"scheduled":' .. (scheduled and QE.fnum(scheduled) or 'null')
    .. ',"due_at":' .. (due and QE.fnum(due) or 'null')
  if full then
    s = s .. ',"tracked":' .. (redis.call('ZSCORE', QE.k('tracked'), jid) and 'true' or 'false')
      .. ',"dependencies":' .. QE.list_json(redis.call('SMEMBERS', QE.kjdeps(jid)))
      .. ',"dependents":' .. QE.list_json(redis.call('SMEMBERS', QE.kjdents(jid)))
    local rest = table.concat(redis.call('LRANGE', QE.kjh(jid), 0, -1), ',')
    local hist = rest
    if j.history ~= nil and j.history ~= '' then   -- (records from before keep all in the list)
      hist = rest ~= '' and (j.history .. ',' .. rest) or j.history
    end
    s = s .. ',"history":[' .. hist .. ']'
  end
  return s .. '}'
end

-- History: a job's first entry (its put) lives in its record, field `history`, written by the
-- put's own HSET; the later entries in the list j:<jid>:history, which keeps the newest
-- max-job-history - 1 (Qless: history = first entry + newest max-job-history - 1). A waiting
-- job is then one small hash (no list key), and a record stays a compact listpack hash.

-- history_entry(what, extra) -> the JSON text of {when, what, ...extra}
function QE.history_entry(what, extra)
  local e = '{"when":' .. QE.nows .. ',"what":' .. cjson.encode(what)
  if extra ~= nil then
    local x = cjson.encode(extra)
    if x ~= '{}' then e = e .. ',' .. string.sub(x, 2, -2) end
  end
  return e .. '}'
end

-- history(jid, what, extra): append {when, what, ...extra} to a job's history.
function QE.history(jid, what, extra)
  QE.history_raw(jid, QE.history_entry(what, extra))
end

-- history_raw(jid, entry_json): append a ready-made entry (after the first: see above).
function QE.history_raw(jid, e)
  local key = QE.kjh(jid)
  local n = redis.call('RPUSH', key, e)
  if n <= 1 then return end
  local cap = QE.confnum('max-job-history', 100)
  if cap > 0 and n > cap - 1 then
    if cap == 1 then redis.call('DEL', key) else redis.call('LTRIM', key, -(cap - 1), -1) end
  end
end

-- ---------------------------------------------------------------- indexes
function QE.tag_index_add(jid, tag)
  if redis.call('ZADD', QE.kt(tag), 'NX', QE.nows, jid) == 1 then
    redis.call('ZINCRBY', QE.k('tags'), 1, tag)
  end
end

function QE.tag_index_remove(jid, tag)
  if redis.call('ZREM', QE.kt(tag), jid) == 1 then
    if tonumber(redis.call('ZINCRBY', QE.k('tags'), -1, tag)) <= 0 then
      redis.call('ZREM', QE.k('tags'), tag)
    end
  end
end

function QE.decode_list(raw)
  if raw == nil or raw == '' then return {} end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return {}
end

-- unplace(jid, j): take the job out of every queue structure, its worker's lease list and
-- its throttle slots (the record itself is left alone).
function QE.unplace(jid, j)
  local q = j.queue
  if j.state == 'running' then QE.slot_freed(q) end
  if q ~= nil and q ~= '' then
    redis.call('ZREM', QE.kq(q, 'work'), jid)
    redis.call('ZREM', QE.kq(q, 'locks'), jid)
    redis.call('ZREM', QE.kq(q, 'scheduled'), jid)
    redis.call('ZREM', QE.kq(q, 'depends'), jid)
    redis.call('ZREM', QE.kq(q, 'throttled'), jid)
  end
  if j.worker ~= nil and j.worker ~= '' then
    redis.call('ZREM', QE.kw(j.worker), jid)
  end
  QE.throttle_release(jid, j)
end

-- slot_freed(queue): a lease of the queue ends; when the queue has a max-concurrency, idle
-- workers held back by it may pop again (a throttle slot wakes through throttle_drain).
function QE.slot_freed(queue)
  if queue ~= nil and queue ~= '' and (tonumber(QE.config(queue .. '-max-concurrency')) or 0) > 0 then
    QE.wake(queue)
  end
end

-- unlease(jid, j): take a running job out of its lease structures only (fast path of unplace).
function QE.unlease(jid, j)
  QE.slot_freed(j.queue)
  redis.call('ZREM', QE.kq(j.queue, 'locks'), jid)
  if j.worker ~= nil and j.worker ~= '' then redis.call('ZREM', QE.kw(j.worker), jid) end
  QE.throttle_release(jid, j)
end

-- unindex_failure(jid, j): forget that a failed job failed (failure lists, stats counter).
function QE.unindex_failure(jid, j)
  if j.state ~= 'failed' then return end
  redis.call('ZREM', QE.k('failed'), jid)
  local ok, f = pcall(cjson.decode, j.failure or '')
  if not ok or type(f) ~= 'table' or f.group == nil then return end
  local key = QE.kf(f.group)
  -- a jid is in its group's list once: scan from the nearer end (the list is newest first), so
  -- retrying or canceling a group oldest-first costs O(1) per job instead of O(group size)
  local from = 1
  local oldest = redis.call('LINDEX', key, -1)
  if oldest == jid then
    from = -1
  elseif oldest then
    local newest = redis.call('LINDEX', key, 0)
    local ow = tonumber(string.match(redis.call('HGET', QE.kj(oldest), 'failure') or '', '"when":([%d%.eE+-]+)'))
    local nw = tonumber(string.match(redis.call('HGET', QE.kj(newest), 'failure') or '', '"when":([%d%.eE+-]+)'))
    local w = tonumber(f.when)
    if ow and nw and w and (w - ow) < (nw - w) then from = -1 end
  end
  redis.call('LREM', key, from, jid)
  if redis.call('LLEN', key) == 0 then redis.call('SREM', QE.k('failures'), f.group) end
  local day = QE.day(tonumber(f.when) or QE.now)
  local fq = f.queue or j.queue or ''
  if fq ~= '' then
    redis.call('HINCRBY', PREFIX .. 's:stats:' .. day .. ':' .. fq, 'failed', -1)
  end
end

-- destroy(jid, j): delete a job and every index entry pointing at it.
function QE.destroy(jid, j)
  QE.index_remove(j.queue, j.klass, jid)
  for _, tag in ipairs(QE.decode_list(j.tags)) do QE.tag_index_remove(jid, tag) end
  redis.call('ZREM', QE.k('tracked'), jid)
  redis.call('ZREM', QE.k('completed'), jid)
  redis.call('ZREM', QE.k('failed'), jid)
  for _, dep in ipairs(redis.call('SMEMBERS', QE.kjdeps(jid))) do
    redis.call('SREM', QE.kjdents(dep), jid)
  end
  redis.call('DEL', QE.kj(jid), QE.kjh(jid), QE.kjdeps(jid), QE.kjdents(jid))
end

-- reply(jid, j, state, body): store nothing (caller did) and publish the result for waiters.
function QE.reply(jid, j, state, body_key, body_raw)
  if j.reply == '1' then
    QE.send_reply(jid, j, '{"jid":' .. cjson.encode(jid) .. ',"state":"' .. state .. '","' .. body_key
      .. '":' .. body_raw .. '}')
  end
end

-- send_reply(jid, j, message): the reply on the job's channel, and on the inbox of the client
-- that put it when it named one (plain PUBLISH: clients may subscribe by pattern).
function QE.send_reply(jid, j, message)
  redis.call('PUBLISH', QE.k('reply:' .. jid), message)
  if j.inbox ~= nil and j.inbox ~= '' then redis.call('PUBLISH', QE.k('inbox:' .. j.inbox), message) end
end

-- add_dependencies(jid, deps) -> number of live dependencies recorded (existing, not complete).
function QE.add_dependencies(jid, deps)
  local live = 0
  for _, dep in ipairs(deps) do
    if dep ~= jid then
      local st = redis.call('HGET', QE.kj(dep), 'state')
      if st and st ~= 'complete' then
        redis.call('SADD', QE.kjdeps(jid), dep)
        redis.call('SADD', QE.kjdents(dep), jid)
        redis.call('HSET', QE.kj(dep), 'dents', '1')   -- complete checks this flag, not the set
        live = live + 1
      end
    end
  end
  return live
end

-- enqueue(jid, queue, priority, delay, j): place a job in waiting/scheduled (not depends);
-- returns the new state.
function QE.enqueue(jid, queue, priority, delay, seq)
  if delay > 0 then
    redis.call('ZADD', QE.kq(queue, 'scheduled'), QE.now + delay, jid)
    QE.wake(queue)   -- blocked workers recompute next_due
    return 'scheduled'
  end
  redis.call('ZADD', QE.kq(queue, 'work'), QE.score(priority, seq or QE.next_seq()), jid)
  QE.wake(queue)
  return 'waiting'
end

-- backoff_delay(j): the retry delay a job's backoff policy gives for its next attempt.
function QE.backoff_delay(j)
  if j.backoff == nil or j.backoff == '' then return 0 end
  local ok, b = pcall(cjson.decode, j.backoff)
  if not ok or type(b) ~= 'table' then return 0 end
  local attempt = (tonumber(j.retries) or 0) - (tonumber(j.remaining) or 0)
  if attempt < 1 then attempt = 1 end
  local d = (tonumber(b.base) or 0) * ((tonumber(b.factor) or 2) ^ (attempt - 1))
  local cap = tonumber(b.max)
  if cap ~= nil and cap > 0 and d > cap then d = cap end
  return d
end

-- running_job(jid, worker, names): the record (or just the fields `names`, see job_fields)
-- of a job that `worker` holds; raises otherwise.
function QE.running_job(jid, worker, names)
  local j
  if names then j = QE.job_fields(jid, names) else j = QE.job(jid) end
  if j == nil then QE.raise('JobNotFound', 'job ' .. jid .. ' does not exist') end
  if j.state ~= 'running' then
    QE.raise('WrongState', 'job ' .. jid .. ' is not currently running: ' .. QE.state_of(j))
  end
  if j.worker ~= worker then
    QE.raise('LostLease', 'job ' .. jid .. ' has been given out to another worker: ' .. (j.worker or ''))
  end
  return j
end

function QE.existing_job(jid)
  local j = QE.job(jid)
  if j == nil then QE.raise('JobNotFound', 'job ' .. jid .. ' does not exist') end
  return j
end

-- ---------------------------------------------------------------- release of dependents
-- unblock_dependents(jid): after a final complete, each dependent drops jid; one with no
-- dependencies left leaves 'depends' for scheduled (if it had a pending delay) or waiting.
function QE.unblock_dependents(jid)
  local key = QE.kjdents(jid)
  for _, d in ipairs(redis.call('SMEMBERS', key)) do
    redis.call('SREM', QE.kjdeps(d), jid)
    if redis.call('SCARD', QE.kjdeps(d)) == 0 then
      local f = redis.call('HMGET', QE.kj(d), 'state', 'queue', 'priority', 'scheduled')
      if f[1] == 'depends' then QE.release_depends(d, f[2], tonumber(f[3]) or 0, tonumber(f[4])) end
    end
  end
  redis.call('DEL', key)
end

function QE.release_depends(jid, queue, priority, scheduled)
  redis.call('ZREM', QE.kq(queue, 'depends'), jid)
  local delay = 0
  if scheduled ~= nil and scheduled > QE.now then delay = scheduled - QE.now end
  local state = QE.enqueue(jid, queue, priority, delay)
  redis.call('HSET', QE.kj(jid), 'state', state, 'scheduled', '')
  QE.event('undepended', jid, queue, {state = state})
end

-- ---------------------------------------------------------------- fail (shared)
-- fail_job(jid, j, failure, exhausted, run): move a job to failed with the given failure table
-- (run: the seconds its worker ran it, when a worker failed it).
function QE.fail_job(jid, j, failure, exhausted, run)
  local queue = j.queue
  QE.unplace(jid, j)
  QE.history(jid, 'failed', {worker = failure.worker, group = failure.group})
  QE.stat_incr(queue, 'failures', 1)
  QE.stat_incr(queue, 'failed', 1)
  QE.mt_job(queue, j.klass, 'f', run)
  QE.mt_group_failed(failure.group)
  local fjson = cjson.encode(failure)
  redis.call('HSET', QE.kj(jid), 'state', 'failed', 'worker', '', 'expires', 0, 'grace', '',
    'failure', fjson, 'exhausted', exhausted and cjson.encode(exhausted) or '')
  redis.call('SADD', QE.k('failures'), failure.group)
  redis.call('LPUSH', QE.kf(failure.group), jid)
  redis.call('ZADD', QE.k('failed'), QE.nows, jid)
  QE.event('failed', jid, queue, {worker = failure.worker, group = failure.group,
    message = failure.message, exhausted = exhausted ~= nil})
  QE.reply(jid, j, 'failed', 'error', fjson)
  QE.tput_worker('failed', failure.worker, 1)
  QE.expire_failed(10)
end

-- ---------------------------------------------------------------- commands
-- get(jid) -> job JSON (full) | nil
function QE.cmd_get(jid)
  QE.existing_name(jid, 'jid')
  local j = QE.job(jid)
  if j == nil then return nil end
  return QE.job_json(j, true)
end

-- multiget(jid...) -> JSON list of job objects (null for missing jids)
function QE.cmd_multiget(jids)
  local out = {}
  for i, jid in ipairs(jids) do
    QE.existing_name(jid, 'jid')
    local j = QE.job(jid)
    out[i] = j and QE.job_json(j, true) or 'null'
  end
  return '[' .. table.concat(out, ',') .. ']'
end

-- cancel(jid...) -> JSON list of canceled jids. Refuses (nothing changes) when a job has a
-- dependent that is not canceled in the same call. Completed jobs are skipped.
function QE.cmd_cancel(jids)
  local wanted = {}
  for _, jid in ipairs(jids) do QE.existing_name(jid, 'jid'); wanted[jid] = true end
  for _, jid in ipairs(jids) do
    for _, d in ipairs(redis.call('SMEMBERS', QE.kjdents(jid))) do
      if not wanted[d] then
        QE.raise('WrongState', jid .. ' is a dependency of ' .. d .. ' but is not mentioned to be canceled')
      end
    end
  end
  local done = {}
  for _, jid in ipairs(jids) do
    local j = QE.job(jid)
    if j ~= nil and j.state ~= 'complete' and not done[jid] then
      done[jid] = true
      local ev = QE.event('canceled', jid, j.queue, {worker = j.worker})
      QE.to_worker(j.worker, ev)
      QE.unplace(jid, j)
      QE.unindex_failure(jid, j)
      QE.destroy(jid, j)
    end
  end
  local out = {}
  for _, jid in ipairs(jids) do if done[jid] then out[#out + 1] = jid end end
  return QE.list_json(out)
end

-- depends(jid, 'on', jid...) / depends(jid, 'off', jid... | 'all') -> 'OK'
function QE.cmd_depends(jid, action, others)
  QE.name(jid, 'jid')
  if action ~= 'on' and action ~= 'off' then
    QE.raise('InvalidArgument', "action must be 'on' or 'off', got " .. tostring(action))
  end
  for _, d in ipairs(others) do
    QE.name(d, 'dependency')
    if d == jid then QE.raise('InvalidArgument', 'dependency: a job cannot depend on itself') end
  end
  local j = QE.existing_job(jid)
  if j.state ~= 'depends' then
    QE.raise('WrongState', 'job ' .. jid .. ' is not in the depends state: ' .. QE.state_of(j))
  end
  if action == 'on' then
    QE.add_dependencies(jid, others)
  else
    local list = others
    if #others == 1 and others[1] == 'all' then list = redis.call('SMEMBERS', QE.kjdeps(jid)) end
    for _, d in ipairs(list) do
      redis.call('SREM', QE.kjdeps(jid), d)
      redis.call('SREM', QE.kjdents(d), jid)
    end
    if redis.call('SCARD', QE.kjdeps(jid)) == 0 then
      QE.release_depends(jid, j.queue, tonumber(j.priority) or 0, tonumber(j.scheduled))
    end
  end
  QE.event('depends', jid, j.queue, {action = action, jids = others})
  return 'OK'
end

-- priority(jid, priority) -> priority. A waiting job keeps its FIFO place within the new level.
function QE.cmd_priority(jid, priority)
  QE.name(jid, 'jid')
  priority = QE.integer(priority, 'priority', -PRIORITY_LIMIT, PRIORITY_LIMIT)
  local j = QE.existing_job(jid)
  local old = tonumber(j.priority) or 0
  local keys = {QE.kq(j.queue, 'work'), QE.kq(j.queue, 'throttled')}
  for _, name in ipairs(QE.decode_list(j.throttles)) do keys[#keys + 1] = QE.kth(name, 'pending') end
  for _, key in ipairs(keys) do
    local score = tonumber(redis.call('ZSCORE', key, jid))
    if score ~= nil and score ~= -math.huge then
      redis.call('ZADD', key, score + (old - priority) * FIFO_SPAN, jid)
    end
  end
  redis.call('HSET', QE.kj(jid), 'priority', priority)
  QE.event('priority', jid, j.queue, {priority = priority})
  return priority
end

-- edit(jid, data_json | '', priority | '', delay | '', tags_json | '') -> state: change a waiting
-- or scheduled job in place ('' leaves a field as it is). delay: seconds from now until it is
-- ready (0: ready now; a waiting job with a delay becomes scheduled, a scheduled one with 0
-- waiting); tags: the job's new tag list. Every argument is checked before anything is
-- written; a job in another state is refused (WrongState). History "edited" and event
-- "edited" {fields, state}.
function QE.cmd_edit(jid, data, priority, delay, tags)
  QE.name(jid, 'jid')
  local fields = {}
  if data ~= '' then
    QE.json(data, 'data')
    local max = QE.confnum('max-payload-bytes', 0)
    if max > 0 and #data > max then
      QE.raise('InvalidArgument', 'data is ' .. #data .. ' bytes, over the max-payload-bytes limit of ' .. max
        .. ' bytes; nothing was written')
    end
    fields[#fields + 1] = 'data'
  end
  if priority ~= '' then
    priority = QE.integer(priority, 'priority', -PRIORITY_LIMIT, PRIORITY_LIMIT)
    fields[#fields + 1] = 'priority'
  end
  if delay ~= '' then delay = QE.number(delay, 'delay', 0); fields[#fields + 1] = 'delay' end
  if tags ~= '' then tags = QE.names(tags, 'tags'); fields[#fields + 1] = 'tags' end
  if #fields == 0 then QE.raise('InvalidArgument', 'nothing to edit: give data, priority, delay or tags') end
  local j = QE.existing_job(jid)
  local state = QE.state_of(j)
  if state ~= 'waiting' and state ~= 'scheduled' then
    QE.raise('WrongState', 'job ' .. jid .. ' is ' .. state .. '; only waiting and scheduled jobs can be edited')
  end
  local key = QE.kj(jid)
  if data ~= '' then redis.call('HSET', key, 'data', data) end
  if tags ~= '' then
    local keep = {}
    for _, t in ipairs(tags) do keep[t] = true end
    for _, t in ipairs(QE.decode_list(j.tags)) do
      if not keep[t] then QE.tag_index_remove(jid, t) end
    end
    for _, t in ipairs(tags) do QE.tag_index_add(jid, t) end
    redis.call('HSET', key, 'tags', QE.list_json(tags))
  end
  local work = QE.kq(j.queue, 'work')
  if priority ~= '' then
    local score = tonumber(redis.call('ZSCORE', work, jid))
    if score ~= nil then
      redis.call('ZADD', work, score + ((tonumber(j.priority) or 0) - priority) * FIFO_SPAN, jid)
    end
    redis.call('HSET', key, 'priority', priority)
  else
    priority = tonumber(j.priority) or 0
  end
  if delay ~= '' then
    if delay > 0 then
      redis.call('ZREM', work, jid)
      redis.call('ZADD', QE.kq(j.queue, 'scheduled'), QE.now + delay, jid)
      state = 'scheduled'
    elseif state == 'scheduled' then
      redis.call('ZREM', QE.kq(j.queue, 'scheduled'), jid)
      redis.call('ZADD', work, QE.score(priority, QE.next_seq()), jid)
      state = 'waiting'
    end
    redis.call('HSET', key, 'state', state)
    QE.wake(j.queue)   -- idle workers recompute when something is due
  end
  QE.history(jid, 'edited', {fields = fields})
  QE.event('edited', jid, j.queue, {fields = fields, state = state})
  return state
end
