"""``reliable`` mode: every job is an ordinary engine job with a lease.

Client: ``put(..., reply=True)`` (the job shows in the dashboard, stats and events like any
other); the result comes on the job's reply channel ``reply:<jid>`` (one pattern subscription
per client: jids start with the client's prefix) and is also stored in the job record, so a
missed message is read back. Worker: ``pop_from`` its queues in strict priority order (one Lua
call), heartbeats while the job runs, ``complete``/``fail``. A worker that dies loses its lease;
the engine reclaims the job after the lease (+ grace) and hands it to another worker, up to the
job's retries; then it is failed and the client's future raises.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import redis

from queueengine.client import Client as EngineClient
from queueengine.exceptions import QueueEngineError
from queueengine.job import Job as EngineJob
from queueengine.store.direct import Direct
from queueengine.store.keys import ModeKeys
from queueengine.store.outages import call_retrying, outage_retry

from .base import GroupCommit, Outcome, RawJob
from .redisbase import ReplyListener, claim_mode, connect

log = logging.getLogger("queueengine.dispatch")

ALIVE_EVERY = 10.0
"""Seconds between a worker's "I am alive" beats in the engine's worker registry."""

PREFETCH = 16
"""Jobs a worker leases ahead of its free slots while its handlers are short (see FAST)."""
FAST = 0.002
"""Handlers this short on average (seconds between fetches) make a worker prefetch."""

OUTCOME_RETRY_FOR = 30.0
"""Seconds the deferred completions of a stopping worker are retried while Redis is away."""

KLASS = "queueengine.dispatch.Job"
"""The klass of jobs submitted through the delivery modes (they are run by dispatch workers)."""


def stored_outcomes(engine: EngineClient, jids: Sequence[str]) -> dict[str, Outcome]:
    """Outcomes of finished jobs read from their engine records (one pipelined round trip)."""
    pipe = engine.redis.pipeline(transaction=False)
    for jid in jids:
        pipe.hmget(engine.keys.job(jid), ["state", "result", "failure"])
    out: dict[str, Outcome] = {}
    for jid, (state, result, failure) in zip(jids, pipe.execute(), strict=True):
        if state == b"complete":
            out[jid] = (True, orjson.loads(result) if result else None)
        elif state == b"failed":
            out[jid] = (False, orjson.loads(failure) if failure else {"message": "failed"})
    return out


def outcome_from_reply(message: bytes) -> tuple[str, bool, Any]:
    """(jid, ok, value) from an engine reply ``{"jid", "state", "result"|"error"}``."""
    reply = orjson.loads(message)
    if reply.get("state") == "complete":
        return reply["jid"], True, reply.get("result")
    return reply["jid"], False, reply.get("error") or {"message": "failed"}


class ReliableClientBackend:
    """Client side of reliable mode."""

    durable = True

    def __init__(self, uri: str, namespace: str, queue: str, client_id: str, retries: int = 5) -> None:
        self.uri = uri
        self.retries = retries
        self._puts = GroupCommit(self._put)
        self.keys = ModeKeys(namespace)
        self.queue = queue
        self.jid_prefix = client_id[:8] + "-"
        self._engine: EngineClient | None = None
        self._listener: ReplyListener | None = None

    @property
    def engine(self) -> EngineClient:
        """The engine client (after start)."""
        assert self._engine is not None, "client not started"
        return self._engine

    def start(self, on_reply: Callable[[str, bool, Any], None]) -> None:
        """Connect, check the mode, subscribe to this client's reply channels."""
        conn = connect(self.uri, self.keys.namespace)
        claim_mode(conn, self.keys, self.mode_name)
        self._engine = EngineClient(conn, namespace=self.keys.namespace)

        def handle(message: bytes) -> None:
            on_reply(*outcome_from_reply(message))

        pattern = self._engine.keys.reply(self.jid_prefix) + "*"
        self._listener = ReplyListener(conn, handle, pattern=pattern)
        self._listener.start()

    mode_name = "reliable"

    def send(self, jid: str, data: bytes) -> Any:
        """Put an engine job with ``reply=True`` (jobs submitted concurrently from several
        threads go out together through ``put_many``)."""
        self._puts.add((jid, data))
        return None

    def _put(self, items: list[tuple[str, bytes]]) -> None:
        queue = self.engine.queues[self.queue]
        # the submitted data is JSON already: a Fragment goes into the put as it is (no decode
        # and encode again); the Lua still checks it
        if len(items) == 1:
            jid, data = items[0]
            queue.put(KLASS, orjson.Fragment(data), jid=jid, reply=True, retries=self.retries)
            return
        queue.put_many([
            {"klass": KLASS, "data": orjson.Fragment(data), "jid": jid, "reply": True, "retries": self.retries}
            for jid, data in items
        ])

    def abandon(self, jid: str, token: Any) -> Outcome | None:
        """Return the stored outcome if the job finished; otherwise cancel it (nothing kept)."""
        found = stored_outcomes(self.engine, [jid])
        if jid in found:
            return found[jid]
        try:
            self.engine.cancel(jid)
        except QueueEngineError as exc:
            log.info("could not cancel timed-out job %s: %s", jid, exc)
        return None

    def lookup(self, jids: Sequence[str]) -> dict[str, Outcome]:
        """Stored outcomes of these jobs."""
        return stored_outcomes(self.engine, jids)

    def sweep(self, older_than: float) -> int:
        """Leases expire by themselves; run one engine housekeeping pass and count reclaims."""
        return int(self.engine.housekeep([self.queue])["reclaimed"])

    def counts(self) -> dict[str, Any]:
        """The engine's counts of the client's queue."""
        return dict(self.engine.queues[self.queue].counts)

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        if self._listener is not None:
            self._listener.stop()
        if self._engine is not None:
            self._engine.close()


