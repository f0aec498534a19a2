-- queueengine Lua library, part 4: queues: put, pop, peek, promotion, lease reclaim,
-- listings, counts, pause, failed groups, unfail.

QE.PUT_FIELDS = 12   -- jid, klass, data, delay, priority, tags, retries, depends, unique,
                     -- throttles, reply, backoff
-- put, put_many and put_batch take one optional argument after all the others: the producer's
-- trace context (a JSON object of W3C headers, {"traceparent": ...}; queueengine.operator.tracing),
-- stored in the job's 'trace' field so the worker's span links to the producer's.

-- trace_arg(v) -> the trace context to store, or nil ('' or absent: none).
function QE.trace_arg(v)
  if v == nil or v == '' then return nil end
  QE.json(v, 'trace', 'object')
  return v
end

-- parse_backoff(raw) -> JSON string ('' for none): {"base": s >= 0, "factor": >= 1, "max": s >= 0}
function QE.parse_backoff(raw)
  if raw == nil or raw == '' then return '' end
  local b = QE.json(raw, 'backoff', 'object')
  local base = QE.number(b.base, 'backoff.base', 0)
  local factor = QE.number(b.factor or 2, 'backoff.factor', 1)
  local max = QE.number(b.max or 0, 'backoff.max', 0)
  return cjson.encode({base = base, factor = factor, max = max})
end

