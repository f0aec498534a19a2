-- queueengine Lua library, part 3c: what a worker does with a leased job: complete (also
-- advancing to another queue), complete_many, fail, retry, heartbeat, release, timeout.

-- complete(jid, worker, queue, result_json, next_queue, delay, depends_json)
--   -> 'complete' | 'waiting' | 'scheduled' | 'depends'
function QE.cmd_complete(jid, worker, queue, result, nextq, delay, depends)
  QE.name(jid, 'jid'); QE.name(worker, 'worker'); QE.name(queue, 'queue')
  if result == nil or result == '' then result = 'null' else QE.json(result, 'result') end
  delay = QE.number(delay ~= '' and delay or 0, 'delay', 0)
  local deps = QE.names(depends ~= '' and depends or '[]', 'depends')
  if nextq == nil or nextq == '' then
    nextq = nil
    if delay > 0 then QE.raise('InvalidArgument', 'delay requires next_queue') end
    if #deps > 0 then QE.raise('InvalidArgument', 'depends requires next_queue') end
  else
    QE.name(nextq, 'next_queue')
  end
  local j = QE.running_job(jid, worker, QE.DONE_FIELDS)
  if j.queue ~= queue then
    QE.raise('WrongState', 'job ' .. jid .. ' is in queue ' .. j.queue .. ', not ' .. queue)
  end
  for _, d in ipairs(deps) do
    if d == jid then QE.raise('InvalidArgument', 'depends: a job cannot depend on itself') end
  end

  if nextq == nil then
    QE.finish(jid, j, worker, queue, result, nil, cjson.encode(worker))
    QE.expire_completed(QE.batch())
    return 'complete'
  end
  QE.unlease(jid, j)
  QE.history(jid, 'done', {worker = worker})
  local run = QE.now - (tonumber(j.time) or QE.now)
  QE.stat_sample('run', queue, {run})
  QE.mt_job(queue, j.klass, 'c', run)
  local key = QE.kj(jid)
  do
    QE.register_queue(nextq)
    if nextq ~= queue then
      local klass = redis.call('HGET', key, 'klass')
      QE.index_move(jid, queue, klass, nextq, klass)
    end
    QE.history(jid, 'put', {queue = nextq})
    local state
    local live = QE.add_dependencies(jid, deps)
    local sched = ''
    if live > 0 then
      state = 'depends'
      redis.call('ZADD', QE.kq(nextq, 'depends'), QE.nows, jid)
      if delay > 0 then sched = QE.now + delay end
    else
      state = QE.enqueue(jid, nextq, tonumber(j.priority) or 0, delay)
    end
    redis.call('HSET', key, 'state', state, 'queue', nextq, 'worker', '', 'expires', 0,
      'failure', '', 'exhausted', '', 'grace', '', 'remaining', j.retries, 'time', QE.nows,
      'scheduled', sched, 'result', result)
    QE.event('advanced', jid, queue, {to = nextq, state = state, worker = worker})
    return state
  end
end

