"""Worker side of ``jobasync`` mode (see :mod:`queueengine.dispatch.jobasync` for the protocol).

Claiming is Job::Async's reliable move: an id goes from the tail of ``P::Q`` to the head of
``P::processing`` in one atomic step, so a worker that dies holding a job leaves its id in
``P::processing`` (nothing requeues it: Job::Async has no owner or claim time to go by).

* Busy: one Lua call (:data:`CLAIM`) moves up to ``count`` ids from the worker's queues in
  strict priority order, stamps ``_started`` and returns the hashes; results finished inline
  since the last fetch go out in the same round trip.
* Idle, one queue: ``BLMOVE P::Q P::processing RIGHT LEFT <poll>`` (Perl's ``BRPOPLPUSH``).
* Idle, several queues: Redis has no blocking move from several lists, so the worker waits on
  each queue with a blocking *peek* that changes nothing (``BLMOVE P::Q P::Q RIGHT RIGHT``, one
  connection per queue) and then claims through :data:`CLAIM`; priority stays strict and the
  claim stays atomic.
* Done: ``HSET job::<id> _processed <t> result T…|J…``, ``PUBLISH client::<reply_to> <id>``,
  ``LREM P::processing 1 <id>`` (MULTI/EXEC with ``use_multi``). Failed: see the protocol notes.
"""

from __future__ import annotations

import contextlib
import logging
import select
from collections.abc import Sequence
from typing import Any

import orjson
import redis

from queueengine.store.keys import JobAsyncKeys

from .base import RawJob
from .jobasync import FieldError, decode_fields, encode_result, stamp
from .redisbase import connect

log = logging.getLogger("queueengine.dispatch")

CLAIM = """
-- claim(KEYS: processing, queue_1 .. queue_n; ARGV: want, id already moved ...)
--   -> {id, queue index (1-based), {field, value, ...}, ...}
-- Loads the ids already moved (from queue 1), then moves up to `want` more from the tail of
-- the first non-empty queue onwards to the head of processing. Each job hash gets `_started`
-- (server time); an id whose hash is gone (withdrawn by its client) is dropped from processing.
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local out = {}
local function load(id, qi)
  local key = 'job::' .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('LREM', KEYS[1], 1, id)
    return
  end
  redis.call('HSET', key, '_started', now)
  out[#out + 1] = id
  out[#out + 1] = qi
  out[#out + 1] = redis.call('HGETALL', key)
end
for i = 2, #ARGV do load(ARGV[i], 1) end
local want = tonumber(ARGV[1])
local qi = 2
while want > 0 and qi <= #KEYS do
  local id = redis.call('LMOVE', KEYS[qi], KEYS[1], 'RIGHT', 'LEFT')
  if id then
    load(id, qi - 1)
    want = want - 1
  else
    qi = qi + 1
  end
end
return out
"""


class _Waiter:
    """One raw connection blocked on one queue (a claiming BLMOVE, or a peek)."""

    def __init__(self, conn: Any, command: tuple[Any, ...]) -> None:
        self.conn = conn
        self.command = command
        self.client_id: int | None = None
        self.outstanding = False

    def send(self, block: float) -> None:
        if self.outstanding:
            return
        if self.client_id is None:
            self.conn.send_command("CLIENT", "ID")
            self.client_id = int(self.conn.read_response())
        self.conn.send_command(*self.command, block)
        self.outstanding = True

    def ready(self) -> bool:
        return bool(self.outstanding and self.conn.can_read(timeout=0))

    def read(self) -> Any:
        reply = self.conn.read_response()
        self.outstanding = False
        return reply

    def reset(self) -> None:
        self.conn.disconnect()
        self.client_id = None
        self.outstanding = False


