-- queueengine Lua library, part 1: namespace, keys, time, errors, helpers, events.
--
-- Calling convention (decision, see docs/engine.md):
--   FCALL qe_<sha8> 1 <prefix> <command> <now> <args...>     (Redis >= 7: a loaded library)
--   EVALSHA <sha> 1 <prefix> <command> <now> <args...>       (Redis 6.2: the same code as a script)
--   KEYS[1] = the namespace's key prefix "qe:{<ns>}:" (it carries the hash tag, so a cluster
--             client routes the call to the namespace's slot; every key the script touches
--             starts with it).
--   ARGV[1] = command name, ARGV[2] = now ('' = read the server's TIME), ARGV[3..] = args.
-- Replies are JSON strings, plain strings or integers, as documented per command.
-- Errors are raised with error('QE:<Kind>: <message>') where Kind names the Python exception
-- (InvalidArgument, JobNotFound, LostLease, WrongState, DuplicateJob, ...).
--
-- Key schema (mirrored by queueengine/store/keys.py; P = KEYS[1] = "qe:{<ns>}:"):
--   P.."config"               hash   option -> value
--   P.."seq"                  string per-namespace counter (FIFO tie-break within a priority)
--   P.."queues"               zset   queue -> time first seen
--   P.."paused"               set    paused queue names
--   P.."q:<q>:work"           zset   jid -> -priority*2^40 + seq   (lowest pops first)
--   P.."q:<q>:locks"          zset   jid -> lease expiry
--   P.."q:<q>:scheduled"      zset   jid -> ready time
--   P.."q:<q>:depends"        zset   jid -> time it entered depends
--   P.."q:<q>:recur"          zset   template jid -> next spawn time
--   P.."q:<q>:throttled"      zset   jid -> its work score (waiting for a throttle slot)
--   P.."q:<q>:wake"           list   wake tokens for blocked workers (capped at 64)
--   P.."q:<q>:byclass"        zset   klass.."\0"..jid, score 0: the queue's jobs (any state) by class (find)
--   P.."byclass"              set    queues that have a q:<q>:byclass index
--   P.."j:<jid>"              hash   job record (field history: its first history entry)
--   P.."j:<jid>:history"      list   JSON history entries {when, what, ...} after the first
--   P.."j:<jid>:dependencies" set    jids this job waits on
--   P.."j:<jid>:dependents"   set    jids waiting on this job
--   P.."r:<jid>"              hash   recurring template
--   P.."t:<tag>"              zset   jid -> time tagged
--   P.."tags"                 zset   tag -> number of jobs carrying it (exact; 0 removed)
--   P.."tracked"              zset   jid -> time tracked
--   P.."completed"            zset   jid -> completion time
--   P.."failed"               zset   jid -> failure time (retention)
--   P.."failures"             set    failure groups
--   P.."f:<group>"            list   jids, newest first
--   P.."workers"              zset   worker -> last seen
--   P.."w:<worker>:jobs"      zset   jid -> lease expiry
--   P.."w:<worker>:info"      string JSON info given at registration
--   P.."s:wait:<day>:<q>"     hash   total, mean, vk, histogram buckets (s0.., m1.., h1.., d1..)
--   P.."s:run:<day>:<q>"      hash   same, for run times
--   P.."s:stats:<day>:<q>"    hash   failures, failed, retries
--   P.."s:done:<minute>"      hash   queue -> jobs finished in that minute (kept 2 hours)
--   P.."s:failed:<minute>"    hash   queue -> jobs failed in that minute (kept 2 hours)
--   P.."mt:m:<minute>:<q>"    hash   metrics of a minute: w<i>:k x<i>:k y<i>:k buckets, f:k r:k counts (k: class id)
--   P.."mt:h:<hour>:<q>"      hash   the same for an hour (metrics.lua)
--   P.."mt:classes"           hash   job class -> class id
--   P.."mt:total:<q>"         hash   finished hours folded in (monotonic; '@' = last hour folded)
--   P.."mt:gm:<minute>"       hash   failure group -> jobs failed in that minute
--   P.."mt:gh:<hour>"         hash   failure group -> jobs failed in that hour
--   P.."s:wdone:<minute>"     hash   worker -> jobs it completed in that minute (kept 2 hours)
--   P.."s:wfailed:<minute>"   hash   worker -> its jobs that failed in that minute (kept 2 hours)
--   P.."throttles"            set    throttle names
--   P.."th:<name>"            hash   maximum
--   P.."th:<name>:locks"      set    jids holding a slot
--   P.."th:<name>:pending"    zset   jid -> work score (waiting for a slot)
--   reserved for queueengine.dispatch (the delivery modes; keys.py ModeKeys), never written here:
--   P.."mode"                 string the namespace's delivery mode
--   P.."m:s:<queue>"          list   simple: whole JSON payloads
--   P.."m:s:stats:<queue>"    hash   simple: done / failed counters
--   P.."m:reply:<client>"     channel one client's replies (simple, recoverable)
--   P.."m:rc:claimed"         zset   recoverable: jid -> claim time
--   P.."m:rc:<queue>"         list   recoverable: jids waiting
--   reserved for the dashboard (jobadmin), never written here:
--   P.."dash:op:<id>"         hash   a group operation's progress (1 day)
--   P.."dash:ops"             zset   operation id -> start time
--   P.."dash:live-leader"     string the live bridge that sends (a lease renewed every second)
--   P.."dash:live-topics"     zset   live topic -> expiry (what open tabs follow)
-- Channels: P.."events" (all events), P.."w:<worker>" (lock_lost/canceled for a worker),
--           P.."reply:<jid>" (result of a job put with reply=True), P.."inbox:<name>" (the same
--           replies for every job a client put naming its inbox).

local QE = {}
local PREFIX = nil                   -- set per call by QE.dispatch (KEYS[1])
local FIFO_SPAN = 1099511627776      -- 2^40: sequence numbers per priority level
local PRIORITY_LIMIT = 4095          -- |priority| <= 4095 keeps scores exact in a double
QE.FIFO_SPAN = FIFO_SPAN
QE.PRIORITY_LIMIT = PRIORITY_LIMIT
QE.cmd = '?'

-- ---------------------------------------------------------------- keys
function QE.k(name) return PREFIX .. name end
function QE.kq(queue, sub) return PREFIX .. 'q:' .. queue .. ':' .. sub end
function QE.kidx(queue) return PREFIX .. 'q:' .. queue .. ':byclass' end
function QE.kj(jid) return PREFIX .. 'j:' .. jid end
function QE.kjh(jid) return PREFIX .. 'j:' .. jid .. ':history' end
function QE.kjdeps(jid) return PREFIX .. 'j:' .. jid .. ':dependencies' end
function QE.kjdents(jid) return PREFIX .. 'j:' .. jid .. ':dependents' end
function QE.kr(jid) return PREFIX .. 'r:' .. jid end
function QE.kt(tag) return PREFIX .. 't:' .. tag end
function QE.kf(group) return PREFIX .. 'f:' .. group end
function QE.kw(worker) return PREFIX .. 'w:' .. worker .. ':jobs' end
function QE.kwinfo(worker) return PREFIX .. 'w:' .. worker .. ':info' end
function QE.kth(name, sub)
  if sub then return PREFIX .. 'th:' .. name .. ':' .. sub end
  return PREFIX .. 'th:' .. name
end

-- ---------------------------------------------------------------- errors
-- raise(kind, message): abort the command; the Python side maps kind to an exception class.
-- Level 2 makes the reported line the caller's.
function QE.raise(kind, message)
  error('QE:' .. kind .. ': ' .. QE.cmd .. ': ' .. message, 2)
end
local raise = QE.raise

-- ---------------------------------------------------------------- names
-- The naming rule (the same in queueengine/store/args.py; documented in queueengine/store/keys.py):
-- a queue, jid, tag, failure group, worker, throttle or namespace name is 1 to 512 characters
-- (code points) of valid UTF-8, without braces, C0/C1 control characters, DEL, U+2028 or
-- U+2029, neither beginning nor ending with a space separator (Unicode Zs). A jid may not end
-- in ':history', ':dependencies' or ':dependents', a throttle not in ':locks' or ':pending'
-- (those are its own keys). Everything else is allowed: '/', '%', ':', '?', '#', quotes,
-- spaces inside, any other Unicode.
local NAME_MAX = 512
QE.NAME_MAX = NAME_MAX
local EDGE_SPACE = {[0x20] = true, [0xA0] = true, [0x1680] = true, [0x202F] = true, [0x205F] = true,
  [0x3000] = true}
for cp = 0x2000, 0x200A do EDGE_SPACE[cp] = true end
local SUFFIXES = {jid = {':history', ':dependencies', ':dependents'},
  throttle = {':locks', ':pending'}}
SUFFIXES.jids, SUFFIXES.depends, SUFFIXES.dependency = SUFFIXES.jid, SUFFIXES.jid, SUFFIXES.jid
SUFFIXES.throttles = SUFFIXES.throttle

-- utf8_scan(v) -> number of code points, first and last code point; nil + message when v is
-- not valid UTF-8 or holds a character no name may hold.
local function utf8_scan(v)
  local i, n, count, first, last = 1, #v, 0, nil, nil
  while i <= n do
    local c, cp, len = string.byte(v, i), nil, 1
    if c < 0x80 then cp = c
    elseif c >= 0xC2 and c <= 0xDF then cp, len = c - 0xC0, 2
    elseif c >= 0xE0 and c <= 0xEF then cp, len = c - 0xE0, 3
    elseif c >= 0xF0 and c <= 0xF4 then cp, len = c - 0xF0, 4
    else return nil, 'must be valid UTF-8' end
    for k = i + 1, i + len - 1 do
      local b = string.byte(v, k)
      if b == nil or b < 0x80 or b > 0xBF then return nil, 'must be valid UTF-8' end
      cp = cp * 64 + (b - 0x80)
    end
    if (len == 3 and (cp < 0x800 or (cp >= 0xD800 and cp <= 0xDFFF))) or (len == 4 and (cp < 0x10000 or cp > 0x10FFFF)) then
      return nil, 'must be valid UTF-8'
    end
    if cp < 0x20 or (cp >= 0x7F and cp <= 0x9F) or cp == 0x7B or cp == 0x7D or cp == 0x2028 or cp == 0x2029 then
      return nil, 'must not hold braces or control characters'
    end
    count = count + 1
    first = first or cp
    last = cp
    i = i + len
  end
  return count, first, last
end

-- name_problem(v, arg) -> nil when v is a legal name for the argument arg, else why not.
function QE.name_problem(v, arg)
  if type(v) ~= 'string' or v == '' then return 'must be a non-empty string' end
  local count, first, last
  local stop = string.find(v, '[%c{}\128-\255]')
  if stop == nil then                                  -- plain ASCII: the common case, one scan
    count, first, last = #v, string.byte(v, 1), string.byte(v, -1)
  elseif string.byte(v, stop) < 128 then
    return 'must not hold braces or control characters'
  else
    count, first, last = utf8_scan(v)
    if count == nil then return first end
  end
  if count > NAME_MAX then return 'must be at most ' .. NAME_MAX .. ' characters' end
  if EDGE_SPACE[first] or EDGE_SPACE[last] then return 'must not begin or end with a space' end
  local suffixes = SUFFIXES[arg]
  if suffixes and string.find(v, ':', 1, true) then
    for _, s in ipairs(suffixes) do
      if #v >= #s and string.sub(v, -#s) == s then
        return "must not end in '" .. s .. "' (the name of one of its keys)"
      end
    end
  end
  return nil
end
local name_problem = QE.name_problem

-- name(v, arg) -> v, a legal name; else InvalidArgument naming arg.
function QE.name(v, name)
  local problem = name_problem(v, name)
  if problem then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' ' .. problem .. ', got ' .. tostring(v), 2)
  end
  return v
