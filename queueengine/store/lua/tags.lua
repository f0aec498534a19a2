-- queueengine Lua library, part 3b: tags, tracking and free-form history entries.
-- Tag counters in P.."tags" are exact (incremented when a job gains a tag, decremented when
-- it loses one, removed at 0); the index helpers live in job.lua.

-- tag('add'|'remove', jid, tag...) -> JSON tag list; tag('get', tag, offset, count) ->
-- {total, jobs}; tag('top', offset, count) -> JSON list of tags used by >= 1 job.
function QE.cmd_tag(action, a, b, c, rest)
  if action == 'get' then
    QE.name(a, 'tag')
    local offset = QE.integer(b ~= '' and b or 0, 'offset', 0)
    local count = QE.integer(c ~= '' and c or 25, 'count', 0)
    local jobs = redis.call('ZRANGE', QE.kt(a), offset, offset + count - 1)
    return '{"total":' .. redis.call('ZCARD', QE.kt(a)) .. ',"jobs":' .. QE.list_json(jobs) .. '}'
  elseif action == 'top' then
    local offset = QE.integer(a ~= '' and a or 0, 'offset', 0)
    local count = QE.integer(b ~= '' and b or 25, 'count', 0)
    return QE.list_json(redis.call('ZREVRANGEBYSCORE', QE.k('tags'), '+inf', 1, 'LIMIT', offset, count))
  elseif action ~= 'add' and action ~= 'remove' then
    QE.raise('InvalidArgument', "action must be add, remove, get or top, got " .. tostring(action))
  end
  local jid = QE.name(a, 'jid')
  for _, t in ipairs(rest) do QE.name(t, 'tag') end
  local j = QE.existing_job(jid)
  local tags = QE.decode_list(j.tags)
  local has = {}
  for _, t in ipairs(tags) do has[t] = true end
  local changed = {}
  if action == 'add' then
    for _, t in ipairs(rest) do
      if not has[t] then
        has[t] = true; tags[#tags + 1] = t; changed[#changed + 1] = t
        QE.tag_index_add(jid, t)
      end
    end
  else
    local drop = {}
    for _, t in ipairs(rest) do if has[t] then drop[t] = true; changed[#changed + 1] = t end end
    local keep = {}
    for _, t in ipairs(tags) do
      if drop[t] then QE.tag_index_remove(jid, t) else keep[#keep + 1] = t end
    end
    tags = keep
  end
  local out = QE.list_json(tags)
  redis.call('HSET', QE.kj(jid), 'tags', out)
  if #changed > 0 then
    QE.event(action == 'add' and 'tagged' or 'untagged', jid, j.queue, {tags = changed})
  end
  return out
end

-- track() -> {jobs:[job], expired:[jid]}; track('track'|'untrack', jid) -> 1|0
function QE.cmd_track(action, jid)
  if action == nil or action == '' then
    local jobs, expired = {}, {}
    for _, t in ipairs(redis.call('ZRANGE', QE.k('tracked'), 0, -1)) do
      local j = QE.job(t)
      if j then jobs[#jobs + 1] = QE.job_json(j, true) else expired[#expired + 1] = t end
    end
    return '{"jobs":[' .. table.concat(jobs, ',') .. '],"expired":' .. QE.list_json(expired) .. '}'
  end
  QE.name(jid, 'jid')
  if action == 'track' then
    local j = QE.existing_job(jid)
    local n = redis.call('ZADD', QE.k('tracked'), QE.nows, jid)
    QE.event('tracked', jid, j.queue)
    return n
  elseif action == 'untrack' then
    local n = redis.call('ZREM', QE.k('tracked'), jid)
    QE.event('untracked', jid, redis.call('HGET', QE.kj(jid), 'queue'))
    return n
  end
  QE.raise('InvalidArgument', "action must be 'track' or 'untrack', got " .. tostring(action))
end

-- log(jid, message, data_json|'') -> 'OK': a free-form history entry {when, what, ...data}
function QE.cmd_log(jid, message, data)
  QE.name(jid, 'jid')
  if message == nil or message == '' then QE.raise('InvalidArgument', 'message must be a non-empty string') end
  local extra = nil
  if data ~= nil and data ~= '' then
    extra = QE.json(data, 'data', 'object')
    extra.what = nil; extra.when = nil
  end
  QE.existing_job(jid)
  QE.history(jid, message, extra)
  return 'OK'
end
