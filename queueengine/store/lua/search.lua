-- queueengine Lua library, part 11: search. `find`: jobs by queue, state, class, tag, worker,
-- data path equality, text and time of last change, paged by a cursor, with bounded work per
-- call (see docs/engine.md, "Search"). The class index it reads (q:<q>:byclass) is kept by
-- classindex.lua.
--
-- One order for every source. Each job has a place in one total order that no state change
-- moves: its index member (class, then jid, in byte order), the same whichever queue it is in.
-- Cursor "A<member>": every job up to that place has been looked at. The class index is read
-- in that order (the queues' ranges merged); a small state, tag or worker set (at most
-- set_max entries) is read whole and sorted into the same order, so consecutive calls may use
-- either. A job that matches throughout the paging is returned exactly once: its place is
-- fixed and each call covers the places after the cursor and up to the new cursor.
-- Large tag, failed and complete sets are walked instead in their own order (time tagged,
-- failed, completed), which only changes when a job leaves and comes back: cursor
-- "B<kind>\0<name>\0<t0>\0<score>\0<jid>" where t0 is the time of the first call; entries
-- scored after t0 (jobs that came back, or came later) are left out, so none is returned twice.

local FIND_MAX_LIMIT = 500
local READ_LIMIT = 5000          -- most entries one call may be told to read from an index
local SET_LIMIT = 5000           -- largest set one call may be told to read whole
local FILTER_KEYS = {queue = true, state = true, klass = true, prefix = true, tag = true, worker = true,
  data = true, text = true, since = true, ['until'] = true}
local FIND_STATES = {waiting = 'work', scheduled = 'scheduled', depends = 'depends', throttled = 'throttled',
  running = 'locks', stalled = 'locks', failed = false, complete = false}

local lex_lt, split_member, search_queues, member_order = QE.lex_lt, QE.split_member, QE.search_queues, QE.member_order