-- finish(jid, j, worker, queue, result, runs, wjson): the final complete of a checked running
-- job (j: at least DONE_FIELDS). runs: nil (record the run time now) or a table queue ->
-- {secs = run samples, counts = metrics tally} (recorded by the caller: record_runs). wjson: the
-- worker name as JSON.
function QE.finish(jid, j, worker, queue, result, runs, wjson)
  QE.unlease(jid, j)
  QE.history_raw(jid, '{"when":' .. QE.nows .. ',"what":"done","worker":' .. wjson .. '}')
  local run = QE.now - (tonumber(j.time) or QE.now)
  if runs == nil then
    QE.stat_sample('run', queue, {run})
    QE.mt_job(queue, j.klass, 'c', run)
    QE.tput_worker('done', worker, 1)
  else
    local r = runs[queue]
    if r == nil then r = {secs = {}, counts = {}, metrics = QE.mt_on()}; runs[queue] = r end
    r.secs[#r.secs + 1] = run
    if r.metrics then QE.mt_count(r.counts, j.klass, 'x' .. QE.mt_bucket(run), 1) end
  end
  local key = QE.kj(jid)
  redis.call('HSET', key, 'state', 'complete', 'worker', '', 'expires', '0', 'time', QE.nows, 'result', result)
  if (j.failure and j.failure ~= '') or (j.exhausted and j.exhausted ~= '') or (j.grace and j.grace ~= '') then
    redis.call('HSET', key, 'failure', '', 'exhausted', '', 'grace', '')
  end
  redis.call('ZADD', QE.k('completed'), QE.nows, jid)
  redis.call(QE.spub(), QE.k('events'), '{"e":"completed","jid":' .. cjson.encode(jid) .. ',"q":'
    .. cjson.encode(queue) .. ',"t":' .. QE.nows .. ',"worker":' .. wjson .. '}')
  if j.reply == '1' then
    QE.send_reply(jid, j, '{"jid":' .. cjson.encode(jid) .. ',"state":"complete","result":' .. result .. '}')
  end
  if j.dents == '1' then QE.unblock_dependents(jid) end
end

-- check_groups(a, at, n): validate n (jid, worker, queue, result_json) groups from a[at]
-- (an empty result becomes null). No writes.
local function check_groups(a, at, n)
  for i = 1, n do
    local b = at + (i - 1) * 4
    QE.name(a[b], 'jid'); QE.name(a[b + 1], 'worker'); QE.name(a[b + 2], 'queue')
    if a[b + 3] == '' then a[b + 3] = 'null' else QE.json(a[b + 3], 'result') end
  end
end

-- complete_groups(a, at, n) -> JSON list with, per group, 'complete' or the error kind of a
-- job that could not be completed (nothing is written for that job).
local function complete_groups(a, at, n)
  local out, runs, wjsons, by_worker = {}, {}, {}, {}
  for i = 1, n do
    local b = at + (i - 1) * 4
    local jid, worker, queue = a[b], a[b + 1], a[b + 2]
    local ok, j = pcall(QE.running_job, jid, worker, QE.DONE_FIELDS)
    if not ok then
      out[i] = '"' .. (string.match(tostring(j), 'QE:(%w+):') or 'ScriptError') .. '"'
    elseif j.queue ~= queue then
      out[i] = '"WrongState"'
    else
      local wjson = wjsons[worker]
      if wjson == nil then wjson = cjson.encode(worker); wjsons[worker] = wjson end
      QE.finish(jid, j, worker, queue, a[b + 3], runs, wjson)
      by_worker[worker] = (by_worker[worker] or 0) + 1
      out[i] = '"complete"'
    end
  end
  for q, r in pairs(runs) do
    QE.stat_sample('run', q, r.secs)
    QE.mt_record(q, r.counts)
  end
  for w, count in pairs(by_worker) do QE.tput_worker('done', w, count) end
  if n > 0 then QE.expire_completed(QE.batch()) end
  return '[' .. table.concat(out, ',') .. ']'
end

-- complete_many(count, (jid, worker, queue, result_json) * count) -> JSON list with, per job,
-- 'complete' or the error kind ('LostLease', 'WrongState', 'JobNotFound') of a job that could
-- not be completed (nothing is written for that job). Arguments are all checked first.
function QE.cmd_complete_many(a)
  local n = QE.integer(a[3], 'count', 0, 10000)
  if #a ~= 3 + 4 * n then QE.raise('InvalidArgument', 'expected ' .. n .. ' (jid, worker, queue, result) groups') end
  check_groups(a, 4, n)
  return complete_groups(a, 4, n)
end

-- complete_pop(count, (jid, worker, queue, result_json) * count, worker, want, queue...)
--   -> [outcomes JSON (as complete_many), now, due, job...] (the rest as pop): a worker's
-- finished jobs and its next pop in one call. Every argument is checked before any write.
function QE.cmd_complete_pop(a)
  local n = QE.integer(a[3], 'count', 0, 10000)
  local at = 4 + 4 * n
  if #a < at + 2 then
    QE.raise('InvalidArgument', 'expected ' .. n .. ' (jid, worker, queue, result) groups, then worker, count, queue...')
  end
  check_groups(a, 4, n)
  local pa = {a[1], a[2]}
  for i = at, #a do pa[#pa + 1] = a[i] end
  QE.name(pa[3], 'worker')
  QE.integer(pa[4], 'count', 0, 100000)
  for i = 5, #pa do QE.name(pa[i], 'queue') end
  local states = complete_groups(a, 4, n)
  local out = QE.cmd_pop(pa)
  table.insert(out, 1, states)
  return out
end

-- fail(jid, worker, group, message, traceback, data_json) -> jid
function QE.cmd_fail(jid, worker, group, message, traceback, data)
  QE.name(jid, 'jid'); QE.name(worker, 'worker'); QE.name(group, 'group')
  if message == nil then QE.raise('InvalidArgument', 'message is required') end
  if data ~= nil and data ~= '' then QE.json(data, 'data') end
  local j = QE.running_job(jid, worker)
  if data ~= nil and data ~= '' then redis.call('HSET', QE.kj(jid), 'data', data) end
  local failure = {group = group, message = message, when = QE.now, worker = worker, queue = j.queue}
  if traceback ~= nil and traceback ~= '' then failure.traceback = traceback end
  QE.fail_job(jid, j, failure, nil, QE.now - (tonumber(j.time) or QE.now))
  return jid
end

-- exhaust(jid, j, reason): retries are used up. The job's last real failure (if a retry
-- recorded one) stays its failure; the exhaustion is recorded separately.
function QE.exhaust(jid, j, reason)
  local queue = j.queue
  local message = 'Job exhausted retries in queue "' .. queue .. '"'
  local failure
  local ok, last = pcall(cjson.decode, j.failure or '')
  if ok and type(last) == 'table' and last.group ~= nil then
    failure = last
    failure.when = QE.now
  else
    failure = {group = 'failed-retries-' .. queue, message = message, when = QE.now,
      worker = j.worker, queue = queue}
  end
  QE.fail_job(jid, j, failure, {when = QE.now, queue = queue, reason = reason, message = message})
