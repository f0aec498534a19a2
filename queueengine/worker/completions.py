"""How a worker gets its finished jobs completed in as few round trips as possible.

A handler that returns leaves its job's completion here (``add``). While the dispatcher is
working (it pops again as soon as slots free up), the completion waits for that pop, which
carries every completion queued so far in the same Lua call (``claim`` + ``Client.complete_and_pop``).
When the dispatcher is idle (blocked waiting for work, or shutting down), the thread that ran the
job sends the completions itself at once (``complete_many``), so a lone job's result is not held
back: the first thread to find no send in progress sends everything queued and goes on while
more queue up meanwhile; the others only queue theirs. So a busy worker makes about one Lua call
per batch of jobs, and an idle one answers within one round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from queueengine.job import Job
from queueengine.store.connection import is_transient
from queueengine.store.outages import warn

if TYPE_CHECKING:
    from queueengine.client import Client
    from queueengine.worker.ledger import Held

log = logging.getLogger("queueengine.worker")

BATCH = 512
"""Most completions in one Lua call."""
SOON = 64
"""A queue this long is sent at once even while the dispatcher is busy."""

Item = tuple["Held", orjson.Fragment]
"""(the worker's record of the job, its result as JSON)."""


class Completions:
    """The completion queue of one worker (thread-safe). ``sent(n)`` is called after n items
    left the queue (sent, or given up on)."""

    def __init__(self, client: Client, sent: Callable[[int], None]) -> None:
        self.client = client
        self._sent = sent
        self._lock = threading.Lock()
        self._queue: list[Item] = []
        self._sending = False
        self._idle = True

    def add(self, item: Item) -> None:
        """Queue one completion; send now unless the dispatcher's next pop will carry it."""
        with self._lock:
            self._queue.append(item)
            if self._sending or (not self._idle and len(self._queue) < SOON):
                return
            self._sending = True
        self._drain()

    def queued(self) -> bool:
        """Whether completions wait to be sent (and nobody is sending them)."""
        with self._lock:
            return bool(self._queue) and not self._sending

    def claim(self) -> list[Item]:
        """The dispatcher is about to pop: the completions to send with it (it then owes
        ``done(batch, states)`` or ``failed(batch)``). Jobs aborted meanwhile are dropped."""
        with self._lock:
            self._idle = False
            if self._sending or not self._queue:
                return []
            self._sending = True
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
        live = [item for item in batch if not item[0].aborted]
        if len(live) < len(batch):
            self._sent(len(batch) - len(live))
        if not live:
            with self._lock:
                self._sending = False
        return live

    def done(self, batch: list[Item], states: list[str]) -> None:
        """The dispatcher's pop sent ``batch``; ``states`` are complete_many's outcomes."""
        self._report(batch, states)
        self._sent(len(batch))
        with self._lock:
            self._sending = False
            resend = self._idle and bool(self._queue)
            if resend:
                self._sending = True
        if resend:
            self._drain()

    def failed(self, batch: list[Item]) -> None:
        """The dispatcher's pop did not go out: the batch goes back to the front of the queue."""
        with self._lock:
            self._queue[:0] = batch
            self._sending = False

    def idle(self) -> None:
        """The dispatcher is about to block (or stop): send what is queued, and send from now
        on as completions come."""
        with self._lock:
            self._idle = True
            if self._sending or not self._queue:
                return
            self._sending = True
        self._drain()

    def _drain(self) -> None:
        """Send the queue in batches until it is empty (the caller holds the sending role)."""
        while True:
            with self._lock:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                if not batch:
                    self._sending = False
                    return
            try:
                self._send(batch)
            except BaseException:
                with self._lock:
                    self._sending = False
                raise
            finally:
                self._sent(len(batch))

    def _send(self, batch: list[Item]) -> None:
        live = [item for item in batch if not item[0].aborted]
        pairs = [(rec.job, payload) for rec, payload in live]
        if not pairs:
            return
        delay = 0.5
        while True:
            try:
                states = self.client.complete_many(pairs)
            except Exception as exc:
                if not is_transient(exc):
                    warn(log, exc, "could not complete %d jobs", len(pairs))
                    return
                # Redis is away: keep the results and try again for a while (the leases are no
                # longer heartbeated; past them, the engine refuses and the jobs are run again)
                if delay > 16:
                    log.error("could not complete %d jobs: Redis unreachable for %.0fs (%s); their leases will "
                              "expire and they will run again", len(pairs), 2 * delay, exc)
                    return
                log.warning("Redis unreachable while completing %d jobs; retrying in %.1fs", len(pairs), delay)
                time.sleep(delay)
                delay *= 2
                continue
            self._report(live, states)
            return

    def _report(self, batch: list[Item], states: list[str]) -> None:
        for (rec, _), state in zip(batch, states, strict=False):
            if state == "complete":
                continue
            if self._done_by_us(rec.job):
                log.debug("job %s was already completed by this worker (an earlier send of its completion "
                          "went through; its reply was lost)", rec.job.jid)
            else:
                log.warning("job %s was not completed: %s (it no longer runs under this worker: its lease "
                            "expired, or it was moved, retried or canceled)", rec.job.jid, state)

    def _done_by_us(self, job: Job) -> bool:
        """Whether the job's record says this worker completed it (a completion sent twice)."""
        try:
            stored = self.client.jobs[job.jid]
        except Exception:  # gone (expired), or Redis away again: not known to be ours
            return False
        if not isinstance(stored, Job) or stored.state != "complete":
            return False
        done = [h for h in stored.history or () if h.get("what") == "done"]
        return bool(done) and done[-1].get("worker") == job.holder

__all__ = ["BATCH", "SOON", "Completions"]
