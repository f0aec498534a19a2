"""The worker's dispatcher: pops jobs from its queues in strict priority order and hands them to
the runner, and blocks in Redis while there is nothing to do.

Dispatch never sleeps to poll. An idle dispatcher blocks on the wake keys of its queues (and its
own control key, which ``Waker.wake`` pushes) with a timeout bounded by the due time its last pop
reported (a scheduled job, a recurring spawn or an expired lease), with the next pop sent behind
the wait (``client.wait_then_pop``), so a job put while it waits starts within one round trip. A
busy dispatcher pops as many jobs as it has free slots (plus a prefetch while handlers are short)
in one Lua call that also carries the completions queued since its last pop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import redis

from queueengine.store.connection import is_transient
from queueengine.store.outages import warn
from queueengine.worker.handlers import Handler, resolve
from queueengine.worker.ledger import Held

if TYPE_CHECKING:
    from queueengine.client import Client
    from queueengine.job import Job
    from queueengine.worker.completions import Completions
    from queueengine.worker.ledger import Ledger
    from queueengine.worker.runner import Runner

log = logging.getLogger("queueengine.worker")

INLINE_BELOW = 0.001
"""A lone sync job whose handlers average under this (seconds) runs on the dispatcher thread."""
TINY_PREFETCH = 32
"""Jobs held beyond ``concurrency`` while handlers average under 2 ms (auto prefetch)."""
DUE_NOW = 0.01
"""A due time this close (seconds) counts as "now": pop again at once."""


class Outage:
    """Riding out Redis being away or changing hands (restart, AOF loading, failover,
    CLUSTERDOWN): wait, backing off from 0.1 s to ``max_wait`` while it lasts, then try again. A
    worker never dies of it; in-flight jobs keep running and their completions are retried."""

    def __init__(self, max_wait: float, stopping: threading.Event) -> None:
        self._max_wait = max_wait
        self._stopping = stopping
        self._at = -1e9       # when Redis was last found unreachable
        self._delay = 0.1

    def ride_out(self, exc: BaseException) -> None:
        """Wait before the next try (returns early when the worker stops)."""
        now = time.monotonic()
        fresh = now - self._at > 2 * self._max_wait
        self._delay = 0.1 if fresh else min(self._max_wait, self._delay * 2)
        self._at = now
        log.warning("Redis unreachable or failing over (%s); trying again in %.1fs", exc, self._delay)
        self._stopping.wait(self._delay)


class Waker:
    """The dispatcher's own wake list (``_ctl-<worker>``): pushing it ends the dispatcher's
    blocking wait at once (to stop, or to see a retry due sooner than the wait's end)."""

    def __init__(self, client: Client, worker: str) -> None:
        self._client = client
        self.queue = f"_ctl-{worker}"

    def wake(self) -> None:
        """Wake the dispatcher from its blocking wait (it then pops and recomputes its timeout)."""
        try:
            key = self._client.keys.wake(self.queue)
            pipe = self._client.redis.pipeline(transaction=False)
            pipe.lpush(key, "wake")
            pipe.ltrim(key, 0, 0)
            pipe.expire(key, 60)
            pipe.execute()
        except Exception:  # the dispatcher then notices within max_wait
            log.debug("could not wake the dispatcher", exc_info=True)

    def delete(self) -> None:
        """Delete the wake list (the worker stopped)."""
        self._client.redis.delete(self._client.keys.wake(self.queue))


class Ready(NamedTuple):
    """What the pop sent behind a blocking wait brought."""

    jobs: list[Job]
    due: float | None
    asked: int


class Popped(NamedTuple):
    """One pop: the jobs, the seconds until more may be due (None: nothing pending), and
    whether it got all it asked for (then there may be more right now)."""

    jobs: list[Job]
    due: float | None
    full: bool


class Dispatcher:
    """Pops the jobs of ``queues`` for one worker and starts them (see the module docstring).

    ``burst=True``: stop when nothing is ready in the queues and every job ran. ``run`` returns
    once ``stopping`` is set.
    """

    def __init__(self, client: Client, queues: list[str], name: str, *, ledger: Ledger, runner: Runner,
                 completions: Completions, waker: Waker, next_beat: Callable[[Job], float],
                 stopping: threading.Event, outage: Outage, prefetch: int | None, burst: bool,
                 max_wait: float) -> None:
        self.client = client
        self.queues = queues
        self.name = name
        self._ledger = ledger
        self._runner = runner
        self._completions = completions
        self._next_beat = next_beat
        self._stopping = stopping
        self._outage = outage
        self._prefetch = prefetch
        self._burst = burst
        self._max_wait = max_wait
        self._wait_queues = [*queues, waker.queue]
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._idle_spins = 0              # "due now" pops in a row that found nothing
        self._ready: Ready | None = None  # what the last wait's pop brought, not started yet

    def run(self) -> None:
        """Pop and start jobs until the worker stops (or, in burst mode, the queues are empty)."""
        max_wait = self._bounded_wait()
        while not self._stopping.is_set():
            free = self._ledger.wait_for_room(self.prefetch_now, self._stopping)
            if self._stopping.is_set():
                break
            popped = self._pop(free)
            if popped is None:
                continue  # Redis was away (ridden out): pop again
            if popped.jobs:
                self._idle_spins = 0
                self._start_all(popped.jobs)
                if self._more_now(popped):
                    continue
                # the queues are drained (the pop dropped their wake tokens): wait for a put
            elif self._burst:
                if self._burst_done():
                    break
                continue
            self._wait(self._wait_timeout(max_wait, popped))
        if self._ready is not None:
            self._release_unstarted(self._ready.jobs)

    # ------------------------------------------------------------------ popping
    def _pop(self, free: int) -> Popped | None:
        """Take what the last wait's pop brought, or pop up to ``free`` jobs sending the queued
        completions along (one Lua call); None when Redis was away."""
        if self._ready is not None:
            ready, self._ready = self._ready, None
            return Popped(ready.jobs, ready.due, len(ready.jobs) >= ready.asked)
        batch = self._completions.claim()
        try:
            if batch:
                states, jobs, due = self.client.complete_and_pop(
                    [(rec.job, payload) for rec, payload in batch], self.queues, free, worker=self.name)
                self._completions.done(batch, states)
            else:
                jobs, due = self.client.pop_or_due(self.queues, free, worker=self.name)
        except Exception as exc:
            if batch:
                self._completions.failed(batch)
            if not is_transient(exc):
                raise
            self._outage.ride_out(exc)
            return None
        return Popped(jobs, due, len(jobs) >= free)

    def _more_now(self, popped: Popped) -> bool:
        """Whether to pop again as soon as a slot is free rather than wait for a put."""
        if popped.full or (popped.due is not None and popped.due <= DUE_NOW) or self._burst:
            return True  # there may be more right now
        return self._completions.queued()  # send them with one more pop (it also sees a job put meanwhile)

    def prefetch_now(self) -> int:
        """How many jobs to hold beyond ``concurrency``: batches pops of short sync jobs.

        Auto (``prefetch=None``): ``concurrency`` while sync handlers average under 50 ms and no
        async handler was seen, else 0 (a long job never keeps a popped job from idle workers).
        """
        runner, concurrency = self._runner, self._ledger.concurrency
        if runner.seen_async:
            return 0
        if self._prefetch is not None:
            return self._prefetch
        if runner.avg_runtime < 0.002:
            return max(concurrency, TINY_PREFETCH)  # tiny jobs: pop (and complete) in big batches
        return concurrency if runner.avg_runtime < 0.05 else 0

    # ------------------------------------------------------------------ starting jobs
    def _start_all(self, jobs: list[Job]) -> None:
        # a lone tiny job while nothing else runs: run it here (no hand-off to a pool thread);
        # its completion then rides on the next pop
        inline = len(jobs) == 1 and self._ledger.inflight == 0 and self._runner.avg_runtime < INLINE_BELOW
        for job in jobs:
            self.begin(job, inline)

    def begin(self, job: Job, inline: bool = False) -> None:
        """Hold ``job`` and start its handler."""
        key = (job.klass, job.queue_name)
        handler = self._handlers.get(key)
        if handler is None:
            handler = self._handlers[key] = resolve(job.klass, job.queue_name)
        if job.data_problem is not None:  # fails the job: no handler runs on data it cannot see
            handler = Handler(None, False, None, f"{job.queue_name}-UnreadableData", job.data_problem)
        rec = Held(job, handler, self._next_beat(job))
        earlier = self._ledger.hold(rec)
        if earlier is not None:  # leased to us again (timed out, reclaimed): the old run lost its lease
            self._runner.abort_held(earlier, "lease lost: the job was leased again")
        self._runner.run(rec, inline)

    def _release_unstarted(self, jobs: list[Job]) -> None:
        """Jobs a wait's pop leased just as the worker stopped: back to their queues, unrun."""
        for job in jobs:
            try:
                job.release()
            except Exception as exc:
                warn(log, exc, "could not hand back job %s; its lease will expire", job.jid)

    # ------------------------------------------------------------------ burst mode
    def _burst_done(self) -> bool:
        """Burst mode, a pop found nothing: wait for the running jobs; True when nothing is
        ready in the queues then either (after one more pop)."""
        self._completions.idle()
        if not self._ledger.wait_idle(self._stopping):
            return False
        jobs = self.client.pop_from(self.queues, self._ledger.concurrency, worker=self.name)
        for job in jobs:
            self.begin(job)
        return not jobs

    # ------------------------------------------------------------------ waiting
    def _wait_timeout(self, max_wait: float, popped: Popped) -> float:
        """How long the next wait may block: until the pop's due time, at most ``max_wait``."""
        due = popped.due
        if not popped.jobs and due is not None and due <= DUE_NOW:
            # "due now" yet the pop found nothing (paused queue, concurrency limit, throttle):
            # back off so this cannot spin; a put still wakes the wait at once
            self._idle_spins = min(self._idle_spins + 1, 12)
            due = DUE_NOW * 2 ** self._idle_spins
        else:
            self._idle_spins = 0
        return max_wait if due is None else min(max_wait, max(float(due), DUE_NOW))

    def _wait(self, timeout: float) -> None:
        """Block until a put wakes one of the queues (or the waker), at most ``timeout``
        seconds; the pop sent behind the wait is kept for the next turn (``_ready``)."""
        self._completions.idle()  # nobody pops soon: finished jobs are completed at once
        try:
            free = self._ledger.free_slots(self.prefetch_now())
            if free > 0:
                jobs, due = self.client.wait_then_pop(self._wait_queues, timeout, self.queues, free,
                                                      worker=self.name)
                self._ready = Ready(jobs, due, free)
            else:
                self.client.wait_for_work(self._wait_queues, timeout)
        except redis.exceptions.TimeoutError:
            return  # the socket timed out just before BLPOP did: same as a timeout
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._outage.ride_out(exc)

    def _bounded_wait(self) -> float:
        """``max_wait``, kept under the connection's socket timeout (redis-py 8 defaults to 5 s)
        so that a blocking wait ends on Redis's timeout, not the socket's."""
        try:
            pool = self.client.redis.connection_pool
            conn = pool.get_connection()
            try:
                socket_timeout = conn.socket_timeout
            finally:
                pool.release(conn)
        except Exception:
            return self._max_wait
        if socket_timeout:
            return max(0.1, min(self._max_wait, float(socket_timeout) - 1.0))
        return self._max_wait


__all__ = ["DUE_NOW", "INLINE_BELOW", "TINY_PREFETCH", "Dispatcher", "Outage", "Popped", "Ready", "Waker"]
