-- queueengine Lua library, last part: the command table and the dispatcher.
-- Each entry: name -> function(a) where a = ARGV (a[1] command, a[2] now, a[3..] args).
-- Signatures and reply shapes are documented at each QE.cmd_* function.

local function rest(a, from)
  local out = {}
  for i = from, #a do out[#out + 1] = a[i] end
  return out
end

QE.api = {
  ['get'] = function(a) return QE.cmd_get(a[3]) end,
  ['multiget'] = function(a) return QE.cmd_multiget(rest(a, 3)) end,
  ['put'] = function(a) return QE.cmd_put(a, false) end,
  ['requeue'] = function(a) return QE.cmd_put(a, true) end,
  ['put_many'] = function(a) return QE.cmd_put_many(a) end,
  ['put_batch'] = function(a) return QE.cmd_put_batch(a) end,
  ['pop'] = function(a) return QE.cmd_pop(a) end,
  ['peek'] = function(a) return QE.cmd_peek(a[3], a[4]) end,
  ['complete'] = function(a) return QE.cmd_complete(a[3], a[4], a[5], a[6], a[7], a[8], a[9]) end,
  ['complete_many'] = function(a) return QE.cmd_complete_many(a) end,
  ['complete_pop'] = function(a) return QE.cmd_complete_pop(a) end,
  ['fail'] = function(a) return QE.cmd_fail(a[3], a[4], a[5], a[6], a[7], a[8]) end,
  ['retry'] = function(a) return QE.cmd_retry(a[3], a[4], a[5], a[6], a[7], a[8]) end,
  ['heartbeat'] = function(a) return QE.cmd_heartbeat(a[3], a[4], a[5]) end,
  ['release'] = function(a) return QE.cmd_release(a[3], a[4]) end,
  ['timeout'] = function(a) return QE.cmd_timeout(rest(a, 3)) end,
  ['sweep'] = function(a) return QE.cmd_sweep(a) end,
  ['cancel'] = function(a) return QE.cmd_cancel(rest(a, 3)) end,
  ['depends'] = function(a) return QE.cmd_depends(a[3], a[4], rest(a, 5)) end,
  ['priority'] = function(a) return QE.cmd_priority(a[3], a[4]) end,
  ['tag'] = function(a) return QE.cmd_tag(a[3], a[4] or '', a[5] or '', a[6] or '', rest(a, 5)) end,
  ['track'] = function(a) return QE.cmd_track(a[3], a[4]) end,
  ['failed'] = function(a) return QE.cmd_failed(a[3], a[4] or '', a[5] or '') end,
  ['unfail'] = function(a) return QE.cmd_unfail(a[3], a[4], a[5] or '') end,
  ['jobs'] = function(a) return QE.cmd_jobs(a[3], a[4] or '', a[5] or '', a[6] or '') end,
  ['queues'] = function(a) return QE.cmd_queues(a[3]) end,
  ['workers'] = function(a) return QE.cmd_workers(a[3]) end,
  ['worker.register'] = function(a) return QE.cmd_worker_register(a[3], a[4]) end,
  ['worker.beat'] = function(a) return QE.cmd_worker_beat(a[3]) end,
  ['worker.deregister'] = function(a) return QE.cmd_worker_deregister(rest(a, 3)) end,
  ['stats'] = function(a) return QE.cmd_stats(a[3], a[4]) end,
  ['length'] = function(a) return QE.cmd_length(a[3]) end,
  ['pause'] = function(a) return QE.cmd_pause(rest(a, 3), true) end,
  ['unpause'] = function(a) return QE.cmd_pause(rest(a, 3), false) end,
  ['log'] = function(a) return QE.cmd_log(a[3], a[4], a[5]) end,
  ['config.get'] = function(a) return QE.config_get(a[3]) end,
  ['config.set'] = function(a) return QE.config_set(a[3], a[4]) end,
  ['config.unset'] = function(a) return QE.config_unset(a[3]) end,
  ['config.clear'] = function(a) return QE.config_clear(a[3]) end,
  ['config.stored'] = function(a) return QE.config_stored(a[3]) end,
  ['recur'] = function(a) return QE.cmd_recur(a) end,
  ['recur.get'] = function(a) return QE.cmd_recur_get(a[3]) end,
  ['recur.update'] = function(a) return QE.cmd_recur_update(a[3], rest(a, 4)) end,
  ['recur.tag'] = function(a) return QE.cmd_recur_tag(a[3], rest(a, 4), true) end,
  ['recur.untag'] = function(a) return QE.cmd_recur_tag(a[3], rest(a, 4), false) end,
  ['unrecur'] = function(a) return QE.cmd_unrecur(a[3]) end,
  ['queue.forget'] = function(a) return QE.cmd_forget(rest(a, 3)) end,
  ['throttle.set'] = function(a) return QE.cmd_throttle_set(a[3], a[4]) end,
  ['throttle.get'] = function(a) return QE.cmd_throttle_get(a[3]) end,
  ['throttle.delete'] = function(a) return QE.cmd_throttle_delete(a[3]) end,
  ['throttle.locks'] = function(a) return QE.cmd_throttle_list(a[3], 'locks') end,
  ['throttle.pending'] = function(a) return QE.cmd_throttle_list(a[3], 'pending') end,
  ['housekeep'] = function(a) return QE.cmd_housekeep(rest(a, 3)) end,
  ['next_due'] = function(a) return QE.cmd_next_due(rest(a, 3)) end,
  ['import'] = function(a) return QE.cmd_import(a[3], a[4], rest(a, 5)) end,   -- migrate.lua
  -- metrics as time series (metrics.lua); signatures and reply shapes there
  -- metrics.series(queue|'', klass|'', since, until, step) -> {"t0", "step", "b": [{field: n}]}
  ['metrics.series'] = function(a) return QE.cmd_metrics_series(a[3], a[4], a[5], a[6], a[7]) end,
  -- metrics.classes(queue|'', since, until) -> {klass: {field: n}}
  ['metrics.classes'] = function(a) return QE.cmd_metrics_classes(a[3], a[4], a[5]) end,
  -- metrics.groups(since, until, step, group...) -> {"t0", "step", "groups": {group: [n]}}
  ['metrics.groups'] = function(a) return QE.cmd_metrics_groups(a) end,
  -- metrics.totals() -> {"classes": {id: klass}, "queues": {queue: {field:id: n}}} (monotonic)
  ['metrics.totals'] = function(a) return QE.cmd_metrics_totals(a[3]) end,
  -- metrics.backlog(queue, limit) -> {"total", "scanned", "classes": {klass: n}}
  ['metrics.backlog'] = function(a) return QE.cmd_metrics_backlog(a[3], a[4]) end,
  ['edit'] = function(a) return QE.cmd_edit(a[3], a[4] or '', a[5] or '', a[6] or '', a[7] or '') end,
  ['worker.throughput'] = function(a) return QE.cmd_worker_throughput(a[3], a[4] or '') end,
  -- search (search.lua)
  ['find'] = function(a)
    return QE.cmd_find(a[3] or '', a[4] or '', a[5] or '', a[6] or '', a[7] or '', a[8] or '')
  end,
  ['find.classes'] = function(a) return QE.cmd_find_classes(a[3] or '', a[4] or '', a[5] or '') end,
  ['find.match'] = function(a) return QE.cmd_find_match(a[3] or '', rest(a, 4)) end,
  ['find.reindex'] = function(a) return QE.cmd_find_reindex(a[3] or '0', a[4] or '') end,
  -- read-only views for dashboards (views.lua)
  ['view.jobs'] = function(a)
    return QE.cmd_view_jobs(a[3], a[4] or '', a[5] or '', a[6] or '', a[7] or '', a[8] or '', a[9] or '')
  end,
  ['view.queues'] = function(a) return QE.cmd_view_queues(a[3] or '') end,
  ['view.groups'] = function(a) return QE.cmd_view_groups(a[3] or '', a[4] or '') end,
  ['view.workers'] = function(a) return QE.cmd_view_workers(a[3] or '', a[4] or '', a[5] or '') end,
  ['view.job'] = function(a) return QE.cmd_view_job(a[3], a[4] or '') end,
  ['view.recurring'] = function(a) return QE.cmd_view_recurring(a[3] or '', a[4] or '') end,
  ['view.tracked_states'] = function(a) return QE.cmd_view_tracked_states(a[3] or '') end,
  ['view.tags'] = function(a) return QE.cmd_view_tags(a[3] or '', a[4] or '') end,
}