end

-- retry(jid, queue, worker, delay|'' (backoff), group, message) -> remaining (negative: failed)
function QE.cmd_retry(jid, queue, worker, delay, group, message)
  QE.name(jid, 'jid'); QE.name(queue, 'queue'); QE.name(worker, 'worker')
  if delay ~= nil and delay ~= '' then delay = QE.number(delay, 'delay', 0) else delay = nil end
  if group ~= nil and group ~= '' then QE.name(group, 'group') else group = nil end
  local j = QE.running_job(jid, worker)
  local remaining = (tonumber(j.remaining) or 0) - 1
  local key = QE.kj(jid)
  -- the attempt's run time (and, unless retries ran out, one retry) in the queue it ran in
  QE.mt_job(j.queue, j.klass, remaining >= 0 and 'r' or nil, QE.now - (tonumber(j.time) or QE.now))
  QE.unplace(jid, j)
  QE.index_move(jid, j.queue, j.klass, queue, j.klass)
  if group ~= nil then
    j.failure = cjson.encode({group = group, message = message or '', when = QE.now,
      worker = worker, queue = j.queue})
    redis.call('HSET', key, 'failure', j.failure)
  end
  redis.call('HSET', key, 'remaining', remaining, 'grace', '', 'queue', queue)
  j.remaining = remaining
  j.queue = queue
  if remaining < 0 then
    QE.exhaust(jid, j, 'retry')
    return remaining
  end
  if delay == nil then delay = QE.backoff_delay(j) end
  local state = QE.enqueue(jid, queue, tonumber(j.priority) or 0, delay)
  QE.register_queue(queue)
  redis.call('HSET', key, 'state', state, 'worker', '', 'expires', 0, 'time', QE.nows)
  QE.history(jid, 'retried', {worker = worker, delay = delay})
  QE.event('retried', jid, queue, {worker = worker, remaining = remaining, delay = delay})
  return remaining
end

-- heartbeat(jid, worker, data_json|'') -> new lease expiry (string)
function QE.cmd_heartbeat(jid, worker, data)
  QE.name(jid, 'jid'); QE.name(worker, 'worker')
  if data ~= nil and data ~= '' then QE.json(data, 'data') end
  local j = QE.running_job(jid, worker, QE.BEAT_FIELDS)
  local expires = QE.fnum(QE.now + QE.heartbeat_for(j.queue))
  local key = QE.kj(jid)
  if data ~= nil and data ~= '' then redis.call('HSET', key, 'data', data) end
  if j.grace and j.grace ~= '' then
    redis.call('HSET', key, 'expires', expires, 'grace', '')
  else
    redis.call('HSET', key, 'expires', expires)
  end
  redis.call('ZADD', QE.kq(j.queue, 'locks'), expires, jid)
  redis.call('ZADD', QE.kw(worker), expires, jid)
  redis.call('ZADD', QE.k('workers'), QE.nows, worker)
  redis.call(QE.spub(), QE.k('events'), '{"e":"heartbeat","jid":' .. cjson.encode(jid) .. ',"q":'
    .. cjson.encode(j.queue) .. ',"t":' .. QE.nows .. ',"worker":' .. cjson.encode(worker)
    .. ',"expires":' .. expires .. '}')
  return expires
