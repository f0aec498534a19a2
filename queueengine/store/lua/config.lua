-- queueengine Lua library, part 2: configuration (Qless option names).

QE.config_defaults = {
  ['application'] = 'queueengine',
  ['heartbeat'] = '60',
  ['grace-period'] = '10',
  ['jobs-history'] = '604800',
  ['jobs-history-count'] = '50000',
  ['max-job-history'] = '100',
  ['max-worker-age'] = '86400',
  ['stats-history'] = '30',
  ['histogram-history'] = '7',
  ['failed-history'] = '0',          -- seconds to keep failed jobs; 0 = forever
  ['failed-history-count'] = '0',    -- failed jobs to keep; 0 = no limit
  ['housekeeping-batch'] = '100',    -- most items one housekeeping step handles per call
  ['max-payload-bytes'] = '0',       -- largest job data put accepts; 0 = no limit (bounds.lua)
  ['max-queue-length'] = '0',        -- most jobs a queue holds; 0 = no limit (bounds.lua)
  ['metrics'] = '1',                 -- record metrics as time series (metrics.lua); 0 = off
  ['metrics-minutes'] = '1440',      -- minutes of per-minute metrics kept (24 h)
  ['metrics-hours'] = '720',         -- hours of per-hour metrics kept (30 days)
}

-- Known options: kind 'int' (whole number), 'num' (finite number) or 'str' (text); numbers
-- lie in [lo, hi] (pos: strictly above lo), text is 1..hi bytes without control characters.
-- queueengine/store/options.py holds the same table with each option's meaning (a test keeps the two
-- in step). Options not listed are free-form: applications may store any value under them.
local DECADE, COUNT = 315360000, 1000000000  -- ten years (recoverable mode's claim lease), 1e9
QE.config_spec = {
  ['application'] = {kind = 'str', hi = 200},
  ['heartbeat'] = {kind = 'num', lo = 0, pos = true, hi = DECADE},
  ['grace-period'] = {kind = 'num', lo = 0, hi = DECADE},
  ['jobs-history'] = {kind = 'int', lo = 0, hi = DECADE},
  ['jobs-history-count'] = {kind = 'int', lo = 0, hi = COUNT},
  ['max-job-history'] = {kind = 'int', lo = 0, hi = COUNT},
  ['max-worker-age'] = {kind = 'int', lo = 0, hi = DECADE},
  ['stats-history'] = {kind = 'int', lo = 0, hi = 3650},
  ['histogram-history'] = {kind = 'int', lo = 0, hi = 3650},
  ['failed-history'] = {kind = 'int', lo = 0, hi = DECADE},
  ['failed-history-count'] = {kind = 'int', lo = 0, hi = COUNT},
  ['housekeeping-batch'] = {kind = 'int', lo = 1, hi = 100000},
  ['max-payload-bytes'] = {kind = 'int', lo = 0, hi = 536870912},
  ['max-queue-length'] = {kind = 'int', lo = 0, hi = COUNT},
  ['metrics'] = {kind = 'int', lo = 0, hi = 1},
  ['metrics-minutes'] = {kind = 'int', lo = 1, hi = 10080},
  ['metrics-hours'] = {kind = 'int', lo = 1, hi = 8784},
}
-- Per-queue options: '<queue>-' .. suffix.
QE.queue_option_spec = {
  ['heartbeat'] = QE.config_spec['heartbeat'],
  ['max-concurrency'] = {kind = 'int', lo = 0, hi = COUNT},
  ['max-queue-length'] = QE.config_spec['max-queue-length'],
}

-- option_spec(name) -> the spec of a known option (or per-queue form), else nil (free-form).
function QE.option_spec(name)
  local spec = QE.config_spec[name]
  if spec ~= nil then return spec end
  for suffix, s in pairs(QE.queue_option_spec) do
    local n = #suffix + 1
    if #name > n and string.sub(name, -n) == '-' .. suffix then return s end
  end
  return nil
end

-- canonical(v): the shortest decimal text that reads back as v ('60', '0.5').
local function canonical(v)
  if v == math.floor(v) then return string.format('%d', v) end
  for p = 1, 17 do
    local s = string.format('%.' .. p .. 'g', v)
    if tonumber(s) == v then return s end
  end
  return string.format('%.17g', v)
end

-- config_check(name, value) -> the value to store (numbers in canonical form); InvalidArgument
-- when a known option gets a value of the wrong type or out of its range.
function QE.config_check(name, value)
  local spec = QE.option_spec(name)
  if spec == nil then return value end
  if spec.kind == 'str' then
    if #value == 0 or #value > spec.hi or string.find(value, '%c') then
      raise('InvalidArgument', name .. ' must be text of 1 to ' .. spec.hi
        .. ' bytes without control characters')
    end
    return value
  end
  local v
  if spec.kind == 'int' then
    if string.find(value, '^%-?%d+$') then v = tonumber(value) end
  elseif string.find(value, '^%-?[%d.]+[eE]?[%-+]?%d*$') then
    v = tonumber(value)
  end
  local what = spec.kind == 'int' and 'an integer' or 'a number'
  if v == nil or v ~= v or v == math.huge or v == -math.huge then
    raise('InvalidArgument', name .. ' must be ' .. what .. ', got ' .. value)
  end
  if v < spec.lo or (spec.pos and v <= spec.lo) or v > spec.hi then
    local low = spec.pos and ('> ' .. spec.lo) or ('>= ' .. spec.lo)
    raise('InvalidArgument', name .. ' must be ' .. what .. ' ' .. low .. ' and <= ' .. spec.hi .. ', got ' .. value)
  end
  return canonical(v)
end

-- config(name): the option's value (string) or nil; read once per script call.
function QE.config(name)
  if QE._cfg == nil then
    QE._cfg = {}
    local raw = redis.call('HGETALL', QE.k('config'))
    for i = 1, #raw, 2 do QE._cfg[raw[i]] = raw[i + 1] end
  end
  local v = QE._cfg[name]
  if v == nil then v = QE.config_defaults[name] end
  return v
end

-- confnum(name, default): the option as a number (default when unset or not numeric).
function QE.confnum(name, default)
  local v = tonumber(QE.config(name))
  if v == nil then return default end
  return v
end

-- heartbeat_for(queue): the lease length of the queue's jobs (<queue>-heartbeat, else
-- heartbeat); a stored value that is not a positive number (written before values were
-- checked) counts as unset, so no lease is ever born expired.
function QE.heartbeat_for(queue)
  local v = tonumber(QE.config(queue .. '-heartbeat'))
  if v == nil or not (v > 0) then v = QE.confnum('heartbeat', 60) end
  if not (v > 0) then v = 60 end
  return v