-- dispatch(keys, argv): run one command. Called by the script tail (EVALSHA) or by the
-- registered function (FCALL); per-call state (prefix, time, caches) is reset here because a
-- function library keeps its upvalues between calls.
function QE.dispatch(keys, argv)
  PREFIX = keys[1]
  QE._cfg = nil
  QE._throttles = nil
  QE._mtids = nil
  if #keys ~= 1 or type(PREFIX) ~= 'string' or string.sub(PREFIX, 1, 4) ~= 'qe:{' then
    error('QE:InvalidArgument: exactly one key, the namespace prefix qe:{<ns>}:, must be given')
  end
  QE.cmd = argv[1] or '?'
  local handler = QE.api[QE.cmd]
  if handler == nil then QE.raise('InvalidArgument', 'unknown command') end
  local now = argv[2]
  if now == nil or now == '' then
    local t = redis.call('TIME')
    QE.nows = t[1] .. '.' .. string.sub('00000' .. t[2], -6)
    QE.now = tonumber(QE.nows)
  else
    QE.now = tonumber(now)
    if QE.now == nil or QE.now ~= QE.now or QE.now == math.huge or QE.now == -math.huge
        or string.find(now, '[^%d%.eE+-]') then
      QE.raise('InvalidArgument', 'now must be a number, got ' .. tostring(now))
    end
    QE.nows = now
  end
  return handler(argv)
end