end

-- release(jid, worker) -> 'waiting': hand a running job back to its queue, at the front of
-- its priority band, without spending a retry (graceful worker shutdown).
function QE.cmd_release(jid, worker)
  QE.name(jid, 'jid'); QE.name(worker, 'worker')
  local j = QE.running_job(jid, worker)
  QE.unplace(jid, j)
  QE.enqueue(jid, j.queue, tonumber(j.priority) or 0, 0, 0)
  redis.call('HSET', QE.kj(jid), 'state', 'waiting', 'worker', '', 'expires', 0, 'grace', '',
    'timedout', '', 'time', QE.nows)
  QE.history(jid, 'released', {worker = worker})
  QE.event('released', jid, j.queue, {worker = worker})
  return 'waiting'
end

-- expire_lease(jid, queue, worker, reason): end a running job's lease now (its next pop
-- reclaims it, with no retry spent and no grace); tells its worker and wakes idle workers.
local function expire_lease(jid, queue, worker, reason)
  redis.call('ZADD', QE.kq(queue, 'locks'), QE.nows, jid)
  if worker ~= '' then redis.call('ZADD', QE.kw(worker), QE.nows, jid) end
  redis.call('HSET', QE.kj(jid), 'expires', QE.nows, 'grace', '1', 'timedout', '1')
  QE.history(jid, 'timed-out', {worker = worker, by = reason})
  local ev = QE.event('lock_lost', jid, queue, {worker = worker, reason = reason})
  QE.to_worker(worker, ev)
  QE.wake(queue)   -- an idle worker reclaims it now, not at its next timed look
end

-- timeout(jid...) -> 'OK': expire the leases now; the next pop reclaims them (without
-- spending a retry and without a grace period).
function QE.cmd_timeout(jids)
  local jobs = {}
  for i, jid in ipairs(jids) do
    QE.name(jid, 'jid')
    local j = QE.existing_job(jid)
    if j.state ~= 'running' then
      QE.raise('WrongState', 'job ' .. jid .. ' is not running: ' .. QE.state_of(j))
    end
    jobs[i] = j
  end
  for i, jid in ipairs(jids) do
    expire_lease(jid, jobs[i].queue, jobs[i].worker, 'timeout')
  end
  return 'OK'
end

-- sweep(older_than, limit, queue...) -> count of leases expired: the recoverable mode's
-- hand-back of claims whose worker died. In each queue, every live lease taken at least
-- older_than seconds ago (the job's claim time) is expired as timeout does, at most limit per
-- queue. Candidates are found and checked in this one call, so a claim another worker took
-- since a caller last looked is never handed back.
function QE.cmd_sweep(a)
  local older = QE.number(a[3], 'older_than', 0)
  local limit = QE.integer(a[4], 'limit', 1, 100000)
  if #a < 5 then QE.raise('InvalidArgument', 'at least one queue is required') end
  for i = 5, #a do QE.name(a[i], 'queue') end
  local cutoff = QE.now - older
  local count = 0
  for i = 5, #a do
    local queue = a[i]
    -- a lease's score is its claim time plus the queue's lease length
    local upto = '(' .. QE.fnum(cutoff + QE.heartbeat_for(queue))
    for _, jid in ipairs(redis.call('ZRANGEBYSCORE', QE.kq(queue, 'locks'), '(' .. QE.nows, upto, 'LIMIT', 0, limit)) do
      local row = redis.call('HMGET', QE.kj(jid), 'state', 'queue', 'worker', 'time')
      if row[1] == 'running' and row[2] == queue and (tonumber(row[4]) or QE.now) <= cutoff then
        expire_lease(jid, queue, row[3] or '', 'sweep')
        count = count + 1
      end
    end
  end
  return count
end