class JobAsyncWorkerBackend:
    """A Job::Async::Redis worker on one or several queues of a prefix."""

    def __init__(self, uri: str, keys: JobAsyncKeys, queues: Sequence[str], use_multi: bool = False) -> None:
        self.uri = uri
        self.keys = keys
        self.queues = list(queues)
        self.queue_keys = [keys.list(q) for q in self.queues]
        self.use_multi = use_multi
        self._ctl: redis.Redis | None = None
        self._claim: Any = None
        self._waiters: list[_Waiter] = []
        self._deferred: list[tuple[Any, ...]] = []

    @property
    def ctl(self) -> redis.Redis:
        """The connection pool for everything but the blocking waits (after start)."""
        assert self._ctl is not None, "worker not started"
        return self._ctl

    def start(self) -> None:
        """Connect; one waiting connection (one queue) or one per queue (peeks)."""
        self._ctl = connect(self.uri, socket_timeout=None)
        self._claim = self._ctl.register_script(CLAIM)
        pool = self._ctl.connection_pool
        if len(self.queue_keys) == 1:
            key = self.queue_keys[0]
            self._waiters = [_Waiter(pool.make_connection(), ("BLMOVE", key, self.keys.processing, "RIGHT", "LEFT"))]
        else:
            self._waiters = [_Waiter(pool.make_connection(), ("BLMOVE", k, k, "RIGHT", "RIGHT"))
                             for k in self.queue_keys]

    # -- fetching ----------------------------------------------------------------------------
    def fetch(self, count: int, block: float) -> list[RawJob]:
        """Up to ``count`` jobs in strict queue order; when none, wait at most ``block`` seconds."""
        jobs = self._claim_now(count, [])
        if jobs or block <= 0:
            return jobs
        moved = self._wait(block)
        if len(self.queue_keys) == 1 and not moved:
            return []
        return self._claim_now(count - len(moved), moved)

    def _claim_now(self, want: int, moved: list[str]) -> list[RawJob]:
        pipe: Any = self.ctl.pipeline(transaction=False)
        deferred, self._deferred = self._deferred, []
        for command in deferred:
            pipe.execute_command(*command)
        self._claim(keys=[self.keys.processing, *self.queue_keys], args=[want, *moved], client=pipe)
        replies = pipe.execute(raise_on_error=False)
        for command, reply in zip(deferred, replies, strict=False):
            if isinstance(reply, Exception):
                log.warning("recording a result failed (%s): %r", reply, command[:2])
        claimed = replies[-1]
        if isinstance(claimed, Exception):
            raise claimed
        jobs = []
        for i in range(0, len(claimed), 3):
            jid, qi, flat = claimed[i].decode(), int(claimed[i + 1]), claimed[i + 2]
            raw = RawJob(jid, {}, self.queues[qi - 1], {"reply_to": None, "qe": False})
            try:
                raw.data, meta = decode_fields(dict(zip(flat[::2], flat[1::2], strict=True)))
            except FieldError as exc:
                raw.token = _token({_b(k): _b(v) for k, v in zip(flat[::2], flat[1::2], strict=True)})
                self._send(self._failure(raw, {"group": "jobasync-invalid", "message": str(exc)}))
                continue
            raw.token = _token(meta)
            jobs.append(raw)
        return jobs

    def _wait(self, block: float) -> list[str]:
        """Block until a queue has a job (or ``block`` s); return the ids a claiming wait moved."""
        try:
            for waiter in self._waiters:
                waiter.send(block)
            ready = [w for w in self._waiters if w.ready()]
            if not ready:
                socks = {w.conn._sock: w for w in self._waiters if w.outstanding}
                readable, _, _ = select.select(list(socks), [], [], block + 1.0)
                ready = [socks[s] for s in readable]
            replies = [w.read() for w in ready]
        except BaseException:
            for waiter in self._waiters:
                waiter.reset()
            raise
        if len(self.queue_keys) == 1:
            return [r.decode() for r in replies if r]
        return []

    # -- outcomes ----------------------------------------------------------------------------
    def _success(self, raw: RawJob, value: Any) -> list[tuple[Any, ...]]:
        key, meta = self.keys.job(raw.id), raw.token
        commands: list[tuple[Any, ...]] = [
            ("HSET", key, "_processed", stamp(), "result", encode_result(value, meta["qe"]))]
        if meta["reply_to"] is not None:
            commands.append(("PUBLISH", self.keys.client(meta["reply_to"]), raw.id))
        commands.append(("LREM", self.keys.processing, 1, raw.id))
        return commands

    def _failure(self, raw: RawJob, failure: Any) -> list[tuple[Any, ...]]:
        """A Python client is told (the id is published); a Perl client hears nothing, as from a
        Perl worker, and the id goes to ``P::failed``. Either way it leaves ``P::processing``."""
        key, meta = self.keys.job(raw.id), raw.token
        commands: list[tuple[Any, ...]] = [("HSET", key, "_failed", stamp(), "_error", orjson.dumps(failure))]
        if meta["qe"] and meta["reply_to"] is not None:
            commands.append(("PUBLISH", self.keys.client(meta["reply_to"]), raw.id))
        else:
            commands.append(("LPUSH", self.keys.failed, raw.id))
        commands.append(("LREM", self.keys.processing, 1, raw.id))
        return commands

    def _send(self, commands: list[tuple[Any, ...]]) -> None:
        pipe: Any = self.ctl.pipeline(transaction=self.use_multi)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()

    def finish(self, raw: RawJob, ok: bool, value: Any, defer: bool) -> None:
        """Record the outcome (with the next fetch when ``defer`` and not ``use_multi``)."""
        commands = self._success(raw, value) if ok else self._failure(raw, value)
        if defer and not self.use_multi:
            self._deferred.extend(commands)
        else:
            self._send(commands)

    def hand_back(self, raw: RawJob) -> None:
        """Move the id from ``P::processing`` back to the tail of its queue (next to be taken)."""
        pipe = self.ctl.pipeline(transaction=True)
        pipe.lrem(self.keys.processing, 1, raw.id)
        pipe.rpush(self.keys.list(raw.queue), raw.id)
        pipe.execute()

    def unblock(self) -> None:
        """``CLIENT UNBLOCK`` the waits: a claiming wait returns what it moved, or nothing."""
        for waiter in self._waiters:
            if waiter.outstanding and waiter.client_id is not None:
                with contextlib.suppress(redis.RedisError):
                    self.ctl.client_unblock(waiter.client_id)

    def tick(self, running: Sequence[RawJob]) -> None:
        """Nothing periodic: Job::Async's claims have no lease to renew."""

    def close(self) -> None:
        """Send deferred results, hand back an id a claiming wait moved unseen, disconnect."""
        if self._ctl is None:
            return
        try:
            if self._deferred:
                deferred, self._deferred = self._deferred, []
                self._send(deferred)
            for waiter in self._waiters:
                if waiter.outstanding and len(self.queue_keys) == 1:
                    self.unblock()
                    if waiter.conn.can_read(timeout=2.0):
                        jid = waiter.read()
                        if jid:
                            self.hand_back(RawJob(jid.decode(), {}, self.queues[0]))
        finally:
            for waiter in self._waiters:
                waiter.reset()
            self._ctl.close()


def _b(value: bytes) -> str:
    return value.decode(errors="replace")


def _token(meta: dict[str, str]) -> dict[str, Any]:
    return {"reply_to": meta.get("_reply_to"), "qe": "_qe" in meta}