class ReliableWorkerBackend:
    """Worker side of reliable mode."""

    def __init__(self, uri: str, namespace: str, queues: Sequence[str], extra: dict[str, Any]) -> None:
        self.uri = uri
        self.keys = ModeKeys(namespace)
        self.queues = list(queues)
        self.heartbeat: float | None = extra.get("heartbeat")
        self.name = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self._engine: EngineClient | None = None
        self._block: redis.Redis | None = None
        self._block_id: int | None = None
        self._direct: Direct | None = None   # the blocking connection, used directly
        self._deferred: list[tuple[RawJob, bool, Any]] = []
        self._beats: dict[str, float] = {}
        self.tick_interval = 1.0
        self._alive_at = 0.0
        self._ahead: list[EngineJob] = []   # engine Jobs leased ahead of free slots (short handlers)
        self._ahead_lock = threading.Lock()
        self._last_fetch = 0.0
        self._gap = 1.0                  # moving average of seconds between fetches

    @property
    def engine(self) -> EngineClient:
        """The engine client (after start)."""
        assert self._engine is not None, "worker not started"
        return self._engine

    def start(self) -> None:
        """Connect, check the mode, register the worker (riding out an outage that begins meanwhile)."""
        call_retrying(outage_retry(OUTCOME_RETRY_FOR), self._start)

    def _start(self) -> None:
        conn = connect(self.uri, self.keys.namespace)
        claim_mode(conn, self.keys, "reliable")
        self._engine = EngineClient(conn, namespace=self.keys.namespace, worker_name=self.name)
        if self.heartbeat is None:
            lease = min(self._engine.queues[q].heartbeat for q in self.queues)
            self.heartbeat = max(0.2, lease / 3)
        self.tick_interval = min(1.0, self.heartbeat / 2)
        self._block = connect(self.uri, self.keys.namespace, max_connections=1)
        self._engine.workers.register(self.name, {
            "host": socket.gethostname(), "pid": os.getpid(), "queues": self.queues,
            "started": time.time(), "mode": "reliable", "via": "queueengine.dispatch",
        })

    def fetch(self, count: int, block: float) -> list[RawJob]:
        """Lease up to ``count`` jobs (strict priority); when none, block on the wake keys.

        While handlers are short (under FAST on average), each pop also leases up to PREFETCH
        jobs ahead; later fetches take those first, so a busy worker makes one Lua call (its
        finished jobs and its next ones) per PREFETCH jobs instead of one per job."""
        now = time.monotonic()
        if self._last_fetch:
            self._gap = 0.8 * self._gap + 0.2 * (now - self._last_fetch)
        self._last_fetch = now
        with self._ahead_lock:
            jobs, self._ahead = self._ahead[:count], self._ahead[count:]
        if len(jobs) < count:
            want = count - len(jobs)
            got = self._pop(want + (PREFETCH if self._gap < FAST else 0))
            jobs += got[:want]
            if len(got) > want:
                with self._ahead_lock:
                    self._ahead.extend(got[want:])
        if not jobs:
            # Dispatch jobs are never delayed; the only timed event is a dead worker's lease
            # running out, which the next pop (at most ``block`` seconds away) reclaims. The
            # BLPOP and the pop go out together: Redis pops the moment a put wakes the BLPOP.
            if block > 0:
                direct = self._blocking()
                if self._block_id is None:
                    self._block_id = int(direct.execute("CLIENT", "ID"))
                try:
                    jobs, _ = self.engine.wait_then_pop(self.queues, block, self.queues, count, via=direct)
                except Exception:
                    self._block_id = None
                    raise
            else:
                jobs = self._pop(count)
        now = time.monotonic()
        out = []
        for job in jobs:
            self._beats.setdefault(job.jid, now)
            out.append(RawJob(job.jid, job.data, job.queue_name, job))
        for job in self._ahead:
            self._beats.setdefault(job.jid, now)
        return out

    def _blocking(self) -> Direct:
        """The blocking connection, used directly (made on first use, after ``start``)."""
        if self._direct is None:
            assert self._block is not None, "worker not started"
            self._direct = Direct(self._block)
        return self._direct

    def finish(self, raw: RawJob, ok: bool, value: Any, defer: bool) -> None:
        """Complete or fail the engine job (completions batched with the next fetch if deferred)."""
        self._beats.pop(raw.id, None)
        if defer and ok:
            self._deferred.append((raw, ok, value))
            return
        self._finish_one(raw, ok, value)

    def _finish_one(self, raw: RawJob, ok: bool, value: Any) -> None:
        try:
            if ok:
                raw.token.complete(value)
            else:
                raw.token.fail(str(value.get("group") or f"{raw.queue}-failed"), str(value.get("message", "")))
        except QueueEngineError as exc:  # reclaimed, canceled (client timeout) ...
            log.info("job %s could not be finished: %s", raw.id, exc)

    def _pop(self, count: int) -> list[EngineJob]:
        """Pop up to ``count`` jobs; completions deferred since the last fetch go in the same
        Lua call (one round trip per fetch)."""
        if not self._deferred:
            return self.engine.pop_from(self.queues, count)
        items, self._deferred = self._deferred, []
        try:
            states, jobs, _ = self.engine.complete_and_pop([(raw.token, value) for raw, _, value in items],
                                                          self.queues, count)
        except Exception:
            self._deferred[:0] = items   # not sent (Redis away): they go with the next fetch
            raise
        for (raw, _, _), state in zip(items, states, strict=True):
            if state != "complete":
                log.info("job %s could not be completed: %s", raw.id, state)
        return jobs

    def _release_ahead(self) -> None:
        """Give the jobs leased ahead back to the front of their queues (no retry spent)."""
        with self._ahead_lock:
            ahead, self._ahead = self._ahead, []
        for job in ahead:
            self._beats.pop(job.jid, None)
            try:
                job.release()
            except QueueEngineError as exc:
                log.info("job %s leased ahead could not be handed back: %s", job.jid, exc)

    def _flush(self) -> None:
        if not self._deferred:
            return
        items, self._deferred = self._deferred, []
        pairs = [(raw.token, value) for raw, _, value in items]
        results = call_retrying(outage_retry(OUTCOME_RETRY_FOR), lambda: self.engine.complete_many(pairs))
        for (raw, _, _), state in zip(items, results, strict=True):
            if state != "complete":
                log.info("job %s could not be completed: %s", raw.id, state)

    def hand_back(self, raw: RawJob) -> None:
        """Expire the lease now: the next pop reclaims the job without spending a retry."""
        self._beats.pop(raw.id, None)
        try:
            raw.token.timeout()
        except QueueEngineError as exc:
            log.info("job %s could not be handed back: %s", raw.id, exc)
            return
        pipe = self.engine.redis.pipeline(transaction=False)  # wake an idle worker now
        pipe.lpush(self.engine.keys.wake(raw.queue), "1")
        pipe.ltrim(self.engine.keys.wake(raw.queue), 0, 63)
        pipe.execute()

    def unblock(self) -> None:
        """CLIENT UNBLOCK the wake-key wait (a token it took only costs an empty pop)."""
        if self._block_id is not None and self._engine is not None:
            self._engine.redis.client_unblock(self._block_id)

    def tick(self, running: Sequence[RawJob]) -> None:
        """Heartbeat the leases that are due; tell the engine an idle worker is alive."""
        assert self.heartbeat is not None
        now = time.monotonic()
        with self._ahead_lock:
            ahead = list(self._ahead)
        for job in [raw.token for raw in running] + ahead:
            if now - self._beats.get(job.jid, 0.0) >= self.heartbeat:
                self._beats[job.jid] = now
                try:
                    job.heartbeat()
                except QueueEngineError as exc:
                    log.warning("lease of job %s lost: %s", job.jid, exc)
        self._beat_registry(now)

    def _beat_registry(self, now: float) -> None:
        """Tell the engine's worker registry this worker is alive, every ``ALIVE_EVERY`` s."""
        if now - self._alive_at >= ALIVE_EVERY:
            self._alive_at = now
            self.engine.workers.beat(self.name)

    def close(self) -> None:
        """Hand back jobs leased ahead, send deferred completions, deregister, disconnect."""
        if self._engine is None:
            return
        try:
            self._release_ahead()
            self._flush()
            self._engine.workers.deregister(self.name)
        finally:
            self._engine.close()
            if self._block is not None:
                self._block.close()