end

function QE.batch()
  local n = math.floor(QE.confnum('housekeeping-batch', 100))
  if n < 1 then n = 1 end
  return n
end

-- config.get([name]) -> value string | nil, or (no name) JSON object of every option.
function QE.config_get(name)
  if name ~= nil and name ~= '' then return QE.config(QE.name(name, 'option')) end
  QE.config('heartbeat')
  local all = {}
  for k, v in pairs(QE.config_defaults) do all[k] = v end
  for k, v in pairs(QE._cfg) do all[k] = v end
  return cjson.encode(all)
end

-- config.set(name, value) -> 'OK'; event "config" {option, value}.
-- A known option's value is checked (type and range) and stored in canonical form; a
-- refused value raises InvalidArgument and changes nothing.
function QE.config_set(name, value)
  QE.name(name, 'option')
  if value == nil then raise('InvalidArgument', 'value is required') end
  value = QE.config_check(name, value)
  redis.call('HSET', QE.k('config'), name, value)
  QE._cfg = nil
  QE.event('config', nil, nil, {option = name, value = value})
  return 'OK'
end

-- config.unset(name) -> 'OK'; event "config" {option, unset=true}.
function QE.config_unset(name)
  QE.name(name, 'option')
  redis.call('HDEL', QE.k('config'), name)
  QE._cfg = nil
  QE.event('config', nil, nil, {option = name, unset = true})
  return 'OK'
end

-- config.clear() -> number of stored options removed; every option is back to its default
-- (free-form ones are gone); one event "config" {cleared=n}.
function QE.config_clear(extra)
  if extra ~= nil then raise('InvalidArgument', 'arguments: config.clear takes none') end
  local n = redis.call('HLEN', QE.k('config'))
  redis.call('DEL', QE.k('config'))
  QE._cfg = nil
  QE.event('config', nil, nil, {cleared = n})
  return n
end

-- config.stored() -> JSON object of the stored options only (no defaults).
function QE.config_stored(extra)
  if extra ~= nil then raise('InvalidArgument', 'arguments: config.stored takes none') end
  local raw = redis.call('HGETALL', QE.k('config'))
  if #raw == 0 then return '{}' end
  local out = {}
  for i = 1, #raw, 2 do out[raw[i]] = raw[i + 1] end
  return cjson.encode(out)
end
