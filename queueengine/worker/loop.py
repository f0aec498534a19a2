"""The worker: pops jobs from several queues in strict priority order and runs their handlers.

``Worker`` is made of parts, each its own object with its own state, given what it needs when
the worker builds them:

* :class:`~queueengine.worker.ledger.Ledger`: the jobs held, the slots in flight and the
  counters, behind one lock (every part gets the same one);
* :class:`~queueengine.worker.dispatcher.Dispatcher`: pops (one Lua call for as many jobs as
  there are free slots, carrying the queued completions) and blocks in Redis when there is
  nothing to do; never sleeps to poll;
* :class:`~queueengine.worker.runner.Runner`: runs sync handlers on up to ``concurrency``
  threads and ``async`` ones on one asyncio loop (both share the ``concurrency`` budget), settles
  their outcome, aborts jobs;
* :class:`~queueengine.worker.completions.Completions`: sends completions in batches;
* :class:`~queueengine.worker.leases.LeaseKeeper`: heartbeats every held lease at about a third
  of its length, says the worker is alive, and follows the worker's channel, aborting a job whose
  lease is lost or that is canceled (an async task is cancelled; a sync handler sees
  ``job.aborted`` and gets ``JobAborted`` from ``checkpoint()``; an aborted job is never completed);
* :class:`~queueengine.worker.signals.SignalHandling`: SIGTERM/SIGINT (when ``run`` is called
  on the main thread): stop fetching, let running jobs finish for up to ``shutdown_timeout``
  seconds, hand the rest back to their queues (a move to the same queue: no retry is burnt),
  then exit. A second signal exits at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from queueengine.store.connection import is_transient
from queueengine.store.keys import ModeKeys
from queueengine.store.outages import warn
from queueengine.worker.completions import Completions
from queueengine.worker.dispatcher import Dispatcher, Outage, Waker
from queueengine.worker.leases import LeaseKeeper
from queueengine.worker.ledger import Held, Ledger
from queueengine.worker.runner import Runner, checkpoint, current_job, spawn
from queueengine.worker.signals import SignalHandling

if TYPE_CHECKING:
    from queueengine.client import Client

log = logging.getLogger("queueengine.worker")

DISPATCH_ONLY_MODES = ("simple", "recoverable")
"""Delivery modes whose jobs name no handler: a ``queueengine.dispatch`` worker runs them."""


def _checked_queues(queues: Sequence[str] | str) -> list[str]:
    names = [queues] if isinstance(queues, str) else list(queues)
    if not names or not all(isinstance(q, str) and q for q in names):
        raise ValueError("queues must be a non-empty list of queue names")
    if len(set(names)) != len(names):
        raise ValueError(f"queues lists a queue twice: {names!r}")
    return names


def _check_options(concurrency: int, mode: str | None, prefetch: int | None, housekeep_interval: float | None,
                   shutdown_timeout: float, max_wait: float, beat_interval: float) -> None:
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if mode not in (None, "reliable"):
        raise ValueError(f"mode {mode!r}: this worker runs reliable (Qless) jobs; the simple and "
                         "recoverable modes are worked by queueengine.dispatch")
    if prefetch is not None and (not isinstance(prefetch, int) or prefetch < 0):
        raise ValueError(f"prefetch must be a whole number >= 0 or None, got {prefetch!r}")
    if housekeep_interval is not None and housekeep_interval <= 0:
        raise ValueError(f"housekeep_interval must be > 0 or None (off), got {housekeep_interval!r}")
    if shutdown_timeout < 0 or max_wait <= 0 or beat_interval <= 0:
        raise ValueError("shutdown_timeout must be >= 0, max_wait and beat_interval > 0")


class Worker:
    """Run the jobs of ``queues`` (strict priority order) with up to ``concurrency`` at once.

    ``burst=True`` works until nothing is ready in the queues, then returns. ``run()`` blocks;
    ``stop()`` (from any thread) asks it to finish gracefully.
    """

    def __init__(self, client: Client, queues: Sequence[str] | str, concurrency: int = 4, mode: str | None = None,
                 name: str | None = None, *, burst: bool = False, shutdown_timeout: float = 30.0,
                 max_wait: float = 5.0, beat_interval: float = 10.0, install_signals: bool = True,
                 prefetch: int | None = None, housekeep_interval: float | None = 60.0) -> None:
        queues = _checked_queues(queues)
        _check_options(concurrency, mode, prefetch, housekeep_interval, shutdown_timeout, max_wait, beat_interval)
        self.client = client
        self.queues = queues
        self.concurrency = concurrency
        self.mode = mode or "reliable"
        self.name: str = name or client.worker_name
        self.burst = burst
        self.shutdown_timeout = shutdown_timeout
        self.max_wait = max_wait
        self.beat_interval = beat_interval
        self.install_signals = install_signals
        self.prefetch = prefetch
        self._stopping = threading.Event()
        self._ledger = Ledger(concurrency)
        self._completions = Completions(client, self._ledger.completions_sent)
        self._waker = Waker(client, self.name)
        self._outage = Outage(max_wait, self._stopping)
        self._runner = Runner(self._ledger, self._completions, wake_dispatcher=self._waker.wake, max_wait=max_wait)
        self._keeper = LeaseKeeper(client, self.name, self._ledger, self._runner.abort, beat_interval,
                                   housekeep_interval)
        self._dispatcher = Dispatcher(
            client, queues, self.name, ledger=self._ledger, runner=self._runner, completions=self._completions,
            waker=self._waker, next_beat=self._keeper.next_beat, stopping=self._stopping, outage=self._outage,
            prefetch=prefetch, burst=burst, max_wait=max_wait)
        self._signals = SignalHandling(self.name, self.stop, self._stopping)

    @property
    def processed(self) -> int:
        """Handlers that returned."""
        return self._ledger.processed

    @property
    def failed(self) -> int:
        """Handlers that raised (the job failed or was retried)."""
        return self._ledger.failed

    @property
    def stopping(self) -> bool:
        """Whether the worker was asked to stop."""
        return self._stopping.is_set()

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        """Work until stopped (or, in burst mode, until the queues are empty); return an exit code."""
        try:
            self._start()
        except BaseException:
            self._signals.restore()
            raise
        try:
            self._dispatcher.run()
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        """Stop fetching jobs and wake the dispatcher; ``run`` then finishes in-flight jobs and returns."""
        self._stopping.set()
        self._ledger.wake_all()
        self._waker.wake()

    def abort(self, jid: str, reason: str, since: float | None = None) -> bool:
        """Abort a running job: it is never completed; an async handler is cancelled (see
        ``Runner.abort``)."""
        return self._runner.abort(jid, reason, since)

    def info(self) -> dict[str, Any]:
        """What the worker registry shows of this worker."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "queues": list(self.queues),
                "concurrency": self.concurrency, "mode": self.mode, "started": time.time(),
                "burst": self.burst}

    def _start(self) -> None:
        # signals first: a SIGTERM during start-up (a supervisor stopping a child it just
        # restarted) then stops the worker the graceful way, deregistered, instead of killing it
        if self.install_signals:
            self._signals.install()
        self._refuse_dispatch_namespace()
        self._warn_if_name_taken()
        self._register()
        self._keeper.start(spawn)
        self._runner.start()
        log.info("worker %s started: queues %s, concurrency %d", self.name, ",".join(self.queues), self.concurrency)

    def _refuse_dispatch_namespace(self) -> None:
        """Jobs of the simple and recoverable delivery modes name no handler (a dispatch worker's
        ``jobs.each`` runs them): this worker would fail every one of them, so it does not start."""
        try:
            raw = self.client.redis.get(ModeKeys(self.client.namespace).mode)
        except Exception:
            return  # Redis away: the registration below rides it out
        mode = raw.decode() if isinstance(raw, bytes) else raw
        if mode in DISPATCH_ONLY_MODES:
            raise ValueError(f"namespace {self.client.namespace!r} is a {mode}-mode namespace "
                             f"(queueengine.dispatch): work it with manage.py qe_worker --mode {mode} "
                             "--handler app.jobs.handle, or a dispatch worker")

    def _warn_if_name_taken(self) -> None:
        """Two live workers sharing a name share their leases (qless-py's hostname problem): warn."""
        try:
            other = self.client.workers[self.name]
            info, seen = other.get("info") or {}, other.get("last_seen")
            if seen is None or (info.get("host"), info.get("pid")) == (socket.gethostname(), os.getpid()):
                return
            if float(self.client.now()) - float(seen) < 3 * self.beat_interval:
                log.warning("another live worker is named %r (host %s, pid %s): give each worker its own name",
                            self.name, info.get("host"), info.get("pid"))
        except Exception:
            log.debug("could not check the worker name", exc_info=True)

    def _register(self) -> None:
        """Register in the worker registry; while Redis is away (or out of memory) keep trying,
        so a worker started during an outage waits for it instead of exiting (no crash loop
        under a supervisor)."""
        while True:
            try:
                self.client.workers.register(self.name, self.info())
                return
            except Exception as exc:
                if not is_transient(exc) or self._stopping.is_set():
                    raise
                self._outage.ride_out(exc)

    # ------------------------------------------------------------------ shutdown
    def _shutdown(self) -> None:
        self._stopping.set()
        for rec in self._ledger.abort_unstarted():
            self._hand_back(rec, started=False)  # prefetched: give it back at once
        for rec in self._ledger.wait_finished(self.shutdown_timeout):
            self._hand_back(rec)
        self._runner.stop_completer()
        self._completions.idle()
        self._ledger.wait_completions_sent(10.0)
        self._keeper.stop()
        self._runner.stop()
        try:
            self.client.workers.deregister(self.name)
            self._waker.delete()
        except Exception as exc:
            warn(log, exc, "could not deregister worker %s", self.name)
        self._signals.restore()
        log.info("worker %s stopped: %d jobs run, %d raised", self.name, self.processed, self.failed)

    def _hand_back(self, rec: Held, started: bool = True) -> None:
        """Give a job this worker holds back to its queue (no retry spent)."""
        job = rec.job
        if started:
            self._runner.abort(job.jid, "worker shutting down; handed back")
        try:
            job.move(job.queue_name)
            if started:
                log.warning("job %s did not finish within %.0fs of shutdown; handed back to %s",
                            job.jid, self.shutdown_timeout, job.queue_name)
        except Exception as exc:
            warn(log, exc, "could not hand back job %s; its lease will expire", job.jid)


__all__ = ["Worker", "checkpoint", "current_job"]
