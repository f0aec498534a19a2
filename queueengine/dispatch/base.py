"""The client, worker and job shapes shared by every delivery mode.

A mode is a pair of small backends (:class:`ClientBackend`, :class:`WorkerBackend`) that move
bytes; everything users see (futures, timeouts, the ``jobs`` source, concurrency slots, worker
timeouts, ``stop()``) lives here once, so the memory backend and the three Redis modes behave
the same way.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from queueengine.store import jsondata as _jsondata

from .errors import InvalidArgument, JobTimeout, QueueEngineError, job_failed

log = logging.getLogger("queueengine.dispatch")

Outcome = tuple[bool, Any]
"""``(True, result)`` or ``(False, reason)``."""


def new_id() -> str:
    """A fresh job or client id: a random UUID4 from ``os.urandom`` (safe across fork)."""
    return str(uuid.uuid4())


def encode_data(data: dict[str, Any]) -> bytes:
    """JSON-encode job data, or raise UnsupportedData (an InvalidArgument) naming the path of
    the first value JSON cannot carry (``data.x``, ``data.items[2]``; NaN and infinity too)."""
    return _jsondata.encode(data, "data")


def encode_result(result: Any) -> bytes:
    """JSON-encode a job result, or raise UnsupportedData (an InvalidArgument) naming the path."""
    return _jsondata.encode(result, "result")


@dataclass
class RawJob:
    """A job as a backend hands it to the worker: id, decoded data, queue and a backend token."""

    id: str
    data: dict[str, Any]
    queue: str
    token: Any = None


class ClientBackend(Protocol):
    """What a mode implements on the client side."""

    durable: bool
    """True when results are stored (recoverable, reliable): a missed message is recovered."""

    def start(self, on_reply: Callable[[str, bool, Any], None]) -> None:
        """Connect, check the namespace's mode, start delivering replies to ``on_reply``."""

    def send(self, jid: str, data: bytes) -> Any:
        """Queue one job; return a token handed back to :meth:`abandon`."""

    def abandon(self, jid: str, token: Any) -> Outcome | None:
        """Forget a timed-out job (remove it if still queued); return its outcome if stored."""

    def lookup(self, jids: Sequence[str]) -> dict[str, Outcome]:
        """Stored outcomes of these jobs (durable modes); {} otherwise."""

    def sweep(self, older_than: float) -> int:
        """Requeue claims older than ``older_than`` seconds; return how many."""

    def counts(self) -> dict[str, Any]:
        """Counts of the client's queue (at least ``name`` and ``waiting``)."""

    def close(self) -> None:
        """Stop listening and release connections."""


class WorkerBackend(Protocol):
    """What a mode implements on the worker side."""

    def start(self) -> None:
        """Connect and check the namespace's mode."""

    def fetch(self, count: int, block: float) -> list[RawJob]:
        """Up to ``count`` jobs in strict queue order, blocking at most ``block`` seconds."""

    def finish(self, raw: RawJob, ok: bool, value: Any, defer: bool) -> None:
        """Store/publish the outcome; ``defer`` lets the backend send it with the next fetch."""

    def hand_back(self, raw: RawJob) -> None:
        """Put an unfinished job back at the head of its queue."""

    def unblock(self) -> None:
        """Make a blocked :meth:`fetch` return at once (without losing what it popped)."""

    def tick(self, running: Sequence[RawJob]) -> None:
        """Periodic duties (heartbeats, sweeps); called about once a second."""

    def close(self) -> None:
        """Send what is buffered and release connections."""


RECONCILE_BATCH = 2000
"""Most stored results a durable client reads back per second (the oldest pending first)."""


class _JobFuture(Future[Any]):
    """A future that withdraws its job when it is cancelled (no per-job callback needed)."""

    def __init__(self, client: Client, jid: str) -> None:
        super().__init__()
        self._client = client
        self.jid = jid

    def cancel(self) -> bool:
        """Cancel the future and withdraw the job (if no worker took it yet)."""
        cancelled = super().cancel()
        if cancelled:
            self._client._cancelled(self.jid)
        return cancelled


class GroupCommit:
    """Send items in groups: whoever finds the line free sends everything queued so far.

    ``add(item)`` returns once the group holding ``item`` went out (or raises that group's
    error). One thread alone sends each item at once; items added by other threads while a
    send is on the wire go out together in the next one (one round trip for all of them).
    """

    def __init__(self, flush: Callable[[list[Any]], None]) -> None:
        self._flush = flush
        self._queue_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._group = _Group()

    def add(self, item: Any) -> None:
        """Queue ``item`` and return when it is sent."""
        with self._queue_lock:
            group = self._group
            group.items.append(item)
        with self._send_lock:
            if not group.sent:
                with self._queue_lock:
                    self._group = _Group()
                group.sent = True
                try:
                    self._flush(group.items)
                except BaseException as exc:
                    group.error = exc
        if group.error is not None:
            raise group.error


class _Group:
    __slots__ = ("items", "sent", "error")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.sent = False
        self.error: BaseException | None = None


