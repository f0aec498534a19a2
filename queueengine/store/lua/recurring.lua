-- queueengine Lua library, part 6: recurring jobs (interval and cron) and the cron matcher.
--
-- Decision: cron schedules are evaluated inside Lua (a small five-field matcher, UTC), so
-- spawning stays lazy and atomic in pop/peek/housekeep exactly like interval schedules, and
-- catch-up and backlog work the same way for both. Supported syntax per field: '*', numbers,
-- ranges 'a-b', steps '*/n' and 'a-b/n', lists 'a,b,c', month names jan..dec, weekday names
-- sun..sat (0 and 7 are Sunday), and the macros @yearly @annually @monthly @weekly @daily
-- @midnight @hourly. When both day-of-month and day-of-week are restricted (neither is a
-- bare '*') a day matches either (classic cron, as croniter).

local MONTHS = {jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
  sep = 9, oct = 10, nov = 11, dec = 12}
local DAYS = {sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6}
local MACROS = {['@yearly'] = '0 0 1 1 *', ['@annually'] = '0 0 1 1 *', ['@monthly'] = '0 0 1 * *',
  ['@weekly'] = '0 0 * * 0', ['@daily'] = '0 0 * * *', ['@midnight'] = '0 0 * * *',
  ['@hourly'] = '0 * * * *'}

local function cron_bad(expr, why)
  QE.raise('InvalidArgument', 'cron: ' .. why .. ' in ' .. cjson.encode(expr))
end

local function cron_value(s, names, expr)
  local n = tonumber(s)
  if n == nil and names then n = names[string.lower(s)] end
  if n == nil or n ~= math.floor(n) then cron_bad(expr, 'bad value ' .. s) end
  return n
end

local function cron_field(text, lo, hi, names, expr)
  local set, star = {}, false
  for item in string.gmatch(text, '[^,]+') do
    local range, step = string.match(item, '^([^/]+)/(%d+)$')
    if range == nil then range = item; step = nil end
    step = step and tonumber(step) or 1
    if step < 1 then cron_bad(expr, 'step must be >= 1') end
    local a, b
    if range == '*' then
      a, b = lo, hi
      if item == '*' then star = true end   -- only a bare '*' is unrestricted (croniter)
    else
      local x, y = string.match(range, '^([^-]+)-([^-]+)$')
      if x then
        a, b = cron_value(x, names, expr), cron_value(y, names, expr)
      else
        a = cron_value(range, names, expr)
        b = (step > 1) and hi or a
      end
    end
    if a < lo or b > hi or a > b then cron_bad(expr, 'value out of range ' .. item) end
    for v = a, b, step do set[v] = true end
  end
  if next(set) == nil then cron_bad(expr, 'empty field') end
  return set, star
end