-- ---------------------------------------------------------------- filters
-- parse_filters(raw) -> f: {queue, state, klass, prefix, tag, worker, data = {{path, value}},
-- text, since, until} checked as the Python side checks them (raw calls get the same errors).
local function parse_filters(raw)
  local f = QE.json(raw ~= '' and raw or '{}', 'filters', 'object')
  for k in pairs(f) do
    if not FILTER_KEYS[k] then QE.raise('InvalidArgument', 'filters: unknown filter ' .. tostring(k)) end
  end
  for _, k in ipairs({'queue', 'tag', 'worker'}) do
    if f[k] ~= nil then QE.existing_name(f[k], k) end
  end
  if f.state ~= nil and FIND_STATES[f.state] == nil then
    QE.raise('InvalidArgument', 'state must be one of waiting, scheduled, depends, throttled, running, '
      .. 'stalled, failed, complete; got ' .. tostring(f.state))
  end
  if f.klass ~= nil and (type(f.klass) ~= 'string' or (f.klass == '' and not f.prefix)) then
    QE.raise('InvalidArgument', 'klass must be a non-empty string')
  end
  if f.klass == '' then f.klass = nil end
  f.prefix = f.prefix == true
  if f.text ~= nil and (type(f.text) ~= 'string' or f.text == '') then
    QE.raise('InvalidArgument', 'text must be a non-empty string')
  end
  if f.since ~= nil then f.since = QE.number(f.since, 'since') end
  if f['until'] ~= nil then f['until'] = QE.number(f['until'], 'until') end
  f.data = f.data or {}
  if type(f.data) ~= 'table' then QE.raise('InvalidArgument', 'data must be a list of [path, value] pairs') end
  for i, cond in ipairs(f.data) do
    if type(cond) ~= 'table' or type(cond[1]) ~= 'table' or #cond[1] == 0 then
      QE.raise('InvalidArgument', 'data condition ' .. i .. ' must be [[key, ...], value]')
    end
    for _, seg in ipairs(cond[1]) do
      if type(seg) ~= 'string' or seg == '' then QE.raise('InvalidArgument', 'data: empty path segment') end
    end
    -- the last key, when no JSON encoder would escape it, is looked for in the text first
    local last = cond[1][#cond[1]]
    if string.find(last, '^[%w_%-]+$') and not string.find(last, '^%d+$') then cond.key = '"' .. last .. '"' end
  end
  f.need_data = f.text ~= nil or #f.data > 0
  return f
end

-- class_range(f) -> lo (inclusive), hi (exclusive) bounds of the members the klass filter
-- allows (nil: open).
local function class_range(f)
  if f.klass == nil then return nil, nil end
  if f.prefix then return f.klass, f.klass .. '\255' end
  return f.klass .. '\0', f.klass .. '\1'
end

local function in_range(m, lo, hi)
  return (lo == nil or not lex_lt(m, lo)) and (hi == nil or lex_lt(m, hi))
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= 'table' or type(b) ~= 'table' then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- at_path(doc, path) -> the value at the dotted path (a list index is a whole number, 0 first).
local function at_path(doc, path)
  local v = doc
  for _, seg in ipairs(path) do
    if type(v) ~= 'table' then return nil end
    local nxt = v[seg]
    if nxt == nil and string.find(seg, '^%d+$') then nxt = v[tonumber(seg) + 1] end
    v = nxt
  end
  return v
end

-- value_may_be(data, at, want) -> whether the JSON value starting at position `at` of the
-- text may equal `want`: false only when it surely does not (a number of another value, a
-- plain string, true, false or null that differs); objects, lists and escaped strings: maybe.
local function value_may_be(data, at, want)
  local c = string.sub(data, at, at)
  if c == '"' then
    if type(want) ~= 'string' then return false end
    local close = string.find(data, '"', at + 1, true)
    if close == nil then return true end
    local text = string.sub(data, at + 1, close - 1)
    return string.find(text, '\\', 1, true) ~= nil or text == want
  elseif c == '{' or c == '[' then
    return type(want) == 'table'
  end
  local token = string.match(data, '^[%w%.+-]+', at)
  if token == nil then return true end
  if type(want) == 'number' then return tonumber(token) == want end
  if want == cjson.null then return token == 'null' end
  if type(want) == 'boolean' then return token == tostring(want) end
  return false
end

-- key_may_hold(data, key, want) -> false when no `"key": value` in the text can be `want`, so
-- the document need not be decoded (it is decoded when this says maybe).
local function key_may_hold(data, key, want)
  local from = 1
  while true do
    local s, e = string.find(data, key, from, true)
    if s == nil then return false end
    local at = string.match(data, '^%s*:%s*()', e + 1)
    if at and value_may_be(data, at, want) then return true end
    from = e + 1
  end
end

local function data_matches(data, f)
  if f.text ~= nil and not string.find(data, f.text, 1, true) then return false end
  if #f.data == 0 then return true end
  for _, cond in ipairs(f.data) do
    if cond.key and not key_may_hold(data, cond.key, cond[2]) then return false end
  end
  local ok, doc = pcall(cjson.decode, data)
  if not ok then return false end
  for _, cond in ipairs(f.data) do
    if not deep_equal(at_path(doc, cond[1]), cond[2]) then return false end
  end
  return true
end

-- fields(f, indexed) -> names, at: the record fields a query's checks read, and each one's
-- position in the HMGET reply. The first is one every record has (state, queue, klass or data),
-- so a nil there means the record is gone; each field costs a lookup, so only those needed are
-- read (`indexed`: the class index holds only the queue's jobs of the class range already).
local function fields(f, indexed)
  local names, at = {}, {}
  local function need(name)
    if at[name] == nil then names[#names + 1] = name; at[name] = #names end
  end
  if f.state ~= nil then need('state'); need('expires') end
  if f.queue ~= nil and not indexed then need('queue') end
  if f.klass ~= nil and not indexed then need('klass') end
  if f.need_data then need('data') end
  if #names == 0 then need('state') end
  if f.worker ~= nil then need('worker') end
  if f.since ~= nil or f['until'] ~= nil then need('state'); need('time'); need('failure') end
  return names, at
end

-- last_change(h, at) -> when the job last changed state: its failure for a failed job, else its
-- last put, pop, completion or retry (the record's time).
local function last_change(h, at)
  local t = tonumber(h[at.time]) or 0
  local failure = h[at.failure]
  if h[at.state] == 'failed' and failure then
    local w = tonumber(string.match(failure, '"when":([%d%.eE+-]+)'))
    if w and w > t then t = w end
  end
  return t
end

-- use_fields(ctx, indexed): read the fields the filters need (see `fields`) from now on.
local function use_fields(ctx, indexed)
  ctx.names, ctx.at = fields(ctx.f, indexed)
  ctx.one = #ctx.names == 1 and ctx.names[1] or nil
end

-- load(ctx, jid) -> the job's fields ctx.names (one field: HGET into a reused table).
local function load(ctx, jid)
  if ctx.one then
    ctx.row[1] = redis.call('HGET', ctx.jkey .. jid, ctx.one)
    return ctx.row
  end
  return redis.call('HMGET', ctx.jkey .. jid, unpack(ctx.names))
end

-- matches(ctx, jid, h, skip_tag) -> the job (its fields h, see `fields`) passes every filter.
local function matches(ctx, jid, h, skip_tag)
  local f, at = ctx.f, ctx.at
  if not h[1] then return false end
  if f.queue ~= nil and at.queue and h[at.queue] ~= f.queue then return false end
  if f.klass ~= nil and at.klass then
    local klass = h[at.klass] or ''
    if f.prefix then
      if string.sub(klass, 1, #f.klass) ~= f.klass then return false end
    elseif klass ~= f.klass then
      return false
    end
  end
  if f.state ~= nil and QE.state_of({state = h[at.state], expires = h[at.expires]}) ~= f.state then return false end
  if f.worker ~= nil and h[at.worker] ~= f.worker then return false end
  if f.since ~= nil or f['until'] ~= nil then
    local t = last_change(h, at)
    if (f.since ~= nil and t < f.since) or (f['until'] ~= nil and t > f['until']) then return false end
  end
  if f.tag ~= nil and not skip_tag and not redis.call('ZSCORE', QE.kt(f.tag), jid) then return false end
  if f.need_data then
    local data = h[at.data]
    if not data or not data_matches(data, f) then return false end
  end
  return true
end

-- ---------------------------------------------------------------- one call's work
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- visit(ctx, jid, h, skip_tag) -> true when the call must stop here (limit reached or time up);
-- appends the job when it matches.
local function visit(ctx, jid, h, skip_tag)
  ctx.scanned = ctx.scanned + 1
  if matches(ctx, jid, h, skip_tag) then
    local j = QE.job(jid)
    if j then ctx.out[#ctx.out + 1] = QE.job_json(j, false) end
  end
  if #ctx.out >= ctx.limit then return true end
  if ctx.scanned % 16 == 0 and clock() > ctx.deadline then return true end
  return false
end

-- small_sets(f) -> {size, fetch, tag} of the smallest state, tag or worker set that holds
-- every job the filters can match, or nil.
local function small_sets(f)
  local best = nil
  local function offer(size, fetch, is_tag)
    if best == nil or size < best.size then best = {size = size, fetch = fetch, tag = is_tag} end
  end
  if f.worker ~= nil then
    local key = QE.kw(f.worker)
    offer(redis.call('ZCARD', key), function() return redis.call('ZRANGE', key, 0, -1) end)
  end
  if f.tag ~= nil then
    local key = QE.kt(f.tag)
    offer(redis.call('ZCARD', key), function() return redis.call('ZRANGE', key, 0, -1) end, true)
  end
  local sub = f.state and FIND_STATES[f.state]
  if sub == false then
    local key = QE.k(f.state == 'failed' and 'failed' or 'completed')
    offer(redis.call('ZCARD', key), function() return redis.call('ZRANGE', key, 0, -1) end)
  elseif sub then
    local queues = f.queue and {f.queue} or search_queues()
    local lo, hi = '-inf', '+inf'
    if f.state == 'running' then lo = '(' .. QE.nows elseif f.state == 'stalled' then hi = QE.nows end
    local size = 0
    for _, q in ipairs(queues) do size = size + redis.call('ZCOUNT', QE.kq(q, sub), lo, hi) end
    offer(size, function()
      local all = {}
      for _, q in ipairs(queues) do
        for _, jid in ipairs(redis.call('ZRANGEBYSCORE', QE.kq(q, sub), lo, hi)) do all[#all + 1] = jid end
      end
      return all
    end)
  end
  return best
end

-- run_small(ctx, set, after) -> cursor | nil: the set read whole (each job's class only),
-- ordered by member, visited from `after` on.
local function run_small(ctx, set, after)
  local lo, hi = class_range(ctx.f)
  local cands = {}
  for _, jid in ipairs(set.fetch()) do
    local klass = redis.call('HGET', QE.kj(jid), 'klass')
    if klass then
      local m = klass .. '\0' .. jid
      if (after == nil or lex_lt(after, m)) and in_range(m, lo, hi) then cands[#cands + 1] = {m = m, jid = jid} end
    end
  end
  table.sort(cands, member_order())
  for _, c in ipairs(cands) do
    if visit(ctx, c.jid, load(ctx, c.jid), set.tag) then return 'A' .. c.m end
  end
  return nil
end

-- class_plan(f, after, count) -> {start, max, live = {{q}}, total}: where the class index
-- ranges of the queues resume; with `count`, how many entries they still hold (total) and only
-- the queues that hold some are live (a lookup per queue: the first call needs it to choose a
-- source, later calls find exhausted ranges as they read).
local function class_plan(f, after, count)
  local lo, hi = class_range(f)
  local start = '-'
  if after ~= nil and (lo == nil or not lex_lt(after, lo)) then start = '(' .. after
  elseif lo ~= nil then start = '[' .. lo end
  local plan = {start = start, max = hi and ('(' .. hi) or '+', live = {}, total = 0}
  for _, q in ipairs(f.queue and {f.queue} or search_queues()) do
    local n = count and redis.call('ZLEXCOUNT', QE.kidx(q), plan.start, plan.max) or 1
    if n > 0 then
      plan.live[#plan.live + 1] = {q = q}
      plan.total = plan.total + n
    end
  end
  return plan
end

-- class_round(ctx, plan, start, each) -> reads, bound: up to `each` entries of every queue's
-- range after `start` (reads: {q, got}); together they are complete up to `bound`, the smallest
-- last entry of a queue that has more (nil: every range is exhausted).
local function class_round(ctx, plan, start, each)
  local reads, bound = {}, nil
  for _, e in ipairs(plan.live) do
    if not e.done then
      local got = redis.call('ZRANGEBYLEX', QE.kidx(e.q), start, plan.max, 'LIMIT', 0, each)
      reads[#reads + 1] = {e = e, q = e.q, got = got}
      if #got >= each and (bound == nil or lex_lt(got[#got], bound)) then bound = got[#got] end
    end
  end
  -- a queue is exhausted when it had fewer entries left than asked and the round covers them
  -- all (entries after the bound are read again next round)
  for _, r in ipairs(reads) do
    if #r.got < each and (bound == nil or #r.got == 0 or not lex_lt(bound, r.got[#r.got])) then r.e.done = true end
  end
  return reads, bound
end

-- check_entry(ctx, q, m) -> the job when the index entry m of queue q matches (nil otherwise).
local function check_entry(ctx, q, m)
  local klass, jid
  if ctx.exact then
    klass, jid = ctx.f.klass, string.sub(m, ctx.exact)
  else
    klass, jid = split_member(m)
  end
  if jid == nil then return nil end
  local h = load(ctx, jid)
  ctx.scanned = ctx.scanned + 1
  -- an entry the record disagrees with (written around the engine) is passed over when the
  -- filters read the field anyway
  local at = ctx.at
  if (at.queue and h[at.queue] ~= q) or (at.klass and h[at.klass] ~= klass) or not matches(ctx, jid, h, false) then
    return nil
  end
  return jid
end

-- run_class(ctx, plan) -> cursor | nil: the queues' class index ranges in rounds of a few
-- entries per queue, each round checked whole (so no sorting: the round is complete up to its
-- bound) until the limit, the time budget or read_max. When a round finds more matches than
-- the limit allows, they are sorted and the cursor stops at the last one kept.
local function run_class(ctx, plan)
  if #plan.live == 0 then return nil end
  if ctx.f.klass and not ctx.f.prefix then ctx.exact = #ctx.f.klass + 2 end   -- members are klass NUL jid
  local start, read = plan.start, 0
  local each = math.max(8, math.floor(48 / #plan.live))
  local order = member_order()
  while true do
    local reads, bound = class_round(ctx, plan, start, math.min(each, ctx.read_max - read))
    local found = {}
    for _, r in ipairs(reads) do
      local cut = bound ~= nil and #r.got > 0 and lex_lt(bound, r.got[#r.got])
      for _, m in ipairs(r.got) do
        if cut and lex_lt(bound, m) then break end   -- the rest of this queue's read: next round
        local jid = check_entry(ctx, r.q, m)
        if jid then found[#found + 1] = {m = m, jid = jid} end
        read = read + 1
      end
    end
    local room = ctx.limit - #ctx.out
    if #found >= room then
      table.sort(found, order)
      for i = 1, room do
        local j = QE.job(found[i].jid)
        if j then ctx.out[#ctx.out + 1] = QE.job_json(j, false) end
      end
      return 'A' .. found[room].m
    end
    for _, it in ipairs(found) do
      local j = QE.job(it.jid)
      if j then ctx.out[#ctx.out + 1] = QE.job_json(j, false) end
    end
    if bound == nil then return nil end
    if read >= ctx.read_max or clock() > ctx.deadline then return 'A' .. bound end
    start = '(' .. bound
  end
end

-- ordered sets walked in their own order (cursor B): kind -> key
local function ordered_key(kind, name)
  if kind == 'tag' then return QE.kt(name) end
  if kind == 'failed' then return QE.k('failed') end
  if kind == 'complete' then return QE.k('completed') end
  QE.raise('InvalidArgument', 'cursor: not a cursor find returned')
end

-- ordered_candidates(f) -> {kind, name, size} of the smallest tag / failed / complete set.
local function ordered_candidates(f)
  local best = nil
  local function offer(kind, name)
    local size = redis.call('ZCARD', ordered_key(kind, name))
    if best == nil or size < best.size then best = {kind = kind, name = name, size = size} end
  end
  if f.tag ~= nil then offer('tag', f.tag) end
  if f.state == 'failed' then offer('failed', '') end
  if f.state == 'complete' then offer('complete', '') end
  return best
end

-- resume_rank(key, score, jid) -> the rank of the first entry after (score, jid).
local function resume_rank(key, score, jid)
  local cur = redis.call('ZSCORE', key, jid)
  if cur and tonumber(cur) == tonumber(score) then return redis.call('ZRANK', key, jid) + 1 end
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local hi = lo + redis.call('ZCOUNT', key, score, score)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZRANGE', key, mid, mid)[1]
    if m == nil or lex_lt(jid, m) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- run_ordered(ctx, b) -> cursor | nil: the set in (score, jid) order from b's position, only
-- entries scored at most b.t0.
local function run_ordered(ctx, b)
  local key = ordered_key(b.kind, b.name)
  local rank = 0
  if b.score ~= nil then rank = resume_rank(key, b.score, b.jid) end
  local head = 'B' .. b.kind .. '\0' .. b.name .. '\0' .. b.t0 .. '\0'
  local t0 = tonumber(b.t0)
  local skip_tag = b.kind == 'tag'
  while true do
    local got = redis.call('ZRANGE', key, rank, rank + 63, 'WITHSCORES')
    if #got == 0 then return nil end
    for i = 1, #got, 2 do
      local jid, score = got[i], got[i + 1]
      if tonumber(score) > t0 then return nil end
      if visit(ctx, jid, load(ctx, jid), skip_tag) then return head .. score .. '\0' .. jid end
    end
    rank = rank + #got / 2
  end
end

local function parse_cursor(raw, f)
  if raw == nil or raw == '' then return nil end
  local kind = string.sub(raw, 1, 1)
  if kind == 'A' then
    local m = string.sub(raw, 2)
    if split_member(m) == nil then QE.raise('InvalidArgument', 'cursor: not a cursor find returned') end
    return {a = m}
  elseif kind == 'B' then
    local b = {}
    b.kind, b.name, b.t0, b.score, b.jid = string.match(string.sub(raw, 2), '^(%l+)%z([^%z]*)%z([^%z]+)%z([^%z]+)%z(.+)$')
    if b.kind == nil or tonumber(b.t0) == nil or tonumber(b.score) == nil then
      QE.raise('InvalidArgument', 'cursor: not a cursor find returned')
    end
    ordered_key(b.kind, b.name)
    if (b.kind == 'tag' and f.tag ~= b.name) or (b.kind ~= 'tag' and f.state ~= b.kind) then
      QE.raise('InvalidArgument', 'cursor: it belongs to a find with other filters')
    end
    return {b = b}
  end
  QE.raise('InvalidArgument', 'cursor: not a cursor find returned')
end

-- find(filters_json, cursor, limit, read_max, set_max, budget_ms) -> [body, cursor | nil]
--   filters: {queue, state, klass, prefix (klass is a prefix), tag, worker,
--             data: [[[key, ...], value], ...], text, since, until} (all optional)
--   body: {"jobs": [job (QE.job_json)], "scanned": entries looked at, "source": "set" |
--   "class" | "ordered"}; cursor: where the next call goes on (nil: every match was returned).
--   Stops at `limit` matches, after budget_ms of work, or at the end of what it read (at most
--   read_max class index entries; a state/tag/worker set of at most set_max is read whole).
function QE.cmd_find(raw, cursor, limit, read_max, set_max, budget)
  local f = parse_filters(raw)
  local ctx = {f = f, out = {}, scanned = 0}
  ctx.limit = QE.integer(limit ~= '' and limit or 25, 'limit', 1, FIND_MAX_LIMIT)
  ctx.read_max = QE.integer(read_max ~= '' and read_max or 1000, 'read_max', 1, READ_LIMIT)
  set_max = QE.integer(set_max ~= '' and set_max or 200, 'set_max', 0, SET_LIMIT)
  budget = QE.number(budget ~= '' and budget or 1, 'budget_ms', 0.1)
  local at = parse_cursor(cursor, f)
  ctx.deadline = clock() + budget / 1000
  use_fields(ctx, false)
  ctx.jkey, ctx.row = QE.kj(''), {}
  local source, nxt
  if at ~= nil and at.b ~= nil then
    source, nxt = 'ordered', run_ordered(ctx, at.b)
  else
    local after = at and at.a
    local set = small_sets(f)
    if set ~= nil and set.size <= set_max then
      source, nxt = 'set', run_small(ctx, set, after)
    else
      local plan = class_plan(f, after, after == nil)
      local b = after == nil and ordered_candidates(f) or nil
      if b ~= nil and b.size < plan.total then
        local last = redis.call('ZRANGE', ordered_key(b.kind, b.name), -1, -1, 'WITHSCORES')
        local t0 = QE.now
        if #last > 0 and tonumber(last[2]) > t0 then t0 = tonumber(last[2]) end
        b.t0 = QE.fnum(t0)
        source, nxt = 'ordered', run_ordered(ctx, b)
      else
        use_fields(ctx, true)
        source, nxt = 'class', run_class(ctx, plan)
      end
    end
  end
  return {'{"jobs":[' .. table.concat(ctx.out, ',') .. '],"scanned":' .. ctx.scanned .. ',"source":"'
    .. source .. '"}', nxt or false}
end

-- find.match(filters_json, jid...) -> {"matching": [jid], "missing": [jid]}: which of the given
--   jobs (at most 500) pass `find`'s filters now, by `find`'s own checks, in the order given, and
--   which no longer exist (the others exist but no longer match). Reads only.
function QE.cmd_find_match(raw, jids)
  local f = parse_filters(raw)
  if #jids > FIND_MAX_LIMIT then
    QE.raise('InvalidArgument', 'jids: at most ' .. FIND_MAX_LIMIT .. ' per call, got ' .. #jids)
  end
  for _, jid in ipairs(jids) do QE.existing_name(jid, 'jid') end
  local ctx = {f = f, jkey = QE.kj(''), row = {}}
  use_fields(ctx, false)
  local matching, missing = {}, {}
  for _, jid in ipairs(jids) do
    local h = load(ctx, jid)
    if not h[1] then
      missing[#missing + 1] = jid
    elseif matches(ctx, jid, h, false) then
      matching[#matching + 1] = jid
    end
  end
  return '{"matching":' .. QE.list_json(matching) .. ',"missing":' .. QE.list_json(missing) .. '}'
end
