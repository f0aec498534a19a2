-- queueengine Lua library, part 10: the per-queue index by class that search reads (search.lua),
-- the byte order of its members, and the commands find.classes and find.reindex.
--
-- q:<q>:byclass is a sorted set of klass .. "\0" .. jid (every score 0), so ZRANGEBYLEX walks a
-- queue's jobs class by class and, within a class, in jid order; one class (or a class prefix)
-- is one range. Every place where a job enters or leaves a queue keeps it (put, put_many,
-- put_batch, requeue/move, advance, a retry or unfail into another queue, cancel, expiry,
-- recurring spawn, import): one ZADD / ZREM per job. `byclass` (with `queues`) lists the queues
-- find looks in when no queue is given.

local CLASSES_LIMIT = 500       -- most classes find.classes lists

-- ---------------------------------------------------------------- byte order
-- Redis orders ZRANGEBYLEX members by bytes; Lua's `<` follows the server's LC_COLLATE (Redis
-- calls setlocale), so it is used only when a few probes show plain byte order (C, C.UTF-8).
local function bytes_lt(a, b)
  local n = #a
  if #b < n then n = #b end
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local NATIVE_ORDER = nil
local function native_order()
  if NATIVE_ORDER == nil then
    NATIVE_ORDER = true
    for _, p in ipairs({{'B', 'a'}, {'Z', '_'}, {'a.b', 'a_b'}, {'a b', 'aa'}, {'z', '\195\169'},
        {'A\0b', 'A\0c'}, {'a', 'a\0'}, {'-', '0'}, {'a-b', 'ab'}}) do
      if not (p[1] < p[2]) or p[2] < p[1] then NATIVE_ORDER = false end
    end
  end
  return NATIVE_ORDER
end

-- lex_lt(a, b): a sorts before b in Redis's lexicographic (byte) order.
function QE.lex_lt(a, b)
  if native_order() then return a < b end
  return bytes_lt(a, b)
end
local lex_lt = QE.lex_lt

-- member_order() -> the comparator of items {m = member} in Redis's lex order.
function QE.member_order()
  if native_order() then return function(x, y) return x.m < y.m end end
  return function(x, y) return bytes_lt(x.m, y.m) end
end

-- ---------------------------------------------------------------- the index
-- index_add(queue, klass, jid): the job enters a queue.
function QE.index_add(queue, klass, jid)
  redis.call('ZADD', QE.kidx(queue), 0, klass .. '\0' .. jid)
end

-- index_remove(queue, klass, jid): the job leaves a queue (a record without either: no-op).
function QE.index_remove(queue, klass, jid)
  if queue ~= nil and klass ~= nil then redis.call('ZREM', QE.kidx(queue), klass .. '\0' .. jid) end
end

-- index_move(jid, old_queue, old_klass, queue, klass): the job changes queue or class.
function QE.index_move(jid, oq, ok, nq, nk)
  if oq == nq and ok == nk then return end
  QE.index_remove(oq, ok, jid)
  QE.index_add(nq, nk, jid)
  redis.call('SADD', QE.k('byclass'), nq)
end

-- search_queues() -> every queue that may hold indexed jobs.
function QE.search_queues()
  local seen, out = {}, {}
  for _, q in ipairs(redis.call('SMEMBERS', QE.k('byclass'))) do
    if not seen[q] then seen[q] = true; out[#out + 1] = q end
  end
  for _, q in ipairs(redis.call('ZRANGE', QE.k('queues'), 0, -1)) do
    if not seen[q] then seen[q] = true; out[#out + 1] = q end
  end
  return out
end

-- split_member(m) -> klass, jid (a jid holds no NUL, so it follows the member's last one).
function QE.split_member(m)
  local i = string.find(m, '\0', 1, true)
  if i == nil then return nil, nil end
  if string.find(m, '\0', i + 1, true) then return string.match(m, '^(.*)%z(.*)$') end
  return string.sub(m, 1, i - 1), string.sub(m, i + 1)
end

-- find.classes(queue | '', prefix | '', limit) -> [[klass, jobs], ...]: the classes of the
-- queue's (or every queue's) jobs, any state, in byte order, each with its number of jobs;
-- at most `limit` classes per queue are looked at (one range lookup each).
function QE.cmd_find_classes(queue, prefix, limit)
  limit = QE.integer(limit ~= '' and limit or 50, 'limit', 1, CLASSES_LIMIT)
  local queues
  if queue ~= nil and queue ~= '' then queues = {QE.existing_name(queue, 'queue')} else queues = QE.search_queues() end
  local counts, names = {}, {}
  local first = (prefix ~= nil and prefix ~= '') and ('[' .. prefix) or '-'
  local max = (prefix ~= nil and prefix ~= '') and ('(' .. prefix .. '\255') or '+'
  for _, q in ipairs(queues) do
    local key, start = QE.kidx(q), first
    for _ = 1, limit do
      local m = redis.call('ZRANGEBYLEX', key, start, max, 'LIMIT', 0, 1)[1]
      if m == nil then break end
      local klass = QE.split_member(m)
      if klass == nil then break end
      local n = redis.call('ZLEXCOUNT', key, '[' .. klass .. '\0', '(' .. klass .. '\1')
      if counts[klass] == nil then names[#names + 1] = klass; counts[klass] = 0 end
      counts[klass] = counts[klass] + n
      start = '[' .. klass .. '\1'
    end
  end
  table.sort(names, QE.lex_lt)
  local out = {}
  for i = 1, math.min(#names, limit) do out[i] = '[' .. cjson.encode(names[i]) .. ',' .. counts[names[i]] .. ']' end
  return '[' .. table.concat(out, ',') .. ']'
end

-- find.reindex(scan_cursor, count) -> [next scan cursor ('0': done), jobs indexed]: adds the
-- jobs SCAN finds (about `count` keys per call) to their queue's class index; for records
-- written before the index existed. Idempotent.
function QE.cmd_find_reindex(scan_cursor, count)
  count = QE.integer(count ~= '' and count or 1000, 'count', 1, 100000)
  if not string.find(scan_cursor or '', '^%d+$') then QE.raise('InvalidArgument', 'cursor must be a SCAN cursor') end
  local pattern = string.gsub(QE.k('j:'), '[%*%?%[%]\\]', '\\%0') .. '*'
  local reply = redis.call('SCAN', scan_cursor, 'MATCH', pattern, 'COUNT', count)
  local done = 0
  for _, key in ipairs(reply[2]) do
    -- a job's own sub-keys (history list, dependency sets) answer WRONGTYPE and are passed over
    local h = redis.pcall('HMGET', key, 'queue', 'klass', 'state')
    if type(h) == 'table' and h.err == nil and h[1] and h[2] and h[3] then
      QE.index_add(h[1], h[2], string.sub(key, #QE.k('j:') + 1))
      redis.call('SADD', QE.k('byclass'), h[1])
      done = done + 1
    end
  end
  return {reply[1], done}
end
