"""What one worker holds and has done: the state its parts share, behind one lock.

:class:`Held` is the worker's record of one job it popped and has not finished. :class:`Ledger`
keeps those records by jid, counts the jobs in flight (running plus prefetched) and the
completions not yet sent, and the handlers that returned or raised. The dispatcher, the runner,
the lease keeper and the completion queue all get the same ``Ledger``; each change goes through
one of its methods, under its condition variable, which also wakes whoever waits for a change
(the dispatcher waiting for a free slot, the shutdown waiting for running jobs).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queueengine.job import Job
    from queueengine.worker.handlers import Handler


class Held:
    """Book-keeping for one job a worker holds (popped and not yet finished).

    Read its fields freely; change them through its methods: ``begin`` and ``hand_back`` under
    the ledger's lock, ``run_as`` on the asyncio loop, ``beat_at`` from the lease keeper.
    """

    __slots__ = ("abort_reason", "aborted", "handler", "job", "next_beat", "started", "task")

    def __init__(self, job: Job, handler: Handler, next_beat: float) -> None:
        self.job = job
        self.handler = handler
        self.next_beat = next_beat      # time.monotonic() of the next heartbeat
        self.aborted = False
        self.started = False
        self.abort_reason = ""
        self.task: asyncio.Task[None] | None = None   # the task of an async handler

    def begin(self) -> bool:
        """A handler is about to run the job: True unless it was aborted (handed back) first."""
        self.started = not self.aborted
        return self.started

    def run_as(self, task: asyncio.Task[None]) -> None:
        """An async handler runs the job as ``task`` (cancelled at once if the job was aborted)."""
        self.started = True
        self.task = task
        if self.aborted:
            task.cancel()

    def beat_at(self, when: float) -> None:
        """Heartbeat the job at monotonic time ``when``."""
        self.next_beat = when

    def hand_back(self) -> None:
        """The job goes back to its queue before any handler ran it: never run it."""
        self.aborted = True

    def abort(self, reason: str) -> bool:
        """Mark the job aborted (its handler's outcome is then dropped); False if it already was."""
        if self.aborted:
            return False
        self.abort_reason = reason
        self.aborted = True
        self.job.aborted = True
        return True


class Ledger:
    """The jobs a worker holds and its counters; thread-safe (see the module docstring).

    ``low`` is the in-flight count at which the dispatcher wants to pop again: a finished job
    that brings ``inflight`` down to it (or to 0) wakes the dispatcher.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.cond = threading.Condition()
        self.running: dict[str, Held] = {}
        self.inflight = 0           # jobs popped and not finished (running + prefetched)
        self.low = concurrency - 1
        self.pending_completes = 0  # handlers returned whose completion is not sent yet
        self.processed = 0          # handlers that returned
        self.failed = 0             # handlers that raised (failed or retried)

    # ------------------------------------------------------------------ holding jobs
    def hold(self, rec: Held) -> Held | None:
        """Hold ``rec``; the earlier record of the same jid, when this worker holds it already
        (leased to it again after a timeout: that run lost its lease)."""
        with self.cond:
            earlier = self.running.get(rec.job.jid)
            self.running[rec.job.jid] = rec
            self.inflight += 1
        return earlier

    def get(self, jid: str) -> Held | None:
        """The record of a job held now."""
        with self.cond:
            return self.running.get(jid)

    def begin(self, rec: Held) -> bool:
        """A handler is about to run ``rec``'s job: False when it was aborted (handed back) first."""
        with self.cond:
            return rec.begin()

    def release(self, rec: Held) -> None:
        """``rec``'s handler is done (or it was handed back): one slot is free again."""
        with self.cond:
            if self.running.get(rec.job.jid) is rec:  # the jid may be held again by a newer lease
                del self.running[rec.job.jid]
            self.inflight -= 1
            if self.inflight == self.low or self.inflight == 0:
                self.cond.notify_all()

    def due_heartbeats(self, now: float) -> list[Held]:
        """Records whose heartbeat is due at monotonic time ``now`` (aborted ones excepted)."""
        with self.cond:
            return [h for h in self.running.values() if h.next_beat <= now and not h.aborted]

    # ------------------------------------------------------------------ counting
    def returned(self, completing: bool) -> None:
        """A handler returned; ``completing``: its completion is queued to be sent."""
        with self.cond:
            self.processed += 1
            if completing:
                self.pending_completes += 1

    def raised(self) -> None:
        """A handler raised."""
        with self.cond:
            self.failed += 1

    def completions_sent(self, n: int) -> None:
        """``n`` queued completions left the queue (sent, or given up on)."""
        with self.cond:
            self.pending_completes -= n
            self.cond.notify_all()

    # ------------------------------------------------------------------ waiting
    def wake_all(self) -> None:
        """Wake every waiter (the worker is stopping)."""
        with self.cond:
            self.cond.notify_all()

    def wait_for_room(self, extra_of: Callable[[], int], stopping: threading.Event) -> int:
        """Block until the dispatcher should pop again; the free slots then (0 when stopping).

        ``extra_of()`` is how many jobs to hold beyond ``concurrency`` now (the prefetch). The
        dispatcher refills when a slot frees; with a big prefetch, once half of what it held ran.
        """
        concurrency = self.concurrency
        with self.cond:
            while not stopping.is_set():
                extra = extra_of()
                if not extra:
                    self.low = concurrency - 1
                else:
                    self.low = concurrency + (extra // 2 if extra > concurrency else 0)
                if self.inflight <= self.low:
                    return concurrency + extra - self.inflight
                self.cond.wait()
        return 0

    def free_slots(self, extra: int) -> int:
        """Slots free now, holding up to ``extra`` jobs beyond ``concurrency``."""
        with self.cond:
            return self.concurrency + extra - self.inflight

    def wait_idle(self, stopping: threading.Event) -> bool:
        """Block until no job is in flight and every completion was sent (True), or the worker
        stops first (False)."""
        with self.cond:
            while (self.inflight or self.pending_completes) and not stopping.is_set():
                self.cond.wait()
            return not (self.inflight or self.pending_completes)

    def abort_unstarted(self) -> list[Held]:
        """Shutdown: mark the prefetched jobs (no handler started) aborted; returns them."""
        with self.cond:
            unstarted = [rec for rec in self.running.values() if not rec.started]
            for rec in unstarted:
                rec.hand_back()
        return unstarted

    def wait_finished(self, timeout: float) -> list[Held]:
        """Wait up to ``timeout`` seconds for the jobs in flight to finish; those still held."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.inflight and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return list(self.running.values())

    def wait_completions_sent(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the queued completions to be sent."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pending_completes and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)


__all__ = ["Held", "Ledger"]