end

-- existing_name(v, arg) -> v: a name that may already be in Redis (written before the rule, or
-- by another client), for commands that only read or delete it (get, views, cancel): any
-- non-empty string, except the reserved suffixes (such a "jid" is another job's history key).
function QE.existing_name(v, name)
  if type(v) ~= 'string' or v == '' then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a non-empty string', 2)
  end
  local suffixes = SUFFIXES[name]
  if suffixes then
    for _, s in ipairs(suffixes) do
      if #v >= #s and string.sub(v, -#s) == s then
        error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. " must not end in '" .. s .. "'", 2)
      end
    end
  end
  return v
end

-- ---------------------------------------------------------------- argument checks
local function is_finite(n) return n == n and n ~= math.huge and n ~= -math.huge end

-- number(v, name, min): a finite number >= min (when min is given).
function QE.number(v, name, min)
  local n = tonumber(v)
  if n == nil or not is_finite(n) then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a number, got ' .. tostring(v), 2)
  end
  if min ~= nil and n < min then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be >= ' .. min .. ', got ' .. tostring(v), 2)
  end
  return n
end

-- integer(v, name, min, max): a whole number in [min, max] (never beyond +-(10^14 - 1): such
-- a number still reaches Redis as digits, not as 1e+14).
local INT_LIMIT = 99999999999999
function QE.integer(v, name, min, max)
  if min == nil or min < -INT_LIMIT then min = -INT_LIMIT end
  if max == nil or max > INT_LIMIT then max = INT_LIMIT end
  local n = tonumber(v)
  if n == nil or not is_finite(n) or n ~= math.floor(n) then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a whole number, got ' .. tostring(v), 2)
  end
  if (min ~= nil and n < min) or (max ~= nil and n > max) then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be between ' .. tostring(min)
      .. ' and ' .. tostring(max) .. ', got ' .. tostring(v), 2)
  end
  return n
