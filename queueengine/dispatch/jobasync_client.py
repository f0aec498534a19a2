"""Client side of ``jobasync`` mode (see :mod:`queueengine.dispatch.jobasync` for the protocol).

Per job, as Job::Async::Client::Redis: ``HSET job::<id> _reply_to _queued <params>`` then
``LPUSH P::Q <id>`` (in MULTI/EXEC with ``use_multi``); on the ``client::<id>`` notification,
``HMGET job::<id> result`` (and our ``_error``) then ``DEL job::<id>``, in one round trip.
Submits from several threads go out together (one pipeline, one ``LPUSH``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from queueengine.store.keys import JobAsyncKeys

from .base import GroupCommit, Outcome
from .jobasync import decode_result, encode_params, stamp
from .redisbase import ReplyListener, connect

log = logging.getLogger("queueengine.dispatch")


def stored_outcome(result: bytes | None, error: bytes | None) -> Outcome | None:
    """The outcome in a job hash (``_error`` first: a failure a Python worker recorded)."""
    if error is not None:
        try:
            failure = orjson.loads(error)
        except orjson.JSONDecodeError:
            failure = {"group": "jobasync-failed", "message": error.decode(errors="replace")}
        return False, failure
    if result is not None:
        return True, decode_result(result)
    return None


class JobAsyncClientBackend:
    """A Job::Async::Redis client: submits jobs, collects results from their hashes."""

    durable = True
    """Results stay in ``job::<id>`` until read: a missed notification is recovered."""

    def __init__(self, uri: str, keys: JobAsyncKeys, queue: str, client_id: str, use_multi: bool = False) -> None:
        self.uri = uri
        self.keys = keys
        self.queue = queue
        self.queue_key = keys.list(queue)
        self.client_id = client_id
        self.use_multi = use_multi
        self._conn: redis.Redis | None = None
        self._listener: ReplyListener | None = None
        self._on_reply: Callable[[str, bool, Any], None] | None = None
        self._pushes = GroupCommit(self._push)

    @property
    def conn(self) -> redis.Redis:
        """The connection pool (after start)."""
        assert self._conn is not None, "client not started"
        return self._conn

    def start(self, on_reply: Callable[[str, bool, Any], None]) -> None:
        """Connect and ``SUBSCRIBE client::<id>`` (confirmed before the first submit)."""
        self._conn = connect(self.uri)
        self._on_reply = on_reply
        self._listener = ReplyListener(self._conn, self._notified, channel=self.keys.client(self.client_id))
        self._listener.start()

    def _notified(self, message: bytes) -> None:
        jid = message.decode(errors="replace")
        key = self.keys.job(jid)
        pipe = self.conn.pipeline(transaction=False)
        pipe.hmget(key, ["result", "_error"])
        pipe.delete(key)   # also for ids this client forgot (timed out), as Job::Async does
        (result, error), _ = pipe.execute()
        outcome = stored_outcome(result, error)
        if outcome is None:
            # already read (by the once-a-second read-back of pending jobs, which then DELs the
            # hash) or deleted by another holder of this client id: nothing to report
            log.debug("notification for job %s whose hash holds no result", jid)
            return
        assert self._on_reply is not None
        self._on_reply(jid, *outcome)

    def send(self, jid: str, data: bytes) -> Any:
        """Write the job hash and LPUSH the id (with other threads' submits, in one pipeline)."""
        fields: dict[str, str | bytes] = {"_reply_to": self.client_id, "_queued": stamp()}
        fields.update(encode_params(orjson.loads(data)))
        self._pushes.add((jid, fields))
        return None

    def _push(self, items: list[tuple[str, dict[str, str | bytes]]]) -> None:
        pipe: Any = self.conn.pipeline(transaction=self.use_multi)
        for jid, fields in items:
            pipe.hset(self.keys.job(jid), mapping=fields)
        pipe.lpush(self.queue_key, *[jid for jid, _ in items])   # oldest first out of the tail
        pipe.execute()

    def abandon(self, jid: str, token: Any) -> Outcome | None:
        """Withdraw a timed-out job: ``LREM`` it from the queue and from ``P::processing`` (a dead
        worker's claim; a live worker's own ``LREM`` then finds nothing) and ``DEL`` its hash, in
        one MULTI; return its outcome if it had finished meanwhile."""
        key = self.keys.job(jid)
        pipe = self.conn.pipeline(transaction=True)
        pipe.lrem(self.queue_key, 1, jid)
        pipe.lrem(self.keys.processing, 1, jid)
        pipe.hmget(key, ["result", "_error"])
        pipe.delete(key)
        _, _, (result, error), _ = pipe.execute()
        return stored_outcome(result, error)

    def lookup(self, jids: Sequence[str]) -> dict[str, Outcome]:
        """Outcomes already stored for these jobs (their hashes are then deleted)."""
        pipe = self.conn.pipeline(transaction=False)
        for jid in jids:
            pipe.hmget(self.keys.job(jid), ["result", "_error"])
        found: dict[str, Outcome] = {}
        for jid, (result, error) in zip(jids, pipe.execute(), strict=True):
            outcome = stored_outcome(result, error)
            if outcome is not None:
                found[jid] = outcome
        if found:
            self.conn.delete(*[self.keys.job(jid) for jid in found])
        return found

    def sweep(self, older_than: float) -> int:
        """Nothing to sweep: Job::Async's processing list records neither owner nor claim time."""
        return 0

    def counts(self) -> dict[str, Any]:
        """``name``, ``waiting`` (length of ``P::Q``) and ``processing`` (of ``P::processing``)."""
        pipe = self.conn.pipeline(transaction=False)
        pipe.llen(self.queue_key)
        pipe.llen(self.keys.processing)
        waiting, processing = pipe.execute()
        return {"name": self.queue, "waiting": int(waiting), "processing": int(processing)}

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        if self._listener is not None:
            self._listener.stop()
        if self._conn is not None:
            self._conn.close()
