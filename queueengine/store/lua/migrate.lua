-- queueengine Lua library, part 7: importing another system's keyspace (queueengine.migrate).
--
-- The Python side reads the source (a Qless keyspace) and sends normalised items here in
-- chunks; each item is checked and written atomically with every index the engine keeps
-- (queue sets, leases, worker lists, failure lists, completed/failed sets, tag index and
-- counters, tracked set, dependency sets and the dents flag, history layout), so an imported
-- job is indistinguishable from one the engine made. An item whose record exists already is
-- left alone ("exists"): importing twice adds nothing. A bad item changes nothing and is
-- reported ("invalid: <why>"); the other items of the chunk still go in.

local IMPORT_LIMIT = 1000          -- most items one call takes (each call stays short)
local STATES = {waiting = true, scheduled = true, depends = true, running = true, failed = true,
  complete = true}

local function is_list(t)
  if type(t) ~= 'table' then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- names_of(v, what): a list of valid names (cjson turns an empty list into an empty object).
local function names_of(v, what)
  if v == nil then return {} end
  if not is_list(v) then QE.raise('InvalidArgument', what .. ' must be a list') end
  local out, seen = {}, {}
  for _, s in ipairs(v) do
    QE.name(s, what)
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  return out
end

local function time_of(v, what)
  if v == nil or v == cjson.null then return nil end
  return QE.number(v, what)
end

-- history_texts(list) -> JSON texts of {when, what, ...} entries
local function history_texts(list)
  if list == nil then return {} end
  if not is_list(list) then QE.raise('InvalidArgument', 'history must be a list') end
  local out = {}
  for i, e in ipairs(list) do
    if type(e) ~= 'table' or type(e.what) ~= 'string' or tonumber(e.when) == nil then
      QE.raise('InvalidArgument', 'history entry ' .. i .. ' needs a number when and a string what')
    end
    out[i] = cjson.encode(e)
  end
  return out
end

