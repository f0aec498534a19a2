-- queueengine Lua library, part 9: read-only views for dashboards and operators.
--
-- Each command answers one page of the dashboard in one call: lists are paginated, payloads
-- are cut to a preview, and nothing loops over a whole set (every loop is bounded by a page
-- size or a scan cap given by the caller). No command here writes anything.
--
-- Job summary (the row shape of every list):
--   {jid, klass, queue, state, worker, priority, tags, time, expires, scheduled, due_at, retries,
--    remaining, data (a preview: at most `trunc` bytes of the JSON text), data_size,
--    failure: {group, message (cut to 300 bytes), when} | null, missing (true: indexed but
--    the record is gone)}

local SCAN_CAP_LIMIT = 20000          -- most index entries one filtered view may look at
local PAGE_LIMIT = 500                -- most rows in one page

local function cut(s, n)
  if s == nil then return '' end
  if #s <= n then return s end
  return string.sub(s, 1, n)
end

local function failure_summary(raw)
  if raw == nil or raw == '' then return 'null' end
  local ok, f = pcall(cjson.decode, raw)
  if not ok or type(f) ~= 'table' then return 'null' end
  return cjson.encode({group = f.group or '', message = cut(f.message or '', 300), when = f.when or 0,
    queue = f.queue or ''})
end

-- summary(jid, trunc) -> job summary JSON string
function QE.view_summary(jid, trunc)
  local h = redis.call('HMGET', QE.kj(jid), 'klass', 'queue', 'state', 'worker', 'priority', 'tags',
    'time', 'expires', 'scheduled', 'retries', 'remaining', 'data', 'failure')
  if h[3] == false then
    return '{"jid":' .. cjson.encode(jid) .. ',"missing":true}'
  end
  local j = {state = h[3], expires = h[8], queue = h[2]}
  local data = h[12] or ''
  local due = QE.due_at(jid, j)
  return '{"jid":' .. cjson.encode(jid)
    .. ',"klass":' .. cjson.encode(h[1] or '')
    .. ',"queue":' .. cjson.encode(h[2] or '')
    .. ',"state":' .. cjson.encode(QE.state_of(j))
    .. ',"worker":' .. cjson.encode(h[4] or '')
    .. ',"priority":' .. (tonumber(h[5]) or 0)
    .. ',"tags":' .. ((h[6] and h[6] ~= '') and h[6] or '[]')
    .. ',"time":' .. QE.fnum(tonumber(h[7]) or 0)
    .. ',"expires":' .. QE.fnum(tonumber(h[8]) or 0)
    .. ',"scheduled":' .. (tonumber(h[9]) and QE.fnum(tonumber(h[9])) or 'null')
    .. ',"due_at":' .. (due and QE.fnum(due) or 'null')
    .. ',"retries":' .. (tonumber(h[10]) or 0)
    .. ',"remaining":' .. (tonumber(h[11]) or 0)
    .. ',"data":' .. cjson.encode(cut(data, trunc))
    .. ',"data_size":' .. #data
    .. ',"failure":' .. failure_summary(h[13])
    .. ',"missing":false}'
end

-- recurring_summary(jid) -> {jid, klass, queue, priority, type, interval, cron, count, tags,
--   backlog, next, data (preview)}
local function recurring_summary(jid, trunc)
  local r = QE.hgetall(QE.kr(jid))
  if r == nil then return '{"jid":' .. cjson.encode(jid) .. ',"missing":true}' end
  local nxt = redis.call('ZSCORE', QE.kq(r.queue, 'recur'), jid)
  return '{"jid":' .. cjson.encode(jid) .. ',"klass":' .. cjson.encode(r.klass or '')
    .. ',"queue":' .. cjson.encode(r.queue or '') .. ',"priority":' .. (tonumber(r.priority) or 0)
    .. ',"type":' .. cjson.encode(r.type or '') .. ',"interval":' .. (tonumber(r.interval) or 'null')
    .. ',"cron":' .. ((r.cron and r.cron ~= '') and cjson.encode(r.cron) or 'null')
    .. ',"count":' .. (tonumber(r.count) or 0) .. ',"tags":' .. ((r.tags and r.tags ~= '') and r.tags or '[]')
    .. ',"backlog":' .. (tonumber(r.backlog) or 0)
    .. ',"next":' .. (nxt and QE.fnum(tonumber(nxt)) or 'null')
    .. ',"data":' .. cjson.encode(cut(r.data or '', trunc)) .. ',"missing":false}'