-- cron_parse(expr) -> spec table; raises InvalidArgument on bad syntax.
function QE.cron_parse(expr)
  if type(expr) ~= 'string' or expr == '' then cron_bad(tostring(expr), 'empty expression') end
  local text = MACROS[string.lower(expr)] or expr
  local f = {}
  for part in string.gmatch(text, '%S+') do f[#f + 1] = part end
  if #f ~= 5 then cron_bad(expr, 'expected 5 fields, got ' .. #f) end
  local spec = {}
  spec.minute = cron_field(f[1], 0, 59, nil, expr)
  spec.hour = cron_field(f[2], 0, 23, nil, expr)
  spec.dom, spec.dom_star = cron_field(f[3], 1, 31, nil, expr)
  spec.month = cron_field(f[4], 1, 12, MONTHS, expr)
  local dow, dow_star = cron_field(f[5], 0, 7, DAYS, expr)
  if dow[7] then dow[0] = true end
  spec.dow, spec.dow_star = dow, dow_star
  return spec
end

-- civil date of a day number (days since 1970-01-01), proleptic Gregorian.
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function day_matches(spec, daynum)
  local _, m, d = civil(daynum)
  if not spec.month[m] then return false end
  local wd = (daynum + 4) % 7
  if spec.dom_star and spec.dow_star then return true end
  if spec.dom_star then return spec.dow[wd] == true end
  if spec.dow_star then return spec.dom[d] == true end
  return spec.dom[d] == true or spec.dow[wd] == true
end

local CRON_DAYS = 366 * 8

-- cron_next(spec, t) -> first fire time >= t (whole minutes, UTC), or nil if none within 8 years.
function QE.cron_next(spec, t)
  local start = math.ceil(t / 60) * 60
  local daynum = math.floor(start / 86400)
  local minute_of_day = math.floor((start - daynum * 86400) / 60)
  for i = 0, CRON_DAYS do
    if day_matches(spec, daynum + i) then
      local from = (i == 0) and minute_of_day or 0
      for h = math.floor(from / 60), 23 do
        if spec.hour[h] then
          local m0 = (h == math.floor(from / 60)) and (from % 60) or 0
          for m = m0, 59 do
            if spec.minute[m] then return (daynum + i) * 86400 + h * 3600 + m * 60 end
          end
        end
      end
    end
  end
  return nil
end

-- cron_prev(spec, t) -> last fire time <= t, or nil if none within 8 years.
function QE.cron_prev(spec, t)
  local start = math.floor(t / 60) * 60
  local daynum = math.floor(start / 86400)
  local minute_of_day = math.floor((start - daynum * 86400) / 60)
  for i = 0, CRON_DAYS do
    if day_matches(spec, daynum - i) then
      local to = (i == 0) and minute_of_day or 1439
      for h = math.floor(to / 60), 0, -1 do
        if spec.hour[h] then
          local m1 = (h == math.floor(to / 60)) and (to % 60) or 59
          for m = m1, 0, -1 do
            if spec.minute[m] then return (daynum - i) * 86400 + h * 3600 + m * 60 end
          end
        end
      end
    end
  end
  return nil
end

-- ---------------------------------------------------------------- templates
local RECUR_KEYS = {priority = true, interval = true, cron = true, retries = true, data = true,
  klass = true, queue = true, backlog = true, throttles = true, backoff = true}

-- following(r, t, spec): the template's fire time after fire time t (nil: never again).
local function following(r, t, spec)
  if r.type == 'cron' then return QE.cron_next(spec, t + 60) end
  return t + tonumber(r.interval)
end

-- spawn_recurring(queue, limit) -> (number of children created (at most limit, across all
-- due templates of the queue), next spawn time|nil). Children are "<template jid>-<count>".
function QE.spawn_recurring(queue, limit)
  if limit <= 0 then return 0, nil end
  local rkey = QE.kq(queue, 'recur')
  local first = QE.first_score(rkey)
  if first == nil or first > QE.now then return 0, first end
  local due = redis.call('ZRANGEBYSCORE', rkey, '-inf', QE.nows, 'WITHSCORES', 'LIMIT', 0, limit)
  local spawned = 0
  for i = 1, #due, 2 do
    if spawned >= limit then break end
    local tjid, nxt = due[i], tonumber(due[i + 1])
    local r = QE.hgetall(QE.kr(tjid))
    if r == nil then
      redis.call('ZREM', rkey, tjid)
    else
      local spec = nil
      if r.type == 'cron' then spec = QE.cron_parse(r.cron) end
      local backlog = tonumber(r.backlog) or 0
      if backlog > 0 then
        if r.type == 'cron' then
          -- keep only the last backlog + 1 missed fire times
          local t, kept = QE.cron_prev(spec, QE.now), 0
          local earliest = nxt
          while t ~= nil and t >= nxt and kept <= backlog do
            earliest = t; kept = kept + 1
            t = QE.cron_prev(spec, t - 60)
          end
          nxt = earliest
        else
          local interval = tonumber(r.interval)
          local missed = (QE.now - nxt) / interval
          if missed > backlog then nxt = nxt + math.ceil(missed - backlog) * interval end
        end
      end
      local count = tonumber(r.count) or 0
      local priority = tonumber(r.priority) or 0
      local tags = QE.decode_list(r.tags)
      local made = 0
      while nxt ~= nil and nxt <= QE.now and spawned < limit do
        count = count + 1
        local child = tjid .. '-' .. count
        local old = QE.job(child)
        if old ~= nil then QE.unplace(child, old); QE.unindex_failure(child, old); QE.destroy(child, old) end
        redis.call('HSET', QE.kj(child), 'jid', child, 'klass', r.klass, 'data', r.data,
          'priority', priority, 'tags', r.tags or '[]', 'state', 'waiting', 'worker', '',
          'expires', 0, 'queue', queue, 'retries', r.retries, 'remaining', r.retries,
          'time', nxt, 'spawned_from_jid', tjid, 'throttles', r.throttles or '[]',
          'backoff', r.backoff or '', 'reply', '0',
          'history', QE.history_entry('put', {queue = queue, recurring = tjid}))
        for _, t in ipairs(tags) do QE.tag_index_add(child, t) end
        QE.index_add(queue, r.klass, child)
        redis.call('ZADD', QE.kq(queue, 'work'), QE.score(priority, QE.next_seq()), child)
        QE.event('recurring', child, queue, {template = tjid})
        spawned = spawned + 1
        made = made + 1
        nxt = following(r, nxt, spec)
      end
      redis.call('HSET', QE.kr(tjid), 'count', count)
      if nxt == nil then redis.call('ZREM', rkey, tjid) else redis.call('ZADD', rkey, nxt, tjid) end
    end
  end
  if spawned > 0 then QE.wake(queue) end
  if spawned >= limit then return spawned, QE.now end
  return spawned, QE.first_score(rkey)
end

-- recur(queue, jid, klass, data, 'interval'|'cron', interval_or_expr, offset, priority,
--       tags, retries, backlog, throttles, backoff) -> jid
-- interval: first spawn at now + offset; cron: first spawn at the first match >= now + offset.
function QE.cmd_recur(a)
  local queue = QE.name(a[3], 'queue')
  local jid = QE.name(a[4], 'jid')
  local klass = a[5]
  if klass == nil or klass == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
  local data = a[6]
  QE.json(data, 'data')
  local kind = a[7]
  local interval, cron, first = '', '', nil
  local offset = QE.number(a[9] ~= '' and a[9] or 0, 'offset', 0)
  if kind == 'interval' then
    interval = QE.number(a[8], 'interval', 0)
    if interval <= 0 then QE.raise('InvalidArgument', 'interval must be > 0') end
    first = QE.now + offset
  elseif kind == 'cron' then
    cron = a[8]
    local spec = QE.cron_parse(cron)
    first = QE.cron_next(spec, QE.now + offset)
    if first == nil then QE.raise('InvalidArgument', 'cron: never fires: ' .. cron) end
  else
    QE.raise('InvalidArgument', "schedule must be 'interval' or 'cron', got " .. tostring(kind))
  end
  local priority = QE.integer(a[10] ~= '' and a[10] or 0, 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
  local tags = QE.names(a[11] ~= '' and a[11] or '[]', 'tags')
  local retries = QE.integer(a[12] ~= '' and a[12] or 0, 'retries', 0, 1000000000)
  local backlog = QE.integer(a[13] ~= '' and a[13] or 0, 'backlog', 0, 1000000)
  local throttles = QE.names(a[14] ~= '' and a[14] or '[]', 'throttles')
  local backoff = QE.parse_backoff(a[15])
  if redis.call('EXISTS', QE.kj(jid)) == 1 then   -- Qless #178: a template and a job shared a jid
    QE.raise('DuplicateJob', 'jid ' .. jid .. ' is a job already; a recurring template needs a jid of its own')
  end
  local key = QE.kr(jid)
  local old = QE.hgetall(key)
  if old ~= nil and old.queue ~= queue then redis.call('ZREM', QE.kq(old.queue, 'recur'), jid) end
  redis.call('HSET', key, 'jid', jid, 'klass', klass, 'data', data, 'priority', priority,
    'tags', QE.list_json(tags), 'state', 'recur', 'queue', queue, 'type', kind,
    'interval', interval, 'cron', cron, 'retries', retries, 'backlog', backlog,
    'count', old and old.count or 0, 'throttles', QE.list_json(throttles), 'backoff', backoff)
  redis.call('ZADD', QE.kq(queue, 'recur'), first, jid)
  QE.register_queue(queue)
  QE.wake(queue)
  QE.event('recur', jid, queue, {schedule = kind})
  return jid
end

-- recur.get(jid) -> {jid, klass, state:'recur', queue, priority, type, interval, cron,
--   retries, count, data, tags, backlog, throttles, backoff, next} | nil
function QE.cmd_recur_get(jid)
  QE.existing_name(jid, 'jid')
  local r = QE.hgetall(QE.kr(jid))
  if r == nil then return nil end
  local nxt = redis.call('ZSCORE', QE.kq(r.queue, 'recur'), jid)
  return '{"jid":' .. cjson.encode(jid) .. ',"klass":' .. cjson.encode(r.klass)
    .. ',"state":"recur","queue":' .. cjson.encode(r.queue) .. ',"priority":' .. (tonumber(r.priority) or 0)
    .. ',"type":' .. cjson.encode(r.type) .. ',"interval":' .. (tonumber(r.interval) or 'null')
    .. ',"cron":' .. (r.cron ~= '' and cjson.encode(r.cron) or 'null')
    .. ',"retries":' .. (tonumber(r.retries) or 0) .. ',"count":' .. (tonumber(r.count) or 0)
    .. ',"data":' .. r.data .. ',"tags":' .. (r.tags or '[]') .. ',"backlog":' .. (tonumber(r.backlog) or 0)
    .. ',"throttles":' .. (r.throttles ~= '' and r.throttles or '[]')
    .. ',"backoff":' .. ((r.backoff ~= nil and r.backoff ~= '') and r.backoff or 'null')
    .. ',"next":' .. (nxt and QE.fnum(tonumber(nxt)) or 'null') .. '}'
end

-- recur.update(jid, key, value, ...) -> 'OK'; keys: priority, interval, cron, retries, data,
-- klass, queue, backlog, throttles, backoff. All pairs are checked before any write.
function QE.cmd_recur_update(jid, pairs_)
  QE.name(jid, 'jid')
  if #pairs_ % 2 ~= 0 then QE.raise('InvalidArgument', 'updates must be key/value pairs') end
  local r = QE.hgetall(QE.kr(jid))
  if r == nil then QE.raise('JobNotFound', 'recurring job ' .. jid .. ' does not exist') end
  local set, rkey = {}, QE.kq(r.queue, 'recur')
  local nxt = tonumber(redis.call('ZSCORE', rkey, jid))
  local newq = nil
  for i = 1, #pairs_, 2 do
    local k, v = pairs_[i], pairs_[i + 1]
    if not RECUR_KEYS[k] then QE.raise('InvalidArgument', 'unknown recurring option ' .. tostring(k)) end
    if k == 'priority' then
      set.priority = QE.integer(v, 'priority', -QE.PRIORITY_LIMIT, QE.PRIORITY_LIMIT)
    elseif k == 'interval' then
      local n = QE.number(v, 'interval', 0)
      if n <= 0 then QE.raise('InvalidArgument', 'interval must be > 0') end
      if r.type == 'interval' and nxt then nxt = nxt + n - tonumber(r.interval) end
      if r.type == 'cron' then nxt = QE.now + n end
      set.interval, set.type, set.cron = n, 'interval', ''
    elseif k == 'cron' then
      local spec = QE.cron_parse(v)
      nxt = QE.cron_next(spec, QE.now)
      if nxt == nil then QE.raise('InvalidArgument', 'cron: never fires: ' .. v) end
      set.cron, set.type, set.interval = v, 'cron', ''
    elseif k == 'retries' then set.retries = QE.integer(v, 'retries', 0, 1000000000)
    elseif k == 'backlog' then set.backlog = QE.integer(v, 'backlog', 0, 1000000)
    elseif k == 'data' then QE.json(v, 'data'); set.data = v
    elseif k == 'klass' then
      if v == nil or v == '' then QE.raise('InvalidArgument', 'klass must be a non-empty string') end
      set.klass = v
    elseif k == 'queue' then newq = QE.name(v, 'queue'); set.queue = v
    elseif k == 'throttles' then set.throttles = QE.list_json(QE.names(v, 'throttles'))
    elseif k == 'backoff' then set.backoff = QE.parse_backoff(v)
    end
  end
  for k, v in pairs(set) do redis.call('HSET', QE.kr(jid), k, v) end
  local q = r.queue
  if newq ~= nil and newq ~= r.queue then
    redis.call('ZREM', rkey, jid)
    QE.register_queue(newq)
    q = newq
  end
  if nxt then redis.call('ZADD', QE.kq(q, 'recur'), nxt, jid) end
  QE.event('recur', jid, q, {updated = true})
  return 'OK'
end

-- recur.tag / recur.untag(jid, tag...) -> JSON tag list of the template
function QE.cmd_recur_tag(jid, tags, add)
  QE.name(jid, 'jid')
  for _, t in ipairs(tags) do QE.name(t, 'tag') end
  local r = QE.hgetall(QE.kr(jid))
  if r == nil then QE.raise('JobNotFound', 'recurring job ' .. jid .. ' does not exist') end
  local cur = QE.decode_list(r.tags)
  local has, out = {}, {}
  for _, t in ipairs(cur) do has[t] = true end
  if add then
    out = cur
    for _, t in ipairs(tags) do if not has[t] then has[t] = true; out[#out + 1] = t end end
  else
    local drop = {}
    for _, t in ipairs(tags) do drop[t] = true end
    for _, t in ipairs(cur) do if not drop[t] then out[#out + 1] = t end end
  end
  local json = QE.list_json(out)
  redis.call('HSET', QE.kr(jid), 'tags', json)
  return json
end

-- unrecur(jid) -> 'OK'; spawned children are not touched
function QE.cmd_unrecur(jid)
  QE.name(jid, 'jid')
  local r = QE.hgetall(QE.kr(jid))
  if r ~= nil then
    redis.call('ZREM', QE.kq(r.queue, 'recur'), jid)
    redis.call('DEL', QE.kr(jid))
    QE.event('unrecur', jid, r.queue)
  end
  return 'OK'
end