class _Timers:
    """One thread that fires callbacks at deadlines (no thread per job)."""

    def __init__(self, name: str) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._name = name
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` in ``delay`` seconds (on the timer thread)."""
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # pragma: no cover - a callback must not kill the timer thread
                log.exception("timer callback failed")

    def close(self) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()


@dataclass
class _Pending:
    future: Future[Any]
    token: Any
    since: float = field(default_factory=time.monotonic)


class Client:
    """Submits jobs and hands back their results as futures (``JobManager().client(...)``)."""

    def __init__(self, backend: ClientBackend, *, timeout: float | None = None, id: str | None = None) -> None:
        self.id = id or new_id()
        self.timeout = timeout
        self._backend = backend
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._timers = _Timers(f"qe-client-{self.id[:8]}")
        self._started = False
        self._closed = False

    def start(self) -> Client:
        """Connect and begin receiving results (idempotent); returns the client."""
        if not self._started:
            self._backend.start(self._on_reply)
            self._started = True
            if self._backend.durable:
                self._timers.add(1.0, self._reconcile)
        return self

    def submit(self, **data: Any) -> Future[Any]:
        """Queue a job with ``data``; return a future of its result.

        The future fails with ``JobFailed`` (the reason as message) when the job fails, and with
        ``JobTimeout`` when the client's ``timeout`` elapses first (the job is then withdrawn).
        """
        payload = encode_data(data)
        if self._closed:
            raise RuntimeError("submit() on a closed client")
        self.start()
        jid = getattr(self._backend, "jid_prefix", "") + new_id()
        future: Future[Any] = _JobFuture(self, jid)
        pending = _Pending(future, None)
        with self._lock:
            self._pending[jid] = pending
        try:
            pending.token = self._backend.send(jid, payload)
        except BaseException:
            with self._lock:
                self._pending.pop(jid, None)
            raise
        if self.timeout is not None:
            self._timers.add(self.timeout, lambda: self._expire(jid))
        return future

    async def asubmit(self, **data: Any) -> Any:
        """``await client.asubmit(x=1)``: submit and wait for the result without blocking the loop."""
        return await asyncio.wrap_future(self.submit(**data))

    def sweep(self, older_than: float) -> int:
        """Requeue jobs claimed more than ``older_than`` seconds ago (recoverable); return the count."""
        if not isinstance(older_than, int | float) or isinstance(older_than, bool) or older_than < 0:
            raise InvalidArgument(f"sweep(): older_than must be a number of seconds >= 0, got {older_than!r}")
        self.start()
        return self._backend.sweep(float(older_than))

    def counts(self) -> dict[str, Any]:
        """Counts of the client's queue: ``name`` and ``waiting`` in every mode; simple adds
        ``done``/``failed`` totals, the engine modes the engine's queue counts."""
        self.start()
        return self._backend.counts()

    @property
    def pending(self) -> int:
        """How many submitted jobs still wait for a result."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Stop receiving results. Futures still pending fail with ``QueueEngineError``
        (the jobs themselves stay queued and will run; nobody is listening for them)."""
        self._closed = True
        self._timers.close()
        if self._started:
            self._backend.close()
        with self._lock:
            pending, self._pending = self._pending, {}
        for jid, entry in pending.items():
            if not entry.future.done():
                entry.future.set_exception(QueueEngineError(f"client closed before job {jid} finished"))

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- result paths ------------------------------------------------------------------------
    def _on_reply(self, jid: str, ok: bool, value: Any) -> None:
        with self._lock:
            pending = self._pending.pop(jid, None)
        if pending is not None:
            self._settle(jid, pending.future, ok, value)

    @staticmethod
    def _settle(jid: str, future: Future[Any], ok: bool, value: Any) -> None:
        if future.done():
            return
        try:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(job_failed(jid, value))
        except Exception:  # cancelled or settled concurrently
            pass

    def _expire(self, jid: str) -> None:
        with self._lock:
            pending = self._pending.pop(jid, None)
        if pending is None:
            return
        outcome = None
        try:
            outcome = self._backend.abandon(jid, pending.token)
        except Exception:
            log.exception("could not withdraw timed-out job %s", jid)
        if outcome is not None:
            self._settle(jid, pending.future, *outcome)
        else:
            assert self.timeout is not None
            if not pending.future.done():
                pending.future.set_exception(JobTimeout(jid, self.timeout))

    def _cancelled(self, jid: str) -> None:
        with self._lock:
            pending = self._pending.pop(jid, None)
        if pending is not None:
            try:
                self._backend.abandon(jid, pending.token)
            except Exception:
                log.exception("could not withdraw cancelled job %s", jid)

    def _reconcile(self) -> None:
        """Durable modes: read stored results of jobs whose message may have been missed."""
        if self._closed:
            return
        try:
            now = time.monotonic()
            old: list[str] = []
            with self._lock:  # oldest first (dict order); bounded work per pass
                for jid, entry in self._pending.items():
                    if now - entry.since <= 1.0 or len(old) >= RECONCILE_BATCH:
                        break
                    old.append(jid)
            for start in range(0, len(old), 500):
                for jid, outcome in self._backend.lookup(old[start:start + 500]).items():
                    self._on_reply(jid, *outcome)
        except Exception as exc:
            log.warning("reading stored results failed (%s); will retry", exc)
        finally:
            if not self._closed:
                self._timers.add(1.0, self._reconcile)