-- parse_put(queue, a, i, seen): validate one job's put arguments a[i..i+11]; no reads, no
-- writes. Numbers the record stores keep the caller's text (no number -> string conversion).
function QE.parse_put(queue, a, i, seen)
  local s = {queue = queue}
  s.jid = QE.name(a[i], 'jid')
  s.klass = a[i + 1]
  if s.klass == nil or s.klass == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
  s.data = a[i + 2]
  QE.json(s.data, 'data')
  s.delay = QE.number(a[i + 3], 'delay', 0)
  s.priority = QE.integer(a[i + 4], 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
  s.priority_s = a[i + 4]
  if a[i + 5] == '[]' then s.tags = {} else s.tags = QE.names(a[i + 5], 'tags') end
  QE.integer(a[i + 6], 'retries', 0, 1000000000)
  s.retries = a[i + 6]
  if a[i + 7] == '[]' then s.depends = {} else s.depends = QE.names(a[i + 7], 'depends') end
  for _, d in ipairs(s.depends) do
    if d == s.jid then QE.raise('InvalidArgument', 'depends: a job cannot depend on itself') end
  end
  s.unique = QE.flag(a[i + 8], 'unique')
  if a[i + 9] == '[]' or a[i + 9] == '' then s.throttles = {} else s.throttles = QE.names(a[i + 9], 'throttles') end
  local r = a[i + 10]
  if r == nil or r == '' or r == '0' or r == '1' or r == 'true' or r == 'false' then
    s.reply = QE.flag(r, 'reply')
  else
    s.reply, s.inbox = true, QE.name(r, 'reply')   -- also published on the client's inbox
  end
  s.backoff = QE.parse_backoff(a[i + 11])
  if seen[s.jid] and s.unique then QE.raise('DuplicateJob', 'job ' .. s.jid .. ' already exists') end
  seen[s.jid] = true
  return s
end

-- lookup_put(s, requeue): read the job's current record into s.old; refuses a unique put of
-- an existing jid and a requeue of a missing one. No writes.
function QE.lookup_put(s, requeue)
  s.old = QE.job(s.jid)
  if s.old ~= nil and s.unique then QE.raise('DuplicateJob', 'job ' .. s.jid .. ' already exists') end
  if s.old == nil and requeue then QE.raise('JobNotFound', 'job ' .. s.jid .. ' does not exist') end
end

-- move_out(jid, s, worker) -> live dependencies: take an existing job out of where it was (its
-- queue, lease, failure lists, completed set, tags it loses, dependencies it drops).
local function move_out(jid, s, worker)
  local old = s.old
  if old.worker ~= nil and old.worker ~= '' and old.worker ~= worker then
    local ev = QE.event('lock_lost', jid, old.queue, {worker = old.worker, reason = 'moved'})
    QE.to_worker(old.worker, ev)
  end
  QE.unplace(jid, old)
  QE.unindex_failure(jid, old)
  redis.call('ZREM', QE.k('completed'), jid)
  local keep = {}
  for _, t in ipairs(s.tags) do keep[t] = true end
  for _, t in ipairs(QE.decode_list(old.tags)) do
    if not keep[t] then QE.tag_index_remove(jid, t) end
  end
  if #s.depends > 0 then
    local want = {}
    for _, d in ipairs(s.depends) do want[d] = true end
    for _, d in ipairs(redis.call('SMEMBERS', QE.kjdeps(jid))) do
      if not want[d] then
        redis.call('SREM', QE.kjdeps(jid), d)
        redis.call('SREM', QE.kjdents(d), jid)
      end
    end
  end
  if old.state ~= 'failed' and old.failure ~= nil then redis.call('HSET', QE.kj(jid), 'failure', '') end
  return redis.call('SCARD', QE.kjdeps(jid))
end

-- do_put(worker, s, work, idx) -> state: write one validated, looked-up job (a new job, or a
-- move of an existing jid). work / idx: nil (add to the work set / class index now) or lists
-- collecting score, member pairs for one ZADD each by the caller (put_many).
function QE.do_put(worker, s, work, idx)
  local jid, queue, old = s.jid, s.queue, s.old
  local key = QE.kj(jid)
  local live = 0
  if old ~= nil then live = move_out(jid, s, worker) end
  if #s.depends > 0 then
    QE.add_dependencies(jid, s.depends)
    live = redis.call('SCARD', QE.kjdeps(jid))
  end
  local state, sched = 'waiting', ''
  if live > 0 then
    state = 'depends'
    if s.delay > 0 then sched = QE.fnum(QE.now + s.delay) end
    redis.call('ZADD', QE.kq(queue, 'depends'), QE.nows, jid)
  elseif s.delay > 0 then
    state = 'scheduled'
    redis.call('ZADD', QE.kq(queue, 'scheduled'), QE.now + s.delay, jid)
  else
    local score = QE.score(s.priority, s.seq or QE.next_seq())
    if work then work[#work + 1] = score; work[#work + 1] = jid
    else redis.call('ZADD', QE.kq(queue, 'work'), score, jid) end
  end
  local tags_json = '[]'
  if #s.tags > 0 then tags_json = QE.list_json(s.tags) end
  local qjson = s.qjson or cjson.encode(queue)
  local hist = s.hist or ('{"when":' .. QE.nows .. ',"what":"put","queue":' .. qjson .. '}')
  local f = {'jid', jid, 'klass', s.klass, 'data', s.data, 'priority', s.priority_s, 'state', state,
    'queue', queue, 'retries', s.retries, 'remaining', s.retries, 'time', QE.nows}
  if old ~= nil then
    local more = {'tags', tags_json, 'worker', '', 'expires', '0',
      'throttles', #s.throttles > 0 and QE.list_json(s.throttles) or '[]', 'reply', s.reply and '1' or '0',
      'inbox', s.inbox or '', 'scheduled', sched, 'backoff', s.backoff, 'result', '', 'grace', '',
      'timedout', '', 'exhausted', '', 'trace', s.trace or ''}
    for _, v in ipairs(more) do f[#f + 1] = v end
  else
    -- a new job stores only the fields that differ from the readers' defaults
    if #s.tags > 0 then f[#f + 1] = 'tags'; f[#f + 1] = tags_json end
    if #s.throttles > 0 then f[#f + 1] = 'throttles'; f[#f + 1] = QE.list_json(s.throttles) end
    if s.reply then f[#f + 1] = 'reply'; f[#f + 1] = '1' end
    if s.inbox then f[#f + 1] = 'inbox'; f[#f + 1] = s.inbox end
    if sched ~= '' then f[#f + 1] = 'scheduled'; f[#f + 1] = sched end
    if s.backoff ~= '' then f[#f + 1] = 'backoff'; f[#f + 1] = s.backoff end
    if s.trace then f[#f + 1] = 'trace'; f[#f + 1] = s.trace end
  end
  if old == nil then f[#f + 1] = 'history'; f[#f + 1] = hist end   -- a job's first entry
  redis.call('HSET', key, unpack(f))
  if old ~= nil then
    QE.history_raw(jid, hist)
    QE.index_move(jid, old.queue, old.klass, queue, s.klass)
  elseif idx then
    idx[#idx + 1] = 0; idx[#idx + 1] = s.klass .. '\0' .. jid
  else
    QE.index_add(queue, s.klass, jid)
  end
  for _, t in ipairs(s.tags) do QE.tag_index_add(jid, t) end
  if old ~= nil and old.queue ~= nil and old.queue ~= '' and old.queue ~= queue then
    QE.event('moved', jid, queue, {from = old.queue, state = state})
  else
    redis.call(QE.spub(), QE.k('events'), '{"e":"put","jid":' .. cjson.encode(jid)
      .. (s.tail or (',"q":' .. qjson .. ',"t":' .. QE.nows .. ',"state":"')) .. state .. '"}')
  end
  return state
end

-- announce(queue, wake): register the queue and wake its idle workers. A non-empty wake list
-- means an earlier put registered the queue already (queue.forget empties the list), so
-- the registry write is skipped then.
local function announce(queue, wake)
  if wake then
    local key = QE.kq(queue, 'wake')
    local n = redis.call('LPUSH', key, '1')
    if n > 128 then redis.call('LTRIM', key, 0, 63) end
    if n > 1 then return end
  end
  QE.register_queue(queue)
end

-- plain_put(worker, queue, args) -> jid | nil: the common put (a new job, no delay, tags,
-- dependencies, throttles, backoff or unique flag) with the same checks and effects as the
-- general path, in fewer steps; nil when the put is not that plain (the caller goes on).
function QE.plain_put(worker, queue, a)
  if a[10] ~= '[]' or a[12] ~= '[]' or (a[13] ~= '0' and a[13] ~= '') or a[14] ~= '[]'
      or (a[16] ~= '' and a[16] ~= nil) or (a[8] ~= '0' and a[8] ~= '0.0') or (#a ~= 16 and #a ~= 17) then
    return nil
  end
  local trace = QE.trace_arg(a[17])
  local jid = QE.name(a[5], 'jid')
  local klass = a[6]
  if klass == nil or klass == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
  local data = a[7]
  QE.json(data, 'data')
  QE.integer(a[9], 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
  QE.integer(a[11], 'retries', 0, 1000000000)
  local r = a[15]
  local inbox = nil
  if r ~= '0' and r ~= '1' then
    if r == nil or r == '' or r == 'true' or r == 'false' then return nil end
    inbox = QE.name(r, 'reply')
  end
  local key = QE.kj(jid)
  if redis.call('EXISTS', key) == 1 then return nil end   -- a move: the general path
  QE.check_bounds(queue, {{jid = jid, data = data}})
  local qjson = cjson.encode(queue)
  local f = {'jid', jid, 'klass', klass, 'data', data, 'priority', a[9], 'state', 'waiting', 'queue', queue,
    'retries', a[11], 'remaining', a[11], 'time', QE.nows,
    'history', '{"when":' .. QE.nows .. ',"what":"put","queue":' .. qjson .. '}'}
  if r ~= '0' then f[#f + 1] = 'reply'; f[#f + 1] = '1' end
  if inbox then f[#f + 1] = 'inbox'; f[#f + 1] = inbox end
  if trace then f[#f + 1] = 'trace'; f[#f + 1] = trace end
  redis.call('ZADD', QE.kq(queue, 'work'), QE.score(tonumber(a[9]), QE.next_seq()), jid)
  redis.call('HSET', key, unpack(f))
  redis.call('ZADD', QE.kidx(queue), 0, klass .. '\0' .. jid)
  redis.call(QE.spub(), QE.k('events'), '{"e":"put","jid":' .. cjson.encode(jid) .. ',"q":' .. qjson
    .. ',"t":' .. QE.nows .. ',"state":"waiting"}')
  announce(queue, true)
  return jid
end

-- put(worker, queue, jid, klass, data, delay, priority, tags, retries, depends, unique,
--     throttles, reply, backoff[, trace]) -> jid. reply: 0, 1, or the name of the putting
--     client's reply inbox (see queueengine/store/replies.py).
function QE.cmd_put(args, requeue)
  local worker = args[3] or ''
  local queue = QE.name(args[4], 'queue')
  if not requeue then
    local jid = QE.plain_put(worker, queue, args)
    if jid then return jid end
  end
  local s = QE.parse_put(queue, args, 5, {})
  if #args > 17 then QE.raise('InvalidArgument', 'expected 14 put arguments and an optional trace') end
  s.trace = QE.trace_arg(args[17])
  QE.lookup_put(s, requeue)
  QE.check_bounds(queue, {s})
  local state = QE.do_put(worker, s, nil)
  announce(queue, state ~= 'depends')
  return s.jid
end

-- flush_puts(queue, work, idx): add a batch's pending work-set entries (jid -> score) and class
-- index entries to the queue's keys (in chunks).
local function flush_puts(queue, work, idx)
  QE.chunked('ZADD', QE.kq(queue, 'work'), work, 2)
  QE.chunked('ZADD', QE.kidx(queue), idx, 2)
end

-- count_taken(keys, n) -> how many of the n job keys exist already (one EXISTS per 1,000).
local function count_taken(keys, n)
  local taken = 0
  for i = 1, n, 1000 do taken = taken + redis.call('EXISTS', unpack(keys, i, math.min(i + 999, n))) end
  return taken
end

-- put_texts(queue) -> qjson, hist, tail: the JSON pieces every job of a batch into queue shares.
local function put_texts(queue)
  local qjson = cjson.encode(queue)
  return qjson, '{"when":' .. QE.nows .. ',"what":"put","queue":' .. qjson .. '}',
    ',"q":' .. qjson .. ',"t":' .. QE.nows .. ',"state":"'
end

-- put_each(worker, queue, n, spec_at) -> JSON list of jids: writes the n checked jobs
-- spec_at(1..n) (a jid given twice in one batch: the later put moves the earlier one), then one
-- flush of the work set and class index and one wake-up.
local function put_each(worker, queue, n, spec_at)
  local jids, done, work, idx = {}, {}, {}, {}
  local wake = false
  for i = 1, n do
    local s = spec_at(i)
    if done[s.jid] then
      flush_puts(queue, work, idx); work, idx = {}, {}
      s.old = QE.job(s.jid)
    end
    done[s.jid] = true
    if QE.do_put(worker, s, work, idx) ~= 'depends' then wake = true end
    jids[i] = s.jid
  end
  flush_puts(queue, work, idx)
  announce(queue, wake)
  return QE.list_json(jids)
end

-- put_many(worker, queue, n, <12 put fields> * n[, trace]) -> JSON list of jids. All jobs are
-- validated before the first write: one bad job rejects the batch. One EXISTS tells whether
-- any jid is taken already (then each is looked up); the work set gets one ZADD.
function QE.cmd_put_many(args)
  local worker = args[3] or ''
  local queue = QE.name(args[4], 'queue')
  local n = QE.integer(args[5], 'count', 0, 100000)
  local extra = #args - (5 + n * QE.PUT_FIELDS)
  if extra ~= 0 and extra ~= 1 then
    QE.raise('InvalidArgument', 'expected ' .. n .. ' jobs of ' .. QE.PUT_FIELDS .. ' fields (and an optional trace)')
  end
  if n == 0 then return '[]' end
  local trace = extra == 1 and QE.trace_arg(args[#args]) or nil
  local specs, seen, keys = {}, {}, {}
  for i = 1, n do
    specs[i] = QE.parse_put(queue, args, 6 + (i - 1) * QE.PUT_FIELDS, seen)
    specs[i].trace = trace
    keys[i] = QE.kj(specs[i].jid)
  end
  if count_taken(keys, n) > 0 then
    for i = 1, n do QE.lookup_put(specs[i], false) end
  end
  QE.check_bounds(queue, specs)
  local qjson, hist, tail = put_texts(queue)
  local seq = QE.next_seq(n) - n
  return put_each(worker, queue, n, function(i)
    local s = specs[i]
    s.seq, s.qjson, s.hist, s.tail = seq + i, qjson, hist, tail
    return s
  end)
end

-- put_batch(worker, queue, n, klass, delay, priority, tags, retries, depends, unique,
--   throttles, reply, backoff, (jid, data) * n[, trace]) -> JSON list of jids: put_many for n jobs that
--   share every option (the usual batch): the options are checked once, each job sends only its
--   jid and data. All jobs are checked before the first write.
function QE.cmd_put_batch(args)
  local worker = args[3] or ''
  local queue = QE.name(args[4], 'queue')
  local n = QE.integer(args[5], 'count', 0, 100000)
  local extra = #args - (15 + 2 * n)
  if extra ~= 0 and extra ~= 1 then
    QE.raise('InvalidArgument', 'expected 10 shared options, then ' .. n .. ' (jid, data) pairs (and an optional trace)')
  end
  if n == 0 then return '[]' end
  local base = QE.parse_put(queue, {args[16], args[6], args[17], args[7], args[8], args[9], args[10],
    args[11], args[12], args[13], args[14], args[15]}, 1, {})
  base.trace = extra == 1 and QE.trace_arg(args[#args]) or nil
  local items, keys, seen = {}, {}, {}
  for i = 1, n do
    local jid = QE.name(args[14 + 2 * i], 'jid')
    local data = args[15 + 2 * i]
    QE.json(data, 'data')
    if seen[jid] and base.unique then QE.raise('DuplicateJob', 'job ' .. jid .. ' already exists') end
    seen[jid] = true
    for _, d in ipairs(base.depends) do
      if d == jid then QE.raise('InvalidArgument', 'depends: a job cannot depend on itself') end
    end
    items[i] = {jid = jid, data = data}
    keys[i] = QE.kj(jid)
  end
  if count_taken(keys, n) > 0 then
    for _, item in ipairs(items) do
      item.old = QE.job(item.jid)
      if item.old ~= nil and base.unique then QE.raise('DuplicateJob', 'job ' .. item.jid .. ' already exists') end
    end
  end
  QE.check_bounds(queue, items)
  base.qjson, base.hist, base.tail = put_texts(queue)
  local seq = QE.next_seq(n) - n
  return put_each(worker, queue, n, function(i)
    local item = items[i]
    base.jid, base.data, base.old, base.seq = item.jid, item.data, item.old, seq + i
    return base
  end)
end

-- pause(queue...) / unpause(queue...) -> 'OK'
function QE.cmd_pause(queues, paused)
  for _, q in ipairs(queues) do QE.name(q, 'queue') end
  for _, q in ipairs(queues) do
    if paused then
      redis.call('SADD', QE.k('paused'), q)
      redis.call('SADD', QE.k('byclass'), q)   -- its unpause leaves a wake token: see announce
    elseif redis.call('SREM', QE.k('paused'), q) == 1 then
      QE.wake(q)   -- idle workers blocked on it may pop again
    end
    QE.event(paused and 'paused' or 'unpaused', nil, q)
  end
  return 'OK'
end

-- length(queue) -> integer: leased + waiting + scheduled + throttled jobs
function QE.cmd_length(queue)
  QE.name(queue, 'queue')
  return redis.call('ZCARD', QE.kq(queue, 'locks')) + redis.call('ZCARD', QE.kq(queue, 'work'))
    + redis.call('ZCARD', QE.kq(queue, 'scheduled')) + redis.call('ZCARD', QE.kq(queue, 'throttled'))
end

-- jobs('complete', offset, count) -> JSON jids, newest first
-- jobs(state, queue, offset, count) -> JSON jids; state in running, stalled, waiting,
--   scheduled, depends, recurring, throttled. running/stalled split the leases at now.
function QE.cmd_jobs(state, a, b, c)
  if state == 'complete' then
    local offset = QE.integer(a ~= '' and a or 0, 'offset', 0)
    local count = QE.integer(b ~= '' and b or 25, 'count', 0)
    if count == 0 then return '[]' end
    return QE.list_json(redis.call('ZREVRANGE', QE.k('completed'), offset, offset + count - 1))
  end
  local queue = a
  local offset = QE.integer(b ~= '' and b or 0, 'offset', 0)
  local count = QE.integer(c ~= '' and c or 25, 'count', 0)
  local sub = ({waiting = 'work', scheduled = 'scheduled', depends = 'depends',
    recurring = 'recur', throttled = 'throttled'})[state]
  if sub == nil and state ~= 'running' and state ~= 'stalled' then
    QE.raise('InvalidArgument', 'state must be one of complete, running, stalled, waiting, '
      .. 'scheduled, depends, recurring, throttled; got ' .. tostring(state))
  end
  QE.name(queue, 'queue')
  if count == 0 then return '[]' end
  local now = QE.nows
  if state == 'running' then
    return QE.list_json(redis.call('ZRANGEBYSCORE', QE.kq(queue, 'locks'), '(' .. now, '+inf',
      'LIMIT', offset, count))
  elseif state == 'stalled' then
    return QE.list_json(redis.call('ZRANGEBYSCORE', QE.kq(queue, 'locks'), '-inf', now,
      'LIMIT', offset, count))
  end
  return QE.list_json(redis.call('ZRANGE', QE.kq(queue, sub), offset, offset + count - 1))
end

-- counts(queue) -> table {name, waiting, running, stalled, scheduled, depends, recurring,
--   throttled, paused}
function QE.counts(queue)
  local locks = QE.kq(queue, 'locks')
  local total = redis.call('ZCARD', locks)
  local stalled = redis.call('ZCOUNT', locks, '-inf', QE.nows)
  return {
    name = queue,
    waiting = redis.call('ZCARD', QE.kq(queue, 'work')),
    running = total - stalled,
    stalled = stalled,
    scheduled = redis.call('ZCARD', QE.kq(queue, 'scheduled')),
    depends = redis.call('ZCARD', QE.kq(queue, 'depends')),
    recurring = redis.call('ZCARD', QE.kq(queue, 'recur')),
    throttled = redis.call('ZCARD', QE.kq(queue, 'throttled')),
    paused = redis.call('SISMEMBER', QE.k('paused'), queue) == 1,
  }
end

-- queues([queue]) -> JSON counts object for one queue, or a list for every known queue
-- (ordered by first use). Read-only: no promotion happens here.
function QE.cmd_queues(queue)
  if queue ~= nil and queue ~= '' then
    QE.name(queue, 'queue')
    return cjson.encode(QE.counts(queue))
  end
  local out = {}
  for i, q in ipairs(redis.call('ZRANGE', QE.k('queues'), 0, -1)) do out[i] = cjson.encode(QE.counts(q)) end
  return '[' .. table.concat(out, ',') .. ']'
end

-- failed() -> {group: count}; failed(group, start, limit) -> {total, jobs:[jid]} newest first
function QE.cmd_failed(group, start, limit)
  if group == nil or group == '' then
    local out = {}
    for _, g in ipairs(redis.call('SMEMBERS', QE.k('failures'))) do
      out[#out + 1] = cjson.encode(g) .. ':' .. redis.call('LLEN', QE.kf(g))
    end
    return '{' .. table.concat(out, ',') .. '}'
  end
  QE.name(group, 'group')
  start = QE.integer(start ~= '' and start or 0, 'start', 0)
  limit = QE.integer(limit ~= '' and limit or 25, 'limit', 0)
  local jobs = {}
  if limit > 0 then jobs = redis.call('LRANGE', QE.kf(group), start, start + limit - 1) end
  return '{"total":' .. redis.call('LLEN', QE.kf(group)) .. ',"jobs":' .. QE.list_json(jobs) .. '}'
end

-- unfail(queue, group, count) -> number of the group's oldest failed jobs put back to waiting
-- in queue (retries reset; failure lists and the failed counter updated).
function QE.cmd_unfail(queue, group, count)
  QE.name(queue, 'queue'); QE.name(group, 'group')
  count = QE.integer(count ~= '' and count or 25, 'count', 0, 100000)
  if count == 0 then return 0 end
  local jids = redis.call('LRANGE', QE.kf(group), -count, -1)
  local moved = 0
  for i = #jids, 1, -1 do
    local jid = jids[i]
    local j = QE.job(jid)
    if j ~= nil and j.state == 'failed' then
      QE.unindex_failure(jid, j)
      QE.unplace(jid, j)
      QE.index_move(jid, j.queue, j.klass, queue, j.klass)
      redis.call('ZADD', QE.kq(queue, 'work'), QE.score(tonumber(j.priority) or 0, QE.next_seq()), jid)
      redis.call('HSET', QE.kj(jid), 'state', 'waiting', 'queue', queue, 'worker', '', 'expires', 0,
        'remaining', j.retries, 'time', QE.nows, 'exhausted', '')
      QE.history(jid, 'put', {queue = queue})
      QE.event('put', jid, queue, {state = 'waiting', unfail = true})
      moved = moved + 1
    else
      redis.call('LREM', QE.kf(group), 0, jid)
    end
  end
  if redis.call('LLEN', QE.kf(group)) == 0 then redis.call('SREM', QE.k('failures'), group) end
  if moved > 0 then QE.register_queue(queue); QE.wake(queue) end
  return moved
end

-- queue.forget(queue...) -> 'OK': drop queues from the registry
function QE.cmd_forget(queues)
  for _, q in ipairs(queues) do QE.name(q, 'queue') end
  for _, q in ipairs(queues) do
    redis.call('ZREM', QE.k('queues'), q)
    redis.call('DEL', QE.kq(q, 'wake'))   -- the next put registers the queue again (see announce)
  end
  return 'OK'
end
