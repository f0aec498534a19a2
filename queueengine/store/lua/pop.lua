-- queueengine Lua library, part 4b: handing out work. Promotion of scheduled jobs, reclaim of
-- expired leases, taking jobs off the work set, leasing them to a worker; pop, peek, next_due.
--
-- Each housekeeping step looks at the first member of its sorted set before anything else, so
-- a pop that finds nothing due costs one call per set, and that same call tells when the set's
-- next entry becomes due (pop returns it, so an idle worker needs no separate next_due call).

-- first_score(key) -> the lowest score of a sorted set (number), or nil when it is empty.
function QE.first_score(key)
  local f = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #f == 0 then return nil end
  return tonumber(f[2])
end

-- sooner(a, b) -> the earlier of two optional times.
function QE.sooner(a, b)
  if a == nil then return b end
  if b == nil or a < b then return a end
  return b
end

-- after_step(key, handled, n) -> when the set has its next due entry: now when the step used
-- its whole budget (more may be due), else the first score left (nil when empty).
local function after_step(key, handled, n)
  if handled >= n then return QE.now end
  return QE.first_score(key)
end

-- promote(queue, n) -> (promoted, next due time|nil): up to n scheduled jobs whose time came
-- move to waiting, in ready-time order, behind the jobs already waiting at their priority.
function QE.promote(queue, n)
  if n <= 0 then return 0, nil end
  local key = QE.kq(queue, 'scheduled')
  local first = QE.first_score(key)
  if first == nil or first > QE.now then return 0, first end
  local ready = redis.call('ZRANGEBYSCORE', key, '-inf', QE.nows, 'LIMIT', 0, n)
  local seq = QE.next_seq(#ready) - #ready
  local args = {}
  for i, jid in ipairs(ready) do
    local p = tonumber(redis.call('HGET', QE.kj(jid), 'priority')) or 0
    args[#args + 1] = QE.score(p, seq + i)
    args[#args + 1] = jid
    redis.call('HSET', QE.kj(jid), 'state', 'waiting')
    QE.event('scheduled', jid, queue)
  end
  QE.chunked('ZREM', key, ready, 1)
  QE.chunked('ZADD', QE.kq(queue, 'work'), args, 2)
  QE.wake(queue)
  return #ready, after_step(key, #ready, n)
end

-- reclaim(queue, n, out) -> (expired leases handled (at most n), next lease expiry|nil).
-- First notice (grace-period > 0): a courtesy lock_lost and the lease extended by the grace.
-- After the grace: one retry spent (not for `timeout`); retries left -> the job goes to the
-- popper (appended to `out`), or back to waiting when `out` is nil (housekeeping) or to
-- scheduled when it has a backoff; none left -> failed, keeping its last real error.
function QE.reclaim(queue, n, out)
  if n <= 0 then return 0, nil end
  local locks = QE.kq(queue, 'locks')
  local first = QE.first_score(locks)
  if first == nil or first > QE.now then return 0, first end
  local expired = redis.call('ZRANGEBYSCORE', locks, '-inf', QE.nows, 'LIMIT', 0, n)
  local grace = QE.confnum('grace-period', 10)
  for _, jid in ipairs(expired) do
    local j = QE.job(jid)
    local key = QE.kj(jid)
    if j == nil or j.state ~= 'running' then
      redis.call('ZREM', locks, jid)
    elseif grace > 0 and j.grace ~= '1' then
      local until_ = QE.now + grace
      redis.call('HSET', key, 'grace', '1', 'expires', until_)
      redis.call('ZADD', locks, until_, jid)
      if j.worker ~= '' then redis.call('ZADD', QE.kw(j.worker), until_, jid) end
      QE.history(jid, 'timed-out', {worker = j.worker})
      QE.stat_incr(queue, 'retries', 1)
      local ev = QE.event('lock_lost', jid, queue, {worker = j.worker, reason = 'stalled'})
      QE.to_worker(j.worker, ev)
      QE.event('stalled', jid, queue, {worker = j.worker, grace = grace})
    else
      local timedout = j.timedout == '1'
      if grace <= 0 and not timedout then
        QE.history(jid, 'timed-out', {worker = j.worker})
        QE.stat_incr(queue, 'retries', 1)
        local ev = QE.event('lock_lost', jid, queue, {worker = j.worker, reason = 'stalled'})
        QE.to_worker(j.worker, ev)
      end
      local remaining = tonumber(j.remaining) or 0
      if not timedout then remaining = remaining - 1 end
      redis.call('HSET', key, 'remaining', remaining, 'grace', '', 'timedout', '')
      j.remaining = remaining
      if remaining < 0 then
        QE.exhaust(jid, j, 'stalled')
      else
        QE.mt_job(queue, j.klass, 'r')
        local delay = QE.backoff_delay(j)
        if delay > 0 or out == nil then
          QE.unplace(jid, j)
          local state = QE.enqueue(jid, queue, tonumber(j.priority) or 0, delay, 0)
          redis.call('HSET', key, 'state', state, 'worker', '', 'expires', 0, 'time', QE.nows)
          QE.event('retried', jid, queue, {worker = j.worker, remaining = remaining, delay = delay})
        else
          redis.call('ZREM', locks, jid)
          if j.worker ~= '' then redis.call('ZREM', QE.kw(j.worker), jid) end
          out[#out + 1] = jid
        end
      end
    end
  end
  return #expired, after_step(locks, #expired, n)
end

-- take(queue, n, out): move up to n jids from the top of work into out, skipping (and
-- parking) jobs whose throttles are full. Looks at no more than n + housekeeping-batch jobs.
function QE.take(queue, n, out)
  if n <= 0 then return end
  local work = QE.kq(queue, 'work')
  if not QE.throttles_in_use() then
    local got = redis.call('ZPOPMIN', work, n)
    for i = 1, #got, 2 do out[#out + 1] = got[i] end
    return
  end
  local budget = n + QE.batch()
  local want = n
  while want > 0 and budget > 0 do
    local got = redis.call('ZPOPMIN', work, math.min(want, budget))
    if #got == 0 then break end
    for i = 1, #got, 2 do
      local jid, score = got[i], tonumber(got[i + 1])
      budget = budget - 1
      if QE.throttle_acquire(jid, queue, score) then
        out[#out + 1] = jid
        want = want - 1
      end
    end
  end
end

-- ROW_FIELDS: a job as pop and peek return it: the values of these record fields, in this
-- order (missing ones as nil), so the client reads them by position: the same list as
-- ROW_FIELDS in queueengine/job.py (a test compares them), read by
-- Job.from_row.
QE.ROW_FIELDS = {'jid', 'klass', 'data', 'priority', 'queue', 'state', 'worker', 'expires', 'retries',
  'remaining', 'time', 'tags', 'throttles', 'failure', 'exhausted', 'spawned_from_jid', 'backoff', 'reply',
  'result', 'scheduled', 'trace'}

-- lease(queue, worker, jids, reclaimed, out): hand jobs to a worker; appends to `out` one
-- row (ROW_FIELDS) per job, as the lease left it.
function QE.lease(queue, worker, jids, reclaimed, out)
  if #jids == 0 then return end
  local expires = QE.now + QE.heartbeat_for(queue)
  local exps = QE.fnum(expires)
  local wjson = cjson.encode(worker)
  local hist = '{"when":' .. QE.nows .. ',"what":"popped","worker":' .. wjson .. '}'
  local tail = ',"q":' .. cjson.encode(queue) .. ',"t":' .. QE.nows .. ',"worker":' .. wjson .. '}'
  local events = QE.k('events')
  local waits, lockargs, counts = {}, {}, {}
  local metrics = QE.mt_on()
  for _, jid in ipairs(jids) do
    local key = QE.kj(jid)
    local row = redis.call('HMGET', key, unpack(QE.ROW_FIELDS))
    if row[1] then
      if not reclaimed[jid] then
        local wait = QE.now - (tonumber(row[11]) or QE.now)
        waits[#waits + 1] = wait
        if metrics then QE.mt_count(counts, row[2], 'w' .. QE.mt_bucket(wait), 1) end
      end
      redis.call('HSET', key, 'state', 'running', 'worker', worker, 'expires', exps, 'time', QE.nows)
      QE.history_raw(jid, hist)
      redis.call(QE.spub(), events, '{"e":"popped","jid":' .. cjson.encode(jid) .. tail)
      row[6], row[7], row[8], row[11] = 'running', worker, exps, QE.nows
      out[#out + 1] = row
      lockargs[#lockargs + 1] = exps; lockargs[#lockargs + 1] = jid
    end
  end
  QE.chunked('ZADD', QE.kq(queue, 'locks'), lockargs, 2)
  QE.chunked('ZADD', QE.kw(worker), lockargs, 2)
  if #waits > 0 then
    QE.stat_sample('wait', queue, waits)
    QE.mt_record(queue, counts)
  end
end

-- slots(queue, want) -> how many jobs the queue may hand out now (its max-concurrency).
local function slots(queue, want)
  local maxc = tonumber(QE.config(queue .. '-max-concurrency')) or 0
  if maxc > 0 then
    local held = redis.call('ZCOUNT', QE.kq(queue, 'locks'), '(' .. QE.nows, '+inf')
    if maxc - held < want then want = maxc - held end
  end
  return want
end

-- pop_queue(queue, worker, want, out) -> (jobs added to out, next due time|nil). The due time
-- is when this queue may have more to hand out (a scheduled job, a recurring spawn, a lease
-- expiry; at max-concurrency only a lease expiry), now if it may have more already.
function QE.pop_queue(queue, worker, want, out)
  local room = slots(queue, want)
  if room <= 0 then return 0, QE.first_score(QE.kq(queue, 'locks')) end
  local jids, reclaimed = {}, {}
  local _, due = QE.reclaim(queue, room, jids)
  for _, jid in ipairs(jids) do reclaimed[jid] = true end
  local _, d2 = QE.spawn_recurring(queue, room - #jids)
  local _, d3 = QE.promote(queue, room - #jids)
  due = QE.sooner(due, QE.sooner(d2, d3))
  QE.take(queue, room - #jids, jids)
  if #jids >= room then due = QE.now end
  local before = #out
  QE.lease(queue, worker, jids, reclaimed, out)
  return #out - before, due
end

-- pop(worker, count, queue...) -> [now, due, job...]: strict priority over the queues (fills
-- from the first queue, then the next; paused queues give nothing). Each job is a row (see
-- ROW_FIELDS). due: '' when the pop filled count or nothing is pending in the queues it
-- looked at, else the seconds (string) until one of them may have more (0: now). A queue it
-- drained loses its wake tokens.
function QE.cmd_pop(args)
  local worker = QE.name(args[3], 'worker')
  local count = QE.integer(args[4], 'count', 0, 100000)
  if #args < 5 then QE.raise('InvalidArgument', 'at least one queue is required') end
  for i = 5, #args do QE.name(args[i], 'queue') end
  redis.call('ZADD', QE.k('workers'), QE.nows, worker)
  local out = {QE.nows, ''}
  local got, due = 0, nil
  local paused = QE.k('paused')
  for i = 5, #args do
    if got >= count then break end
    local queue = args[i]
    if redis.call('SISMEMBER', paused, queue) == 0 then
      local want = count - got
      local n, d = QE.pop_queue(queue, worker, want, out)
      got = got + n
      due = QE.sooner(due, d)
      -- drained (nothing more due now): drop the queue's wake tokens, so an idle worker's
      -- BLPOP blocks until the next put instead of waking for a job already taken
      if n < want and (d == nil or d > QE.now) then redis.call('DEL', QE.kq(queue, 'wake')) end
    end
  end
  if got < count and due ~= nil then out[2] = QE.fnum(math.max(due - QE.now, 0)) end
  return out
end

-- peek(queue, count) -> [job...] rows (ROW_FIELDS) of the next waiting jobs (spawns due
-- recurring jobs and promotes due scheduled ones first, bounded by count; no lease changes).
function QE.cmd_peek(queue, count)
  QE.name(queue, 'queue')
  count = QE.integer(count, 'count', 0, 100000)
  if count == 0 then return {} end
  QE.spawn_recurring(queue, count)
  QE.promote(queue, count)
  local out = {}
  for _, jid in ipairs(redis.call('ZRANGE', QE.kq(queue, 'work'), 0, count - 1)) do
    local row = redis.call('HMGET', QE.kj(jid), unpack(QE.ROW_FIELDS))
    if row[1] then out[#out + 1] = row end
  end
  return out
end

-- next_due(queue...) -> seconds (string) until a scheduled job, recurring spawn or lease
-- expiry in those queues is due (0 when one is due now), or nil when nothing is pending.
-- Paused queues are left out; a queue at its max-concurrency counts only its leases.
function QE.cmd_next_due(queues)
  local best = nil
  for _, q in ipairs(queues) do QE.name(q, 'queue') end
  local paused = QE.k('paused')
  for _, q in ipairs(queues) do
    if redis.call('SISMEMBER', paused, q) == 0 then
      local subs = {'scheduled', 'recur', 'locks'}
      if slots(q, 1) <= 0 then subs = {'locks'} end
      for _, sub in ipairs(subs) do best = QE.sooner(best, QE.first_score(QE.kq(q, sub))) end
    end
  end
  if best == nil then return nil end
  return QE.fnum(math.max(best - QE.now, 0))
end