end

-- strict_decode(text) -> ok, value: cjson.decode refusing the tokens other JSON readers refuse
-- (NaN, Infinity, inf, hex numbers), which Redis's cjson accepts by default; the setting is
-- changed for this decode only and restored before returning (other scripts keep theirs).
local function strict_decode(text)
  local lenient = cjson.decode_invalid_numbers()
  cjson.decode_invalid_numbers(false)
  local ok, decoded = pcall(cjson.decode, text)
  cjson.decode_invalid_numbers(lenient)
  return ok, decoded
end

-- readable_json(text) -> true when other JSON readers can read text back: it decodes strictly
-- and encodes again (cjson refuses to encode what decoded to NaN or +-inf, as from 1e999).
function QE.readable_json(text)
  local ok, decoded = strict_decode(text)
  return ok and (pcall(cjson.encode, decoded))
end

-- json(v, name, kind): decode JSON (strictly: no NaN, Infinity or hex numbers);
-- kind 'array' or 'object' restricts the top-level type.
function QE.json(v, name, kind)
  local ok, decoded = strict_decode(v or '')
  if not ok then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name
      .. ' must be valid JSON (finite numbers: no NaN, Infinity or hex)', 2)
  end
  if kind ~= nil and (type(decoded) ~= 'table'
      or (kind == 'object' and #decoded > 0)                             -- a non-empty array
      or (kind == 'array' and #decoded == 0 and next(decoded) ~= nil)) then  -- an object with keys
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a JSON ' .. kind, 2)
  end
  return decoded
end

-- names(v, name): a JSON array of distinct legal names (see QE.name) -> Lua list.
function QE.names(v, name)
  local ok, decoded = pcall(cjson.decode, v or '')
  if not ok or type(decoded) ~= 'table' then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a JSON list of strings', 2)
  end
  local count = 0
  for _ in pairs(decoded) do count = count + 1 end
  if count ~= #decoded then
    error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be a JSON list', 2)
  end
  local out, seen = {}, {}
  for i, item in ipairs(decoded) do
    local problem = name_problem(item, name)
    if problem then
      error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' (item ' .. i .. ') ' .. problem, 2)
    end
    if not seen[item] then seen[item] = true; out[#out + 1] = item end
  end
  return out
end

function QE.flag(v, name)
  if v == '1' or v == 'true' then return true end
  if v == '0' or v == 'false' or v == '' or v == nil then return false end
  error('QE:InvalidArgument: ' .. QE.cmd .. ': ' .. name .. ' must be 0 or 1, got ' .. tostring(v), 2)
end

-- ---------------------------------------------------------------- small helpers
-- Cost model (measured on Redis 7.0): every redis.call costs ~1.5 µs, reading a 12-field hash
-- into Lua ~5 µs, a number -> string conversion ~1 µs and a string concatenation ~0.2 µs.
-- Hot paths therefore reuse QE.nows (the time as a string, built once per call), pass strings
-- rather than numbers to redis.call, and hand raw hash replies back to Python instead of
-- building JSON here.
function QE.fnum(n) return string.format('%.17g', n) end
function QE.day(t) local s = math.floor(t); return s - (s % 86400) end
function QE.js(s) return cjson.encode(s) end     -- a Lua string as a JSON string literal

function QE.hgetall(key)
  local raw = redis.call('HGETALL', key)
  if #raw == 0 then return nil end
  local t = {}
  for i = 1, #raw, 2 do t[raw[i]] = raw[i + 1] end
  return t
end

function QE.list_json(items)
  if #items == 0 then return '[]' end
  local parts = {}
  for i, s in ipairs(items) do parts[i] = cjson.encode(s) end
  return '[' .. table.concat(parts, ',') .. ']'
end

-- chunked(cmd, key, args, width): `cmd key args...` in calls of at most 1000 entries of
-- `width` arguments each (unpack has a stack limit).
function QE.chunked(cmd, key, args, width)
  local step = 1000 * width
  for i = 1, #args, step do
    redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

-- work score: higher priority first, then FIFO by the namespace sequence.
function QE.score(priority, seq) return -priority * FIFO_SPAN + seq end
function QE.next_seq(n)
  return redis.call('INCRBY', QE.k('seq'), n or 1)
end

-- register_queue(queue): the queue registry, and the queues find looks in (search.lua).
function QE.register_queue(queue)
  redis.call('ZADD', QE.k('queues'), 'NX', QE.nows, queue)
  redis.call('SADD', QE.k('byclass'), queue)
end

-- wake(queue): one token on the queue's wake list for workers blocked in BLPOP.
function QE.wake(queue)
  local key = QE.kq(queue, 'wake')
  if redis.call('LPUSH', key, '1') > 128 then redis.call('LTRIM', key, 0, 63) end
end

-- ---------------------------------------------------------------- events
-- Shard channels (P.."events", P.."w:<worker>") go out with SPUBLISH on a Redis >= 7 cluster
-- node (sharded pub/sub: the message stays in the namespace's shard instead of crossing the
-- whole cluster bus; subscribers SSUBSCRIBE, see queueengine/store/pubsub.py), else with PUBLISH.
-- Decided once per loaded library (a function library keeps its upvalues). Reply channels
-- (P.."reply:<jid>") always use PUBLISH: clients subscribe to them by pattern.
local SHARD_PUBLISH = nil
function QE.spub()
  if SHARD_PUBLISH == nil then
    SHARD_PUBLISH = 'PUBLISH'
    if (redis.REDIS_VERSION_NUM or 0) >= 0x070000 and pcall(redis.call, 'CLUSTER', 'MYID') then
      SHARD_PUBLISH = 'SPUBLISH'
    end
  end
  return SHARD_PUBLISH
end

-- event(name, jid, queue, extra): publish {"e","jid","q","t",...extra} on P.."events".
function QE.event(name, jid, queue, extra)
  local s = '{"e":"' .. name .. '","jid":' .. (jid and cjson.encode(jid) or 'null')
    .. ',"q":' .. (queue and queue ~= '' and cjson.encode(queue) or 'null')
    .. ',"t":' .. QE.nows
  if extra ~= nil then
    local e = cjson.encode(extra)
    if e ~= '{}' then s = s .. ',' .. string.sub(e, 2, -2) end
  end
  s = s .. '}'
  redis.call(QE.spub(), QE.k('events'), s)
  return s
end

-- to_worker(worker, payload): the same payload on the worker's own channel.
function QE.to_worker(worker, payload)
  if worker ~= nil and worker ~= '' then
    redis.call(QE.spub(), QE.k('w:' .. worker), payload)
  end
end
