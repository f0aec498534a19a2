-- queueengine Lua library, part 5: per-day, per-queue statistics (Qless layout).
-- Wait and run samples: streaming Welford (total, mean, vk) plus 148 histogram buckets:
-- s0..s59 (seconds), m1..m59 (minutes), h1..h23 (hours), d1..d6 (days; d7+ stored, not shown).
-- Stat keys expire stats-history days after their last write.

function QE.bucket(v)
  v = math.floor(v)
  if v < 0 then v = 0 end
  if v < 60 then return 's' .. v end
  if v < 3600 then return 'm' .. math.floor(v / 60) end
  if v < 86400 then return 'h' .. math.floor(v / 3600) end
  return 'd' .. math.floor(v / 86400)
end

local function stats_ttl()
  local days = QE.confnum('stats-history', 30)
  if days <= 0 then return nil end
  return math.floor(days * 86400 + 86400)
end

-- tput(kind, queue, n): per-minute throughput counters for dashboards: s:<kind>:<minute>
-- (kind done or failed) holds queue -> jobs in that minute; each key lives two hours.
function QE.tput(kind, queue, n)
  local key = QE.k('s:' .. kind .. ':' .. math.floor(QE.now / 60))
  if redis.call('HINCRBY', key, queue, n) == n then redis.call('EXPIRE', key, 7200) end
end

-- tput_worker(kind, worker, n): the same per worker: s:w<kind>:<minute> (kind done or failed)
-- holds worker -> jobs in that minute; each key lives two hours.
function QE.tput_worker(kind, worker, n)
  if worker == nil or worker == '' then return end
  local key = QE.k('s:w' .. kind .. ':' .. math.floor(QE.now / 60))
  if redis.call('HINCRBY', key, worker, n) == n then redis.call('EXPIRE', key, 7200) end
end

-- worker.throughput(worker, minutes) -> {done: [n per minute], failed: [...]} for the last
-- `minutes` whole minutes including the current one, oldest first (at most 120: kept 2 hours).
function QE.cmd_worker_throughput(worker, minutes)
  QE.existing_name(worker, 'worker')
  minutes = QE.integer(minutes ~= '' and minutes or 60, 'minutes', 1, 120)
  local now_min = math.floor(QE.now / 60)
  local done, failed = {}, {}
  for i = 1, minutes do
    local m = now_min - minutes + i
    done[i] = tonumber(redis.call('HGET', QE.k('s:wdone:' .. m), worker)) or 0
    failed[i] = tonumber(redis.call('HGET', QE.k('s:wfailed:' .. m), worker)) or 0
  end
  return '{"done":[' .. table.concat(done, ',') .. '],"failed":[' .. table.concat(failed, ',') .. ']}'
end

-- stat_sample(kind, queue, samples): add wait/run samples for today (run samples also count
-- as finished jobs in the per-minute throughput).
function QE.stat_sample(kind, queue, samples)
  if #samples == 0 then return end
  if kind == 'run' then QE.tput('done', queue, #samples) end
  local key = QE.k('s:' .. kind .. ':' .. QE.day(QE.now) .. ':' .. queue)
  local buckets, names, of = {}, {'total', 'mean', 'vk'}, {}
  for i, x in ipairs(samples) do
    local b = QE.bucket(x)
    of[i] = b
    if buckets[b] == nil then buckets[b] = 0; names[#names + 1] = b end
  end
  -- one read and one write per call: the Welford totals and the touched buckets together
  local cur = redis.call('HMGET', key, unpack(names))
  local n = tonumber(cur[1]) or 0
  local mean = tonumber(cur[2]) or 0
  local vk = tonumber(cur[3]) or 0
  local fresh = n == 0
  for i, x in ipairs(samples) do
    local b = of[i]
    n = n + 1
    local delta = x - mean
    mean = mean + delta / n
    vk = vk + delta * (x - mean)
    buckets[b] = buckets[b] + 1
  end
  local args = {'total', n, 'mean', mean, 'vk', vk}
  for i = 4, #names do
    args[#args + 1] = names[i]
    args[#args + 1] = (tonumber(cur[i]) or 0) + buckets[names[i]]
  end
  redis.call('HSET', key, unpack(args))
  if fresh then
    local ttl = stats_ttl()
    if ttl then redis.call('EXPIRE', key, ttl) end
  end
end

-- stat_incr(queue, field, n): failures / failed / retries counters for today.
function QE.stat_incr(queue, field, n)
  if queue == nil or queue == '' then return end
  if field == 'failed' then QE.tput('failed', queue, n) end
  local key = QE.k('s:stats:' .. QE.day(QE.now) .. ':' .. queue)
  if redis.call('HINCRBY', key, field, n) == n then
    local ttl = stats_ttl()
    if ttl then redis.call('EXPIRE', key, ttl) end
  end
end

local function summary(key)
  local h = QE.hgetall(key) or {}
  local count = tonumber(h.total) or 0
  local vk = tonumber(h.vk) or 0
  local std = 0
  if count > 1 then std = math.sqrt(vk / (count - 1)) end
  local hist = {}
  for i = 0, 59 do hist[#hist + 1] = tonumber(h['s' .. i]) or 0 end
  for i = 1, 59 do hist[#hist + 1] = tonumber(h['m' .. i]) or 0 end
  for i = 1, 23 do hist[#hist + 1] = tonumber(h['h' .. i]) or 0 end
  for i = 1, 6 do hist[#hist + 1] = tonumber(h['d' .. i]) or 0 end
  return {count = count, mean = tonumber(h.mean) or 0, std = std, histogram = hist}
end

-- stats(queue, date) -> {wait:{count, mean, std, histogram[148]}, run:{...}, failed,
--   failures, retries} for the UTC day containing date
function QE.cmd_stats(queue, date)
  QE.existing_name(queue, 'queue')
  local t = QE.now
  if date ~= nil and date ~= '' then t = QE.number(date, 'date') end
  local day = QE.day(t)
  local counters = QE.hgetall(QE.k('s:stats:' .. day .. ':' .. queue)) or {}
  return cjson.encode({
    wait = summary(QE.k('s:wait:' .. day .. ':' .. queue)),
    run = summary(QE.k('s:run:' .. day .. ':' .. queue)),
    failed = tonumber(counters.failed) or 0,
    failures = tonumber(counters.failures) or 0,
    retries = tonumber(counters.retries) or 0,
  })
end
