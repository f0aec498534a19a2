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
}

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

function QE.heartbeat_for(queue)
  local v = tonumber(QE.config(queue .. '-heartbeat'))
  if v == nil then v = QE.confnum('heartbeat', 60) end
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
function QE.config_set(name, value)
  QE.name(name, 'option')
  if value == nil then raise('InvalidArgument', 'value is required') end
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