end

-- index(kind, name) -> {key, total, fetch(offset, n) -> jids}: the set behind a list view.
local function index(kind, name)
  local now = QE.fnum(QE.now)
  local queue_sets = {waiting = 'work', scheduled = 'scheduled', depends = 'depends',
    recurring = 'recur', throttled = 'throttled'}
  if queue_sets[kind] then
    QE.existing_name(name, 'queue')
    local key = QE.kq(name, queue_sets[kind])
    return redis.call('ZCARD', key), function(o, n) return redis.call('ZRANGE', key, o, o + n - 1) end
  elseif kind == 'running' or kind == 'stalled' then
    QE.existing_name(name, 'queue')
    local key = QE.kq(name, 'locks')
    local lo, hi = '(' .. now, '+inf'
    if kind == 'stalled' then lo, hi = '-inf', now end
    return redis.call('ZCOUNT', key, lo, hi),
      function(o, n) return redis.call('ZRANGEBYSCORE', key, lo, hi, 'LIMIT', o, n) end
  elseif kind == 'complete' or kind == 'tracked' then
    local key = QE.k(kind == 'complete' and 'completed' or 'tracked')
    return redis.call('ZCARD', key), function(o, n) return redis.call('ZREVRANGE', key, o, o + n - 1) end
  elseif kind == 'failed' then
    if name == nil or name == '' then
      local key = QE.k('failed')
      return redis.call('ZCARD', key), function(o, n) return redis.call('ZREVRANGE', key, o, o + n - 1) end
    end
    QE.existing_name(name, 'group')
    local key = QE.kf(name)
    return redis.call('LLEN', key), function(o, n) return redis.call('LRANGE', key, o, o + n - 1) end
  elseif kind == 'tagged' then
    QE.existing_name(name, 'tag')
    local key = QE.kt(name)
    return redis.call('ZCARD', key), function(o, n) return redis.call('ZREVRANGE', key, o, o + n - 1) end
  elseif kind == 'worker' then
    QE.existing_name(name, 'worker')
    local key = QE.kw(name)
    return redis.call('ZCARD', key), function(o, n) return redis.call('ZRANGE', key, o, o + n - 1) end
  end
  QE.raise('InvalidArgument', 'kind must be one of waiting, running, stalled, scheduled, depends, '
    .. 'recurring, throttled, complete, failed, tagged, tracked, worker; got ' .. tostring(kind))
end

local FILTER_FIELDS = {klass = 2, queue = 3, state = 4, worker = 5}

