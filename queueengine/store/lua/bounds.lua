-- queueengine Lua library: resource bounds checked by put before anything is written.
--
-- Config options (client.config[...]; '0' or unset = no bound):
--   max-payload-bytes            largest job data (bytes of its JSON) put/put_many/requeue accept
--   max-queue-length             most jobs a queue holds (waiting + scheduled + depends + throttled
--                                + running), namespace-wide default
--   <queue>-max-queue-length     the same for one queue (wins over max-queue-length; 0 = none)
-- A put over a bound raises InvalidArgument (payload) or QueueFull (length), and the call writes
-- nothing (a put_many is refused as a whole). Cost when no bound is set: one HMGET per call.

-- bounds(queue, specs): check the parsed puts (QE.parse_put + QE.lookup_put) against the bounds.
function QE.check_bounds(queue, specs)
  local per_queue = queue .. '-max-queue-length'
  local lim
  if QE._cfg ~= nil then
    lim = {QE._cfg['max-payload-bytes'], QE._cfg['max-queue-length'], QE._cfg[per_queue]}
  else
    lim = redis.call('HMGET', QE.k('config'), 'max-payload-bytes', 'max-queue-length', per_queue)
  end
  local max_payload = tonumber(lim[1]) or 0
  if max_payload > 0 then
    for _, s in ipairs(specs) do
      if #s.data > max_payload then
        QE.raise('InvalidArgument', 'data of job ' .. s.jid .. ' is ' .. #s.data .. ' bytes, over the '
          .. 'max-payload-bytes limit of ' .. max_payload .. ' bytes; nothing was written')
      end
    end
  end
  local max_len, option = tonumber(lim[3]), per_queue
  if max_len == nil then max_len, option = tonumber(lim[2]) or 0, 'max-queue-length' end
  if max_len <= 0 then return end
  local new, counted = 0, {}
  for _, s in ipairs(specs) do
    if not counted[s.jid] then
      counted[s.jid] = true
      local old = s.old
      if old == nil or old.queue ~= queue or old.state == 'complete' or old.state == 'failed' then
        new = new + 1
      end
    end
  end
  if new == 0 then return end
  local length = redis.call('ZCARD', QE.kq(queue, 'work')) + redis.call('ZCARD', QE.kq(queue, 'locks'))
    + redis.call('ZCARD', QE.kq(queue, 'scheduled')) + redis.call('ZCARD', QE.kq(queue, 'depends'))
    + redis.call('ZCARD', QE.kq(queue, 'throttled'))
  if length + new > max_len then
    QE.raise('QueueFull', 'queue ' .. queue .. ' holds ' .. length .. ' jobs; ' .. new .. ' more would pass its '
      .. option .. ' of ' .. max_len .. '; nothing was written')
  end
end