-- check_record(s): validate one job item's record fields (no reads, no writes).
local function check_record(s)
  if type(s) ~= 'table' then QE.raise('InvalidArgument', 'a job item must be an object') end
  QE.name(s.jid, 'jid')
  if type(s.klass) ~= 'string' or s.klass == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
  if type(s.data) ~= 'string' then QE.raise('InvalidArgument', 'data must be a JSON text') end
  QE.json(s.data, 'data')
  s.priority = QE.integer(s.priority or 0, 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
  s.retries = QE.integer(s.retries or 0, 'retries', 0, 1000000000)
  s.remaining = QE.integer(s.remaining or s.retries, 'remaining', -1, 1000000000)
  if not STATES[s.state] then QE.raise('InvalidArgument', 'state ' .. tostring(s.state) .. ' cannot be imported') end
  if s.state == 'complete' and (s.queue == nil or s.queue == '') then s.queue = '' else QE.name(s.queue, 'queue') end
  s.tags = names_of(s.tags, 'tag')
  s.dependencies = names_of(s.dependencies, 'dependency')
  s.dependents = names_of(s.dependents, 'dependent')
  s.time = QE.number(s.time or QE.now, 'time')
  s.history = history_texts(s.history)
  s.tracked = time_of(s.tracked, 'tracked')
  return s
end

-- check_placement(s): the state's own fields (lease, due time, failure, template link).
local function check_placement(s)
  if s.state == 'running' then
    QE.name(s.worker, 'worker')
    s.expires = QE.number(s.expires, 'expires')
    s.seen = time_of(s.seen, 'seen') or QE.now
  else
    s.worker = ''
  end
  if s.state == 'scheduled' then s.at = QE.number(s.at, 'at') end
  if s.state == 'depends' or s.state == 'complete' then s.at = time_of(s.at, 'at') or QE.now end
  if s.state == 'depends' then s.scheduled = time_of(s.scheduled, 'scheduled') else s.scheduled = nil end
  if s.state == 'failed' then
    local f = s.failure
    if type(f) ~= 'table' then QE.raise('InvalidArgument', 'a failed job needs its failure') end
    QE.name(f.group, 'failure group')
    f.when = QE.number(f.when or QE.now, 'failure when')
    if f.message == nil then f.message = '' end
    f.queue = s.queue
  end
  if s.spawned_from_jid ~= nil and s.spawned_from_jid ~= cjson.null then
    QE.name(s.spawned_from_jid, 'spawned_from_jid')
  else
    s.spawned_from_jid = nil
  end
  if type(s.tag_times) ~= 'table' then s.tag_times = {} end
end

-- write_history(jid, texts): the first entry in the record (returned), the rest in the list,
-- capped as QE.history_raw caps it (the newest max-job-history - 1 after the first).
local function write_history(jid, texts)
  if #texts == 0 then return nil end
  local rest = {}
  for i = 2, #texts do rest[#rest + 1] = texts[i] end
  local cap = QE.confnum('max-job-history', 100)
  if cap > 0 and #rest > cap - 1 then
    local keep = {}
    for i = #rest - (cap - 1) + 1, #rest do keep[#keep + 1] = rest[i] end
    rest = keep
  end
  if #rest > 0 then QE.chunked('RPUSH', QE.kjh(jid), rest, 1) end
  return texts[1]
end

-- place(s): put a written job where its state says (queue sets, leases, failure lists, ...).
local function place(s, ctx)
  local jid, q = s.jid, s.queue
  if s.state == 'waiting' then
    redis.call('ZADD', QE.kq(q, 'work'), QE.score(s.priority, QE.next_seq()), jid)
    ctx.wake[q] = true
  elseif s.state == 'scheduled' then
    redis.call('ZADD', QE.kq(q, 'scheduled'), QE.fnum(s.at), jid)
    ctx.wake[q] = true
  elseif s.state == 'depends' then
    redis.call('ZADD', QE.kq(q, 'depends'), QE.fnum(s.at), jid)
  elseif s.state == 'running' then
    local e = QE.fnum(s.expires)
    redis.call('ZADD', QE.kq(q, 'locks'), e, jid)
    redis.call('ZADD', QE.kw(s.worker), e, jid)
    redis.call('ZADD', QE.k('workers'), 'GT', QE.fnum(s.seen), s.worker)
    ctx.wake[q] = true
  elseif s.state == 'failed' then
    local g = s.failure.group
    redis.call('SADD', QE.k('failures'), g)
    redis.call('LPUSH', QE.kf(g), jid)
    redis.call('ZADD', QE.k('failed'), QE.fnum(s.failure.when), jid)
  else
    redis.call('ZADD', QE.k('completed'), QE.fnum(s.at), jid)
  end
  if q ~= '' then QE.register_queue(q) end
end

-- link_imported(jid, s): the other end of each edge, when that job is in the namespace already
-- (imported earlier, perhaps before the source gained the edge: a live Qless): a dependency
-- not complete lists the job among its dependents, a dependent still in depends waits on it.
local function link_imported(jid, s)
  for _, d in ipairs(s.dependencies) do
    local st = redis.call('HGET', QE.kj(d), 'state')
    if st and st ~= 'complete' then
      redis.call('SADD', QE.kjdents(d), jid)
      redis.call('HSET', QE.kj(d), 'dents', '1')
    end
  end
  if s.state == 'complete' then return end
  for _, d in ipairs(s.dependents) do
    if redis.call('HGET', QE.kj(d), 'state') == 'depends' then redis.call('SADD', QE.kjdeps(d), jid) end
  end
end

-- write_job(s): the record, its history, indexes and placement (s checked by check_record).
local function write_job(s, ctx)
  local jid = s.jid
  local f = {'jid', jid, 'klass', s.klass, 'data', s.data, 'priority', s.priority, 'state', s.state,
    'queue', s.queue, 'worker', s.worker, 'expires', s.state == 'running' and QE.fnum(s.expires) or '0',
    'retries', s.retries, 'remaining', s.remaining, 'time', QE.fnum(s.time),
    'tags', QE.list_json(s.tags)}
  if s.state == 'failed' then f[#f + 1] = 'failure'; f[#f + 1] = cjson.encode(s.failure) end
  if s.spawned_from_jid then f[#f + 1] = 'spawned_from_jid'; f[#f + 1] = s.spawned_from_jid end
  if s.state == 'running' and (s.grace or s.timedout) then f[#f + 1] = 'grace'; f[#f + 1] = '1' end
  if s.state == 'running' and s.timedout then f[#f + 1] = 'timedout'; f[#f + 1] = '1' end
  if #s.dependents > 0 then f[#f + 1] = 'dents'; f[#f + 1] = '1' end
  if s.scheduled then f[#f + 1] = 'scheduled'; f[#f + 1] = QE.fnum(s.scheduled) end   -- delayed once released
  local first = write_history(jid, s.history)
  if first then f[#f + 1] = 'history'; f[#f + 1] = first end
  redis.call('HSET', QE.kj(jid), unpack(f))
  if #s.dependencies > 0 then QE.chunked('SADD', QE.kjdeps(jid), s.dependencies, 1) end
  if #s.dependents > 0 then QE.chunked('SADD', QE.kjdents(jid), s.dependents, 1) end
  link_imported(jid, s)
  for _, t in ipairs(s.tags) do
    local at = tonumber(s.tag_times[t]) or QE.now
    if redis.call('ZADD', QE.kt(t), 'NX', QE.fnum(at), jid) == 1 then
      redis.call('ZINCRBY', QE.k('tags'), 1, t)
    end
  end
  if s.tracked then redis.call('ZADD', QE.k('tracked'), 'NX', QE.fnum(s.tracked), jid) end
  QE.index_add(s.queue, s.klass, jid)
  if s.queue == '' then redis.call('SADD', QE.k('byclass'), '') end   -- else place() registers it
  place(s, ctx)
end

local function import_job(s, dry, ctx)
  s = check_record(s)
  check_placement(s)
  if redis.call('EXISTS', QE.kj(s.jid)) == 1 then return 'exists' end
  if dry then return 'imported' end
  write_job(s, ctx)
  ctx.count[s.queue] = (ctx.count[s.queue] or 0) + 1
  return 'imported'
end

-- import_recurring(r): a recurring template {jid, klass, data, priority, tags, queue,
-- interval, retries, backlog, count, next} (an interval schedule).
local function import_recurring(r, dry, ctx)
  if type(r) ~= 'table' then QE.raise('InvalidArgument', 'a recurring item must be an object') end
  QE.name(r.jid, 'jid'); QE.name(r.queue, 'queue')
  if type(r.klass) ~= 'string' or r.klass == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
  if type(r.data) ~= 'string' then QE.raise('InvalidArgument', 'data must be a JSON text') end
  QE.json(r.data, 'data')
  local priority = QE.integer(r.priority or 0, 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
  local interval = QE.number(r.interval, 'interval', 0)
  if interval <= 0 then QE.raise('InvalidArgument', 'interval must be > 0') end
  local retries = QE.integer(r.retries or 0, 'retries', 0, 1000000000)
  local backlog = QE.integer(r.backlog or 0, 'backlog', 0, 1000000)
  local count = QE.integer(r.count or 0, 'count', 0)
  local nxt = QE.number(r.next, 'next')
  local tags = names_of(r.tags, 'tag')
  if redis.call('EXISTS', QE.kr(r.jid)) == 1 then return 'exists' end
  if redis.call('EXISTS', QE.kj(r.jid)) == 1 then
    QE.raise('DuplicateJob', 'jid ' .. r.jid .. ' is a job already; a recurring template needs a jid of its own')
  end
  if dry then return 'imported' end
  redis.call('HSET', QE.kr(r.jid), 'jid', r.jid, 'klass', r.klass, 'data', r.data, 'priority', priority,
    'tags', QE.list_json(tags), 'state', 'recur', 'queue', r.queue, 'type', 'interval',
    'interval', QE.fnum(interval), 'cron', '', 'retries', retries, 'backlog', backlog, 'count', count,
    'throttles', '[]', 'backoff', '')
  redis.call('ZADD', QE.kq(r.queue, 'recur'), QE.fnum(nxt), r.jid)
  QE.register_queue(r.queue)
  ctx.wake[r.queue] = true
  ctx.count[r.queue] = (ctx.count[r.queue] or 0) + 1
  return 'imported'
end

-- import_queue(q): {name, seen, paused}: the queue registry entry (first-seen time kept) and
-- the paused flag.
local function import_queue(q, dry)
  if type(q) ~= 'table' then QE.raise('InvalidArgument', 'a queue item must be an object') end
  QE.name(q.name, 'queue')
  local seen = time_of(q.seen, 'seen') or QE.now
  if dry then
    local known = redis.call('ZSCORE', QE.k('queues'), q.name)
    local paused = q.paused ~= true or redis.call('SISMEMBER', QE.k('paused'), q.name) == 1
    return (known and paused) and 'exists' or 'imported'
  end
  local added = redis.call('ZADD', QE.k('queues'), 'NX', QE.fnum(seen), q.name)
  if q.paused == true then added = added + redis.call('SADD', QE.k('paused'), q.name) end
  return added > 0 and 'imported' or 'exists'
end

-- import_config(c): {name, value}: set only when the namespace has no value of its own.
local function import_config(c, dry)
  if type(c) ~= 'table' then QE.raise('InvalidArgument', 'a config item must be an object') end
  QE.name(c.name, 'option')
  if type(c.value) ~= 'string' then QE.raise('InvalidArgument', 'value must be a string') end
  if dry then return redis.call('HEXISTS', QE.k('config'), c.name) == 1 and 'exists' or 'imported' end
  local n = redis.call('HSETNX', QE.k('config'), c.name, c.value)
  QE._cfg = nil
  return n == 1 and 'imported' or 'exists'
end

local STAT_KINDS = {wait = true, run = true, stats = true}

-- import_stats(s): {kind (wait|run|stats), day, queue, fields {name: number}}: one per-day
-- stats hash, written only when the namespace has none for that day and queue; it expires
-- as the engine's own stats do (stats-history days after the day).
local function import_stats(s, dry)
  if type(s) ~= 'table' or not STAT_KINDS[s.kind] then
    QE.raise('InvalidArgument', 'a stats item needs kind wait, run or stats')
  end
  local day = QE.integer(s.day, 'day', 0)
  QE.name(s.queue, 'queue')
  if type(s.fields) ~= 'table' then QE.raise('InvalidArgument', 'fields must be an object') end
  local args = {}
  for k, v in pairs(s.fields) do
    if type(k) ~= 'string' or not string.match(k, '^[%w]+$') then
      QE.raise('InvalidArgument', 'bad stats field ' .. tostring(k))
    end
    args[#args + 1] = k
    args[#args + 1] = QE.fnum(QE.number(v, 'stats field ' .. k))
  end
  local key = QE.k('s:' .. s.kind .. ':' .. day .. ':' .. s.queue)
  if redis.call('EXISTS', key) == 1 then return 'exists' end
  local days = QE.confnum('stats-history', 30)
  local until_ = nil
  if days > 0 then
    until_ = math.floor(day + days * 86400 + 86400)
    if until_ <= QE.now then return 'invalid: older than stats-history' end
  end
  if #args == 0 then return 'invalid: no fields' end
  if dry then return 'imported' end
  QE.chunked('HSET', key, args, 2)
  if until_ then redis.call('EXPIRE', key, math.ceil(until_ - QE.now)) end   -- relative: the clock is QE.now
  return 'imported'
end

local IMPORTERS = {job = import_job, recurring = import_recurring, queue = import_queue,
  config = import_config, stats = import_stats}

-- import(kind, dry (0|1), item_json...) -> JSON list, per item: "imported", "exists" or "invalid: <why>".
-- kind: job | recurring | queue | config | stats (item shapes at each importer above).
-- dry = 1: check only (the same replies, nothing written). At most 1000 items per call.
-- Waiting jobs enter the work set in the order given (behind the namespace's own waiting jobs
-- of the same priority). Event "imported" {kind, count}, one per queue written to.
function QE.cmd_import(kind, dry, items)
  dry = QE.flag(dry, 'dry')
  local importer = IMPORTERS[kind]
  if importer == nil then
    QE.raise('InvalidArgument', 'kind must be job, recurring, queue, config or stats, got ' .. tostring(kind))
  end
  if #items > IMPORT_LIMIT then
    QE.raise('InvalidArgument', 'at most ' .. IMPORT_LIMIT .. ' items per call, got ' .. #items)
  end
  local out, ctx, imported = {}, {wake = {}, count = {}}, 0
  for i, raw in ipairs(items) do
    local ok, item = pcall(cjson.decode, raw)
    if not ok then
      out[i] = 'invalid: not JSON'
    else
      local done, result = pcall(importer, item, dry, ctx)
      if done then
        out[i] = result
        if result == 'imported' then imported = imported + 1 end
      else
        out[i] = 'invalid: ' .. (string.match(tostring(result), 'QE:%w+: [^:]*: (.*)$') or tostring(result))
      end
    end
  end
  for q in pairs(ctx.wake) do QE.wake(q) end
  if not dry and imported > 0 then   -- one event per queue and call (the dashboard refreshes)
    if next(ctx.count) == nil then ctx.count[''] = imported end
    for q, n in pairs(ctx.count) do QE.event('imported', nil, q, {kind = kind, count = n}) end
  end
  return QE.list_json(out)
end
