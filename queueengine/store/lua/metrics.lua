-- queueengine Lua library, part 5b: metrics as time series (counts and wait/run histograms per
-- minute and per hour, per queue and per job class), read back by queueengine/operator/metrics.py.
--
-- Recording rides on the calls that already run (pop records waits; complete, fail and retry
-- record runs and counts; a stall's retry or exhaustion counts too), O(1) per job and batched per
-- call: one HINCRBY per (hash, field) a call touches, whatever the number of jobs.
--
--   mt:m:<minute>:<q>   hash  per class id k: w<i>:k waits, x<i>:k runs of completed jobs (their
--                             sum is the completed count) and y<i>:k runs of attempts that
--                             failed or were retried, in bucket i; f:k failed, r:k retried
--   mt:h:<hour>:<q>     hash  the same for the hour (written together with the minute)
--   mt:classes          hash  klass -> class id (1, 2, ... in first-seen order; never reused)
--   mt:total:<q>        hash  every finished hour folded in (monotonic; '@' = last hour folded)
--   mt:gm:<minute>, mt:gh:<hour>  hash  failure group -> jobs failed in it in that minute / hour
-- <minute> and <hour> are the epoch seconds the bucket starts at. A minute's keys expire
-- metrics-minutes minutes after it starts, an hour's metrics-hours hours after it starts; reads
-- ignore what is older even before Redis drops it (so a test clock sees the same retention).
--
-- The one bucket layout (MT_BUCKETS buckets; the same formula as queueengine/operator/metrics.py):
-- bucket 0 holds durations under 0.1 ms; bucket i >= 1 holds [0.1 ms * 1.2^(i-1), 0.1 ms * 1.2^i),
-- and the last one everything longer. Read as the harmonic mean of its edges, a bucket is within
-- 1/11 (9.1 %) of every duration it holds, from 0.1 ms to about 19 days.

local MT_BASE = 0.0001                 -- seconds: the lower edge of bucket 1
local MT_LN_RATIO = 0.1823215567939546  -- ln 1.2 (math is not there while a library loads)
local MT_LAST = 130                    -- the last bucket (0.1 ms * 1.2^129 = 19.6 days and up)
QE.MT_BUCKETS = MT_LAST + 1
local MINUTE, HOUR = 60, 3600

-- mt_bucket(seconds) -> the bucket index of a duration.
function QE.mt_bucket(s)
  if not (s >= MT_BASE) then return 0 end
  local i = math.floor(math.log(s / MT_BASE) / MT_LN_RATIO) + 1
  if i > MT_LAST then return MT_LAST end
  return i
end

-- mt_on() -> whether the metrics option is on (default 1).
function QE.mt_on()
  return QE.config('metrics') ~= '0'
end

local function keep_minutes() return math.max(1, QE.confnum('metrics-minutes', 1440)) * MINUTE end
local function keep_hours() return math.max(1, QE.confnum('metrics-hours', 720)) * HOUR end

local function fmt_t(t) return string.format('%d', t) end
local function minute_key(t, q) return QE.k('mt:m:' .. fmt_t(t) .. ':' .. q) end
local function hour_key(t, q) return QE.k('mt:h:' .. fmt_t(t) .. ':' .. q) end

-- expire_from(key, start, keep): the key lives until start + keep (in the command's time).
local function expire_from(key, start, keep)
  local ms = math.floor((start + keep - QE.now) * 1000)
  if ms < 1 then ms = 1 end
  redis.call('PEXPIRE', key, ms)
end

-- class_ids(klasses) -> klass -> id (string) for a set of class names, registering new ones.
-- Cached for the call (QE._mtids, reset by the dispatcher).
local function class_ids(klasses)
  local cache = QE._mtids
  if cache == nil then cache = {}; QE._mtids = cache end
  local missing = {}
  for klass in pairs(klasses) do
    if cache[klass] == nil then missing[#missing + 1] = klass end
  end
  if #missing > 0 then
    local key = QE.k('mt:classes')
    local got = redis.call('HMGET', key, unpack(missing))
    for i, klass in ipairs(missing) do
      local id = got[i]
      if not id then
        id = tostring(redis.call('HLEN', key) + 1)
        redis.call('HSET', key, klass, id)
      end
      cache[klass] = id
    end
  end
  return cache
end

-- mt_record(queue, counts): add counts[klass][field] (field: 'f', 'r', 'w<i>', 'x<i>', 'y<i>') to the
-- queue's hashes of the current minute and hour. One HINCRBY per hash and field.
function QE.mt_record(queue, counts)
  if next(counts) == nil or not QE.mt_on() then return end
  local ids = class_ids(counts)
  local m0 = math.floor(QE.now / MINUTE) * MINUTE
  local h0 = math.floor(QE.now / HOUR) * HOUR
  local mkey, hkey = minute_key(m0, queue), hour_key(h0, queue)
  local new_m, new_h = false, false
  for klass, fields in pairs(counts) do
    local suffix = ':' .. ids[klass]
    for field, n in pairs(fields) do
      local f = field .. suffix
      if redis.call('HINCRBY', mkey, f, n) == n then new_m = true end
      if redis.call('HINCRBY', hkey, f, n) == n then new_h = true end
    end
  end
  if new_m then expire_from(mkey, m0, keep_minutes()) end
  if new_h then expire_from(hkey, h0, keep_hours()) end
end

-- mt_count(counts, klass, field, n): counts[klass][field] += n (a call's tally before mt_record).
function QE.mt_count(counts, klass, field, n)
  klass = klass or ''
  if klass == '' then klass = '?' end
  local fields = counts[klass]
  if fields == nil then fields = {}; counts[klass] = fields end
  fields[field] = (fields[field] or 0) + n
end

-- mt_job(queue, klass, outcome, run): record one job: outcome 'c' (completed: its run time goes
-- to x<i>, whose sum is the completed count), 'f' (failed) or 'r' (retried), or nil (neither);
-- the run time of an attempt that did not complete (when given) goes to y<i>.
function QE.mt_job(queue, klass, outcome, run)
  local counts = {}
  if outcome == 'c' then
    QE.mt_count(counts, klass, 'x' .. QE.mt_bucket(run or 0), 1)
  else
    if outcome then QE.mt_count(counts, klass, outcome, 1) end
    if run then QE.mt_count(counts, klass, 'y' .. QE.mt_bucket(run), 1) end
  end
  QE.mt_record(queue, counts)
end

-- mt_group_failed(group): one failure of a failure group, this minute and hour.
function QE.mt_group_failed(group)
  if not QE.mt_on() then return end
  local m0 = math.floor(QE.now / MINUTE) * MINUTE
  local h0 = math.floor(QE.now / HOUR) * HOUR
  local mkey, hkey = QE.k('mt:gm:' .. fmt_t(m0)), QE.k('mt:gh:' .. fmt_t(h0))
  if redis.call('HINCRBY', mkey, group, 1) == 1 then expire_from(mkey, m0, keep_minutes()) end
  if redis.call('HINCRBY', hkey, group, 1) == 1 then expire_from(hkey, h0, keep_hours()) end
end

-- ---------------------------------------------------------------- reading
local MAX_POINTS = 1500

-- window(since, until) -> the checked window [a, b): until '' = now, since '' = an hour before
-- until; both finite numbers, until not before since.
local TIME_LIMIT = 100000000000       -- epoch seconds a window may name (the year 5138)
local function window(since, until_)
  local b = QE.now
  if until_ ~= nil and until_ ~= '' then b = QE.number(until_, 'until', 0) end
  local a = b - HOUR
  if since ~= nil and since ~= '' then a = QE.number(since, 'since', 0) end
  if b > TIME_LIMIT then QE.raise('InvalidArgument', 'until must be at most ' .. TIME_LIMIT .. ' (epoch seconds)') end
  if a < 0 then a = 0 end
  if b < a then
    QE.raise('InvalidArgument', 'until must not be before since, got since=' .. QE.fnum(a) .. ' until=' .. QE.fnum(b))
  end
  return a, b
end

-- frame(a, b, step) -> (step, first bucket start, number of buckets) of a series over [a, b).
-- step '': 60 s for a window up to 24 h, else 3600 s (a multiple of it past MAX_POINTS hours);
-- else a whole number of minutes giving at most MAX_POINTS buckets.
local function frame(a, b, step)
  if step == nil or step == '' then
    step = MINUTE
    if b - a > 86400 then step = HOUR * math.max(1, math.ceil((b - a) / HOUR / (MAX_POINTS - 1))) end
  else
    step = QE.integer(step, 'step', MINUTE)
    if step % MINUTE ~= 0 then QE.raise('InvalidArgument', 'step must be a multiple of 60, got ' .. step) end
  end
  local t0 = math.floor(a / step) * step
  local points = 0
  if b > a then points = math.ceil((b - t0) / step) end
  if points > MAX_POINTS then
    QE.raise('InvalidArgument', 'step ' .. step .. ' gives ' .. points .. ' buckets over this window; at most '
      .. MAX_POINTS .. ' (use a larger step)')
  end
  return step, t0, points
end

-- visit_range(a, b, visit): calls visit('m', t) for each retained minute and visit('h', t) for
-- each retained hour that together cover [a, b) (a and b minute-aligned): whole hours by their
-- hour, the partial hours at either end by their minutes (older than metrics-minutes: skipped).
-- Only keys within the retention of now, either way, can exist (a test clock may have written
-- ahead of a reader's now), so the visits of one call are bounded by the retention, whatever
-- the window.
local function visit_range(a, b, visit)
  local km, kh = keep_minutes(), keep_hours()
  local function minutes(x, y)
    local first = math.max(x, math.floor((QE.now - km) / MINUTE) * MINUTE + MINUTE)
    local last = math.min(y - MINUTE, math.floor((QE.now + km) / MINUTE) * MINUTE)
    for t = first, last, MINUTE do visit('m', t) end
  end
  local h0 = math.ceil(a / HOUR) * HOUR
  local h1 = math.floor(b / HOUR) * HOUR
  if h1 <= h0 then minutes(a, b); return end
  minutes(a, h0)
  local first = math.max(h0, math.floor((QE.now - kh) / HOUR) * HOUR + HOUR)
  local last = math.min(h1 - HOUR, math.floor((QE.now + kh) / HOUR) * HOUR)
  for t = first, last, HOUR do visit('h', t) end
  minutes(h1, b)
end

-- queue_list(queue) -> the queues a read covers: the one named, or every registered queue.
local function queue_list(queue)
  if queue ~= nil and queue ~= '' then return {QE.existing_name(queue, 'queue')} end
  return redis.call('ZRANGE', QE.k('queues'), 0, -1)
end

-- class_filter(klass) -> nil (every class), the class id, or false (a class never seen).
local function class_filter(klass)
  if klass == nil or klass == '' then return nil end
  return redis.call('HGET', QE.k('mt:classes'), klass) or false
end

-- add_fields(raw, want, acc): add a raw HGETALL reply's fields of class id want (nil: every
-- class) into acc (field name without the class -> count).
local function add_fields(raw, want, acc)
  for i = 1, #raw, 2 do
    local f = raw[i]
    local colon = string.find(f, ':', 1, true)
    if colon and (want == nil or string.sub(f, colon + 1) == want) then
      local name = string.sub(f, 1, colon - 1)
      acc[name] = (acc[name] or 0) + tonumber(raw[i + 1])
    end
  end
end

local function obj(t)
  if next(t) == nil then return '{}' end
  return cjson.encode(t)
end

-- metrics.series(queue|'', klass|'', since, until, step) -> {"t0": first bucket start, "step": s,
--   "b": [{field: count}, ...]}: one object per bucket [t0 + k*step, t0 + (k+1)*step) covering
--   [since, until), fields f, r, w<i>, x<i>, y<i> (bucket i) summed over the queue (every queue when
--   '') and the class (every class when '').
function QE.cmd_metrics_series(queue, klass, since, until_, step)
  local a, b = window(since, until_)
  local t0, points
  step, t0, points = frame(a, b, step)
  local queues = queue_list(queue)
  local want = class_filter(klass)
  local out = {}
  for k = 1, points do
    local acc = {}
    if want ~= false then
      local s = t0 + (k - 1) * step
      visit_range(s, s + step, function(kind, t)
        for _, q in ipairs(queues) do
          local key = kind == 'm' and minute_key(t, q) or hour_key(t, q)
          add_fields(redis.call('HGETALL', key), want, acc)
        end
      end)
    end
    out[k] = obj(acc)
  end
  return '{"t0":' .. fmt_t(t0) .. ',"step":' .. fmt_t(step) .. ',"b":[' .. table.concat(out, ',') .. ']}'
end

-- minute_span(a, b) -> the minute-aligned span covering [a, b).
local function minute_span(a, b)
  return math.floor(a / MINUTE) * MINUTE, math.ceil(b / MINUTE) * MINUTE
end

-- metrics.classes(queue|'', since, until) -> {klass: {field: count}} over the minutes covering
--   [since, until): every class seen there (fields as in metrics.series).
function QE.cmd_metrics_classes(queue, since, until_)
  local a, b = minute_span(window(since, until_))
  local queues = queue_list(queue)
  local by_id = {}
  visit_range(a, b, function(kind, t)
    for _, q in ipairs(queues) do
      local raw = redis.call('HGETALL', kind == 'm' and minute_key(t, q) or hour_key(t, q))
      for i = 1, #raw, 2 do
        local f = raw[i]
        local colon = string.find(f, ':', 1, true)
        if colon then
          local id = string.sub(f, colon + 1)
          local acc = by_id[id]
          if acc == nil then acc = {}; by_id[id] = acc end
          local name = string.sub(f, 1, colon - 1)
          acc[name] = (acc[name] or 0) + tonumber(raw[i + 1])
        end
      end
    end
  end)
  local names = {}
  local raw = redis.call('HGETALL', QE.k('mt:classes'))
  for i = 1, #raw, 2 do names[raw[i + 1]] = raw[i] end
  local parts = {}
  for id, acc in pairs(by_id) do
    parts[#parts + 1] = cjson.encode(names[id] or ('#' .. id)) .. ':' .. obj(acc)
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- metrics.groups(since, until, step, group...) -> {"t0": first bucket start, "step": s,
--   "groups": {group: [failures per bucket]}} (buckets as in metrics.series).
function QE.cmd_metrics_groups(a_)
  local a, b = window(a_[3], a_[4])
  local step, t0, points = frame(a, b, a_[5])
  local groups = {}
  for i = 6, #a_ do groups[#groups + 1] = QE.existing_name(a_[i], 'group') end
  if #groups > 500 then QE.raise('InvalidArgument', 'groups: at most 500 at once, got ' .. #groups) end
  local series = {}
  for g = 1, #groups do series[g] = {} end
  for k = 1, points do
    for g = 1, #groups do series[g][k] = 0 end
    if #groups > 0 then
      local s = t0 + (k - 1) * step
      visit_range(s, s + step, function(kind, t)
        local key = QE.k((kind == 'm' and 'mt:gm:' or 'mt:gh:') .. fmt_t(t))
        local got = redis.call('HMGET', key, unpack(groups))
        for g = 1, #groups do series[g][k] = series[g][k] + (tonumber(got[g]) or 0) end
      end)
    end
  end
  local parts = {}
  for g, name in ipairs(groups) do
    parts[g] = cjson.encode(name) .. ':[' .. table.concat(series[g], ',') .. ']'
  end
  return '{"t0":' .. fmt_t(t0) .. ',"step":' .. fmt_t(step) .. ',"groups":{' .. table.concat(parts, ',') .. '}}'
end

-- fold(q): add every finished, retained hour of q not folded yet into mt:total:<q>.
local function fold(q)
  local tkey = QE.k('mt:total:' .. q)
  local current = math.floor(QE.now / HOUR) * HOUR
  local oldest = math.floor((QE.now - keep_hours()) / HOUR) * HOUR + HOUR
  local last = tonumber(redis.call('HGET', tkey, '@'))
  local first = oldest
  if last ~= nil and last + HOUR > first then first = last + HOUR end
  if first > current - HOUR then return end
  for t = first, current - HOUR, HOUR do
    local raw = redis.call('HGETALL', hour_key(t, q))
    for i = 1, #raw, 2 do redis.call('HINCRBY', tkey, raw[i], raw[i + 1]) end
  end
  redis.call('HSET', tkey, '@', fmt_t(current - HOUR))
  redis.call('PEXPIRE', tkey, keep_hours() * 1000)
end

-- metrics.totals() -> {"classes": {id: klass}, "queues": {queue: {field:id: count}}}: per queue,
--   everything recorded since its first retained hour, never decreasing (for Prometheus
--   counters): finished hours are folded into mt:total:<q>, the current hour is added on top.
function QE.cmd_metrics_totals(extra)
  if extra ~= nil then QE.raise('InvalidArgument', 'arguments: metrics.totals takes none') end
  local parts = {}
  local current = math.floor(QE.now / HOUR) * HOUR
  for _, q in ipairs(redis.call('ZRANGE', QE.k('queues'), 0, -1)) do
    fold(q)
    local acc = {}
    for _, key in ipairs({QE.k('mt:total:' .. q), hour_key(current, q)}) do
      local raw = redis.call('HGETALL', key)
      for i = 1, #raw, 2 do
        if raw[i] ~= '@' then acc[raw[i]] = (acc[raw[i]] or 0) + tonumber(raw[i + 1]) end
      end
    end
    if next(acc) ~= nil then parts[#parts + 1] = cjson.encode(q) .. ':' .. cjson.encode(acc) end
  end
  local names = {}
  local raw = redis.call('HGETALL', QE.k('mt:classes'))
  for i = 1, #raw, 2 do names[raw[i + 1]] = raw[i] end
  return '{"classes":' .. obj(names) .. ',"queues":{' .. table.concat(parts, ',') .. '}}'
end

-- metrics.backlog(queue, limit) -> {"total": waiting jobs, "scanned": n, "classes": {klass: n}}:
--   the classes of the first `limit` jobs in pop order (at most 10,000).
function QE.cmd_metrics_backlog(queue, limit)
  QE.existing_name(queue, 'queue')
  limit = QE.integer(limit, 'limit', 1, 10000)
  local work = QE.kq(queue, 'work')
  local jids = redis.call('ZRANGE', work, 0, limit - 1)
  local classes = {}
  for _, jid in ipairs(jids) do
    local klass = redis.call('HGET', QE.kj(jid), 'klass') or '?'
    classes[klass] = (classes[klass] or 0) + 1
  end
  return '{"total":' .. redis.call('ZCARD', work) .. ',"scanned":' .. #jids .. ',"classes":' .. obj(classes) .. '}'
end