-- matches(jid, filters) -> bool: every filter holds (klass/queue/state/worker exact, or a
-- prefix when the value ends with '*'; tag: the job carries it).
local function matches(jid, filters)
  local h = redis.call('HMGET', QE.kj(jid), 'jid', 'klass', 'queue', 'state', 'worker', 'expires', 'tags')
  if h[1] == false then return false end
  for field, want in pairs(filters) do
    if field == 'tag' then
      if redis.call('ZSCORE', QE.kt(want), jid) == false then return false end
    else
      local have = h[FILTER_FIELDS[field]] or ''
      if field == 'state' then have = QE.state_of({state = have, expires = h[6]}) end
      if string.sub(want, -1) == '*' then
        local p = string.sub(want, 1, -2)
        if string.sub(have, 1, #p) ~= p then return false end
      elseif have ~= want then
        return false
      end
    end
  end
  return true
end

-- view.jobs(kind, name, offset, count, trunc, filters_json, scan_cap)
--   -> {total, offset, count, jobs:[summary], filtered: bool, scanned, next: offset|null}
-- Without filters: one page of the index (total = the index's size, next = the next page's
-- offset or null). With filters ({klass, queue, state, worker, tag}), looks at no more than
-- scan_cap index entries from offset and returns up to count matches; next is where to go on.
function QE.cmd_view_jobs(kind, name, offset, count, trunc, filters, cap)
  offset = QE.integer(offset ~= '' and offset or 0, 'offset', 0)
  count = QE.integer(count ~= '' and count or 25, 'count', 1, PAGE_LIMIT)
  trunc = QE.integer(trunc ~= '' and trunc or 200, 'trunc', 0, 1048576)
  cap = QE.integer(cap ~= '' and cap or 5000, 'scan_cap', 1, SCAN_CAP_LIMIT)
  local f = {}
  local nfilters = 0
  if filters ~= nil and filters ~= '' then
    local decoded = QE.json(filters, 'filters', 'object')
    for k, v in pairs(decoded) do
      if k ~= 'tag' and FILTER_FIELDS[k] == nil then
        QE.raise('InvalidArgument', 'filters: unknown field ' .. tostring(k)
          .. ' (use klass, queue, state, worker or tag)')
      end
      if type(v) ~= 'string' or v == '' then
        QE.raise('InvalidArgument', 'filters: ' .. k .. ' must be a non-empty string')
      end
      if k == 'tag' then QE.name(v, 'filters.tag') end
      f[k] = v
      nfilters = nfilters + 1
    end
  end
  local total, fetch = index(kind, name)
  local summarize = QE.view_summary
  if kind == 'recurring' then summarize = recurring_summary end
  local rows = {}
  if nfilters == 0 then
    for _, jid in ipairs(fetch(offset, count)) do rows[#rows + 1] = summarize(jid, trunc) end
    local nxt = offset + count
    return '{"total":' .. total .. ',"offset":' .. offset .. ',"count":' .. count
      .. ',"filtered":false,"scanned":' .. #rows .. ',"next":' .. (nxt < total and nxt or 'null')
      .. ',"jobs":[' .. table.concat(rows, ',') .. ']}'
  end
  local pos, scanned = offset, 0
  while #rows < count and scanned < cap and pos < total do
    local step = math.min(200, cap - scanned)
    local batch = fetch(pos, step)
    if #batch == 0 then break end
    for _, jid in ipairs(batch) do
      pos = pos + 1
      scanned = scanned + 1
      if matches(jid, f) then
        rows[#rows + 1] = summarize(jid, trunc)
        if #rows >= count then break end
      end
    end
  end
  return '{"total":' .. total .. ',"offset":' .. offset .. ',"count":' .. count
    .. ',"filtered":true,"scanned":' .. scanned .. ',"next":' .. (pos < total and pos or 'null')
    .. ',"jobs":[' .. table.concat(rows, ',') .. ']}'
end

-- oldest_waiting(queue) -> time the longest-waiting job entered waiting, or nil. Walks the
-- priority bands of the work set (each band is FIFO), at most 32 bands.
local function oldest_waiting(queue)
  local key = QE.kq(queue, 'work')
  local oldest = nil
  local lo = '-inf'
  for _ = 1, 32 do
    local first = redis.call('ZRANGEBYSCORE', key, lo, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #first == 0 then break end
    local t = tonumber(redis.call('HGET', QE.kj(first[1]), 'time'))
    if t and (oldest == nil or t < oldest) then oldest = t end
    local band = math.floor(tonumber(first[2]) / QE.FIFO_SPAN)
    lo = '(' .. QE.fnum((band + 1) * QE.FIFO_SPAN - 1)
  end
  return oldest
end

-- throughput(minutes) -> {queue: {done = [per minute, oldest first], failed = [...]}} for the
-- last `minutes` whole minutes including the current one.
local function throughput(minutes)
  local out = {}
  local now_min = math.floor(QE.now / 60)
  for i = 0, minutes - 1 do
    local m = now_min - (minutes - 1) + i
    for _, kind in ipairs({'done', 'failed'}) do
      local raw = redis.call('HGETALL', QE.k('s:' .. kind .. ':' .. m))
      for k = 1, #raw, 2 do
        local q = raw[k]
        if out[q] == nil then
          out[q] = {done = {}, failed = {}}
          for z = 1, minutes do out[q].done[z] = 0; out[q].failed[z] = 0 end
        end
        out[q][kind][i + 1] = tonumber(raw[k + 1]) or 0
      end
    end
  end
  return out
end

-- view.queues(minutes) -> [{...counts, oldest: time|null, today: {completed, failed, retries},
--   done: [per minute], failed_per_minute: [per minute]}] for every known queue
function QE.cmd_view_queues(minutes)
  minutes = QE.integer(minutes ~= '' and minutes or 60, 'minutes', 1, 180)
  local tput = throughput(minutes)
  local zeros = {}
  for z = 1, minutes do zeros[z] = 0 end
  local day = QE.day(QE.now)
  local out = {}
  for i, q in ipairs(redis.call('ZRANGE', QE.k('queues'), 0, -1)) do
    local c = QE.counts(q)
    c.oldest = oldest_waiting(q) or cjson.null
    local counters = redis.call('HMGET', QE.k('s:stats:' .. day .. ':' .. q), 'failed', 'retries')
    c.today = {
      completed = tonumber(redis.call('HGET', QE.k('s:run:' .. day .. ':' .. q), 'total')) or 0,
      failed = tonumber(counters[1]) or 0,
      retries = tonumber(counters[2]) or 0,
    }
    local t = tput[q]
    c.done = t and t.done or zeros
    c.failed_per_minute = t and t.failed or zeros
    c.max_concurrency = tonumber(QE.config(q .. '-max-concurrency')) or 0
    out[i] = cjson.encode(c)
  end
  return '[' .. table.concat(out, ',') .. ']'
end

-- view.groups(offset, count) -> {total, groups:[{group, count, first_seen, last_seen, message,
--   queue, klass}]} most jobs first. Reads every group's length (one LLEN each) but only the
--   shown page's newest and oldest jobs.
function QE.cmd_view_groups(offset, count)
  offset = QE.integer(offset ~= '' and offset or 0, 'offset', 0)
  count = QE.integer(count ~= '' and count or 25, 'count', 1, PAGE_LIMIT)
  local groups = {}
  for _, g in ipairs(redis.call('SMEMBERS', QE.k('failures'))) do
    local n = redis.call('LLEN', QE.kf(g))
    if n > 0 then groups[#groups + 1] = {g, n} end
  end
  table.sort(groups, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] < b[1]
  end)
  local rows = {}
  for i = offset + 1, math.min(#groups, offset + count) do
    local g, n = groups[i][1], groups[i][2]
    local newest = redis.call('LINDEX', QE.kf(g), 0)
    local oldest = redis.call('LINDEX', QE.kf(g), -1)
    local nf = redis.call('HMGET', QE.kj(newest), 'failure', 'klass')
    local of = redis.call('HGET', QE.kj(oldest), 'failure')
    local last, first, message, queue = 0, 0, '', ''
    local ok, f = pcall(cjson.decode, nf[1] or '')
    if ok and type(f) == 'table' then
      last = f.when or 0; message = cut(f.message or '', 300); queue = f.queue or ''
    end
    ok, f = pcall(cjson.decode, of or '')
    if ok and type(f) == 'table' then first = f.when or 0 end
    rows[#rows + 1] = cjson.encode({group = g, count = n, first_seen = first, last_seen = last,
      message = message, queue = queue, klass = nf[2] or '', sample = newest})
  end
  return '{"total":' .. #groups .. ',"groups":[' .. table.concat(rows, ',') .. ']}'
end

-- view.workers(offset, count, jobs_each) -> {total, workers:[{name, last_seen, info,
--   running, stalled, jobs:[{jid, klass, queue, started, expires}]}]} most recently seen first
function QE.cmd_view_workers(offset, count, jobs_each)
  offset = QE.integer(offset ~= '' and offset or 0, 'offset', 0)
  count = QE.integer(count ~= '' and count or 25, 'count', 1, PAGE_LIMIT)
  jobs_each = QE.integer(jobs_each ~= '' and jobs_each or 10, 'jobs_each', 0, 100)
  local now = QE.fnum(QE.now)
  local all = redis.call('ZREVRANGE', QE.k('workers'), offset, offset + count - 1, 'WITHSCORES')
  local rows = {}
  for i = 1, #all, 2 do
    local name = all[i]
    local key = QE.kw(name)
    local jobs = {}
    for _, jid in ipairs(redis.call('ZRANGE', key, 0, jobs_each - 1)) do
      local h = redis.call('HMGET', QE.kj(jid), 'klass', 'queue', 'time', 'expires')
      jobs[#jobs + 1] = '{"jid":' .. cjson.encode(jid) .. ',"klass":' .. cjson.encode(h[1] or '')
        .. ',"queue":' .. cjson.encode(h[2] or '') .. ',"started":' .. QE.fnum(tonumber(h[3]) or 0)
        .. ',"expires":' .. QE.fnum(tonumber(h[4]) or 0) .. '}'
    end
    rows[#rows + 1] = '{"name":' .. cjson.encode(name) .. ',"last_seen":' .. QE.fnum(tonumber(all[i + 1]))
      .. ',"info":' .. (redis.call('GET', QE.kwinfo(name)) or '{}')
      .. ',"running":' .. redis.call('ZCOUNT', key, '(' .. now, '+inf')
      .. ',"stalled":' .. redis.call('ZCOUNT', key, '-inf', now)
      .. ',"jobs":[' .. table.concat(jobs, ',') .. ']}'
  end
  return '{"total":' .. redis.call('ZCARD', QE.k('workers')) .. ',"workers":[' .. table.concat(rows, ',') .. ']}'
end

-- view.job(jid, related) -> {job: full job | null, recurring: template | null,
--   dependencies: [summary], dependents: [summary]} (at most `related` of each)
function QE.cmd_view_job(jid, related)
  QE.existing_name(jid, 'jid')
  related = QE.integer(related ~= '' and related or 100, 'related', 0, PAGE_LIMIT)
  local j = QE.job(jid)
  if j == nil then
    local r = redis.call('EXISTS', QE.kr(jid)) == 1 and recurring_summary(jid, 1048576) or 'null'
    return '{"job":null,"recurring":' .. r .. ',"dependencies":[],"dependents":[]}'
  end
  local function linked(key)
    local out = {}
    local members = redis.call('SMEMBERS', key)
    table.sort(members)
    for i = 1, math.min(#members, related) do out[i] = QE.view_summary(members[i], 120) end
    return '[' .. table.concat(out, ',') .. ']'
  end
  return '{"job":' .. QE.job_json(j, true) .. ',"recurring":null'
    .. ',"dependencies":' .. linked(QE.kjdeps(jid)) .. ',"dependents":' .. linked(QE.kjdents(jid)) .. '}'
end

-- view.recurring(offset, count) -> {total, jobs:[recurring summary]} across every queue, in
-- queue order then by next spawn time.
function QE.cmd_view_recurring(offset, count)
  offset = QE.integer(offset ~= '' and offset or 0, 'offset', 0)
  count = QE.integer(count ~= '' and count or 25, 'count', 1, PAGE_LIMIT)
  local total, rows, skip = 0, {}, offset
  for _, q in ipairs(redis.call('ZRANGE', QE.k('queues'), 0, -1)) do
    local key = QE.kq(q, 'recur')
    local n = redis.call('ZCARD', key)
    total = total + n
    if #rows < count and skip < n then
      for _, jid in ipairs(redis.call('ZRANGE', key, skip, skip + (count - #rows) - 1)) do
        rows[#rows + 1] = recurring_summary(jid, 200)
      end
      skip = 0
    else
      skip = math.max(0, skip - n)
    end
  end
  return '{"total":' .. total .. ',"jobs":[' .. table.concat(rows, ',') .. ']}'
end

-- view.tracked_states(sample) -> {total, sampled, states: {state: n}} over the most recently
-- tracked `sample` jobs.
function QE.cmd_view_tracked_states(sample)
  sample = QE.integer(sample ~= '' and sample or 500, 'sample', 1, SCAN_CAP_LIMIT)
  local key = QE.k('tracked')
  local states = {}
  local jids = redis.call('ZREVRANGE', key, 0, sample - 1)
  for _, jid in ipairs(jids) do
    local h = redis.call('HMGET', QE.kj(jid), 'state', 'expires')
    local s = h[1] and QE.state_of({state = h[1], expires = h[2]}) or 'gone'
    states[s] = (states[s] or 0) + 1
  end
  local body = cjson.encode(states)
  if body == '[]' or next(states) == nil then body = '{}' end
  return '{"total":' .. redis.call('ZCARD', key) .. ',"sampled":' .. #jids .. ',"states":' .. body .. '}'
end

-- view.tags(offset, count) -> [[tag, jobs], ...] most used first
function QE.cmd_view_tags(offset, count)
  offset = QE.integer(offset ~= '' and offset or 0, 'offset', 0)
  count = QE.integer(count ~= '' and count or 50, 'count', 1, PAGE_LIMIT)
  local raw = redis.call('ZREVRANGEBYSCORE', QE.k('tags'), '+inf', 1, 'WITHSCORES', 'LIMIT', offset, count)
  local out = {}
  for i = 1, #raw, 2 do out[#out + 1] = '[' .. cjson.encode(raw[i]) .. ',' .. tonumber(raw[i + 1]) .. ']' end
  return '[' .. table.concat(out, ',') .. ']'
end
