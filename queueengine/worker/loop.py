"""The worker: pops jobs from several queues in strict priority order and runs their handlers.

Dispatch never sleeps to poll. An idle worker blocks on the wake keys of its queues
(``client.wait_for_work``) with a timeout bounded by ``client.next_due`` (a scheduled job, a
recurring spawn or an expired lease), so it costs Redis well under one command per second and
a job put while it waits starts within milliseconds. A busy worker pops as many jobs as it has
free slots in one Lua call and completes finished jobs in pipelined batches.

Threads run synchronous handlers (``concurrency`` of them at most); one asyncio loop runs
``async`` handlers; both share the ``concurrency`` budget. A keeper thread heartbeats every held
lease at about a third of its length and says the worker is alive; a listener thread follows the
worker's own pub/sub channel and aborts a job whose lease is lost or that is canceled (async
tasks are cancelled; threads cannot be killed, so a sync handler sees ``job.aborted`` and gets
``JobAborted`` from ``checkpoint()``; an aborted job is never completed).

SIGTERM/SIGINT (when ``run`` is called on the main thread): stop fetching, let running jobs
finish for up to ``shutdown_timeout`` seconds, hand the rest back to their queues (a move to the
same queue: no retry is burnt), then exit. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue as queue_mod
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import redis

from queueengine.store.connection import is_transient
from queueengine.store.outages import warn
from queueengine.worker.completions import Completions
from queueengine.worker.handlers import (
    Handler,
    JobAborted,
    resolve,
)
from queueengine.worker.leases import Held, LeaseKeeper
from queueengine.worker.runner import _STOP, Runner, _current

log = logging.getLogger("queueengine.worker")

INLINE_BELOW = 0.001
"""A lone sync job whose handlers average under this (seconds) runs on the dispatcher thread."""
TINY_PREFETCH = 32
"""Jobs held beyond ``concurrency`` while handlers average under 2 ms (auto prefetch)."""
def checkpoint() -> None:
    """Call from a handler at safe points: raises ``JobAborted`` once its job's lease is lost or it is canceled."""
    rec = _current.get()
    if rec is not None and rec.aborted:
        raise JobAborted(f"job {rec.job.jid} was aborted: {rec.abort_reason}")


def current_job() -> Any:
    """The job the calling handler is running (None outside a handler)."""
    rec = _current.get()
    return rec.job if rec is not None else None


class Worker(Runner):
    """Run the jobs of ``queues`` (strict priority order) with up to ``concurrency`` at once.

    ``burst=True`` works until nothing is ready in the queues, then returns. ``run()`` blocks;
    ``stop()`` (from any thread) asks it to finish gracefully.
    """

    def __init__(self, client: Any, queues: Sequence[str], concurrency: int = 4, mode: str | None = None,
                 name: str | None = None, *, burst: bool = False, shutdown_timeout: float = 30.0,
                 max_wait: float = 5.0, beat_interval: float = 10.0, install_signals: bool = True,
                 prefetch: int | None = None, housekeep_interval: float | None = 60.0) -> None:
        queues = [queues] if isinstance(queues, str) else list(queues)
        if not queues or not all(isinstance(q, str) and q for q in queues):
            raise ValueError("queues must be a non-empty list of queue names")
        if len(set(queues)) != len(queues):
            raise ValueError(f"queues lists a queue twice: {queues!r}")
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
        self.processed = 0      # handlers that returned
        self.failed = 0         # handlers that raised (failed or retried)
        self._cond = threading.Condition()
        self._running: dict[str, Held] = {}
        self._inflight = 0      # jobs popped and not finished (running + prefetched)
        self._low = concurrency - 1   # the dispatcher refills when _inflight drops to this
        self.prefetch = prefetch
        self._avg_runtime = 1.0       # moving average of sync handler run time (s)
        self._seen_async = False
        self._pending_completes = 0
        self._completions = Completions(client, self._completions_sent)
        self._loop_ident: int | None = None
        self._stopping = threading.Event()
        self._outage_at = -1e9      # when Redis was last found unreachable (see _ride_out)
        self._outage_delay = 0.1
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._work: queue_mod.SimpleQueue[Any] = queue_mod.SimpleQueue()
        self._done: queue_mod.SimpleQueue[Any] = queue_mod.SimpleQueue()
        self._signals: queue_mod.SimpleQueue[int] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pool_size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper = LeaseKeeper(client, self.name, self._running, self._cond, self.abort, beat_interval,
                                   housekeep_interval)
        self._signal_count = 0
        self._ctl_queue = f"_ctl-{self.name}"
        self._old_handlers: dict[int, Any] = {}

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        """Work until stopped (or, in burst mode, until the queues are empty); return an exit code."""
        try:
            self._start()
        except BaseException:
            for sig, old in self._old_handlers.items():
                signal.signal(sig, old)
            self._old_handlers.clear()
            raise
        try:
            self._dispatch()
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        """Stop fetching jobs and wake the dispatcher; ``run`` then finishes in-flight jobs and returns."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._nudge()

    def _nudge(self) -> None:
        """Wake the dispatcher from its blocking wait (it then pops and recomputes next_due)."""
        try:
            key = self._wake_key(self._ctl_queue)
            pipe = self.client.redis.pipeline(transaction=False)
            pipe.lpush(key, "wake")
            pipe.ltrim(key, 0, 0)
            pipe.expire(key, 60)
            pipe.execute()
        except Exception:  # the dispatcher then notices within max_wait
            log.debug("could not wake the dispatcher", exc_info=True)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _wake_key(self, queue: str) -> str:
        from queueengine.store.keys import Keys

        return Keys(self.client.namespace).wake(queue)

    def info(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "queues": list(self.queues),
                "concurrency": self.concurrency, "mode": self.mode, "started": time.time(),
                "burst": self.burst}

    def _start(self) -> None:
        # signals first: a SIGTERM during start-up (a supervisor stopping a child it just
        # restarted) then stops the worker the graceful way, deregistered, instead of killing it
        if self.install_signals and threading.current_thread() is threading.main_thread():
            self._spawn(self._on_signals, "signals")
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old_handlers[sig] = signal.signal(sig, self._signal_handler)
        self._refuse_dispatch_namespace()
        self._warn_if_name_taken()
        self._register()
        self._keeper.start(self._spawn)
        self._spawn(self._complete_loop, "completer")
        log.info("worker %s started: queues %s, concurrency %d", self.name, ",".join(self.queues), self.concurrency)

    def _refuse_dispatch_namespace(self) -> None:
        """Jobs of the simple and recoverable delivery modes name no handler (a dispatch worker's
        ``jobs.each`` runs them): this worker would fail every one of them, so it does not start."""
        try:
            raw = self.client.redis.get(self.client.keys.key("mode"))
        except Exception:
            return  # Redis away: the registration below rides it out
        mode = raw.decode() if isinstance(raw, bytes) else raw
        if mode in ("simple", "recoverable"):
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

    def _spawn(self, target: Callable[[], None], what: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"qe-{what}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _signal_handler(self, signum: int, frame: FrameType | None) -> None:
        self._signal_count += 1
        if self._signal_count > 1:
            sys.stderr.write(f"queueengine worker {self.name}: second signal {signum}, exiting now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self._stopping.set()
        self._signals.put(signum)  # SimpleQueue.put is safe in a signal handler

    def _on_signals(self) -> None:
        signum = self._signals.get()
        log.info("worker %s: signal %d, finishing running jobs (a second signal exits at once)", self.name, signum)
        self.stop()

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self) -> None:
        client, queues, cond = self.client, self.queues, self._cond
        wait_queues = [*queues, self._ctl_queue]
        max_wait = self._bounded_wait()
        idle_spins = 0
        ready: tuple[list[Any], float | None] | None = None   # what the last wait's pop brought
        asked = 0   # how many jobs that pop asked for (free may have grown since: prefetch, finished jobs)
        while not self._stopping.is_set():
            with cond:
                while not self._stopping.is_set():
                    extra = self._prefetch_now()
                    # refill when a slot frees; with a big prefetch, once half of what was held ran
                    if not extra:
                        self._low = self.concurrency - 1
                    else:
                        self._low = self.concurrency + (extra // 2 if extra > self.concurrency else 0)
                    if self._inflight <= self._low:
                        break
                    cond.wait()
                free = self.concurrency + extra - self._inflight
            if self._stopping.is_set():
                break
            batch = [] if ready is not None else self._completions.claim()
            try:
                if ready is not None:
                    (jobs, due), ready = ready, None
                    full = len(jobs) >= asked
                elif batch:
                    states, jobs, due = client.complete_and_pop(
                        [(rec.job, payload) for rec, payload in batch], queues, free, worker=self.name)
                    self._completions.done(batch, states)
                    full = len(jobs) >= free
                else:
                    jobs, due = client.pop_or_due(queues, free, worker=self.name)
                    full = len(jobs) >= free
            except Exception as exc:
                if batch:
                    self._completions.failed(batch)
                if not is_transient(exc):
                    raise
                self._ride_out(exc)
                continue
            if jobs:
                idle_spins = 0
                # a lone tiny job while nothing else runs: run it here (no hand-off to a pool
                # thread); its completion then rides on the next pop
                inline = len(jobs) == 1 and self._inflight == 0 and self._avg_runtime < INLINE_BELOW
                for job in jobs:
                    self._begin(job, inline)
                if full or (due is not None and due <= 0.01) or self.burst:
                    continue  # there may be more right now: pop again as soon as a slot is free
                if self._completions.queued():
                    continue  # send them with one more pop (it also sees a job put meanwhile)
                # the queues are drained (the pop dropped their wake tokens): wait for a put
            elif self.burst:
                self._completions.idle()
                with cond:
                    while (self._inflight or self._pending_completes) and not self._stopping.is_set():
                        cond.wait()
                    busy = self._inflight or self._pending_completes
                if not busy and self._empty():
                    break
                continue
            try:
                if not jobs and due is not None and due <= 0.01:
                    # "due now" yet the pop found nothing (paused queue, concurrency limit, throttle):
                    # back off so this cannot spin; a put still wakes the wait at once
                    idle_spins = min(idle_spins + 1, 12)
                    due = 0.01 * 2 ** idle_spins
                else:
                    idle_spins = 0
                timeout = max_wait if due is None else min(max_wait, max(float(due), 0.01))
                self._completions.idle()  # nobody pops soon: finished jobs are completed at once
                with cond:
                    free = self.concurrency + self._prefetch_now() - self._inflight
                if free > 0:
                    asked = free
                    ready = client.wait_then_pop(wait_queues, timeout, queues, free, worker=self.name)
                else:
                    client.wait_for_work(wait_queues, timeout)
            except redis.exceptions.TimeoutError:
                continue  # the socket timed out just before BLPOP did: same as a timeout
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._ride_out(exc)

        if ready is not None:
            self._release_unstarted(ready[0])

    def _release_unstarted(self, jobs: list[Any]) -> None:
        """Jobs a wait's pop leased just as the worker stopped: back to their queues, unrun."""
        for job in jobs:
            try:
                job.release()
            except Exception as exc:
                warn(log, exc, "could not hand back job %s; its lease will expire", job.jid)

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
                self._ride_out(exc)

    def _ride_out(self, exc: BaseException) -> None:
        """Redis is away or changing hands (restart, AOF loading, failover, CLUSTERDOWN): wait,
        backing off from 0.1 s to ``max_wait`` while it lasts, then try again. A worker never dies
        of it; in-flight jobs keep running and their completions are retried."""
        now = time.monotonic()
        fresh = now - self._outage_at > 2 * self.max_wait
        self._outage_delay = 0.1 if fresh else min(self.max_wait, self._outage_delay * 2)
        self._outage_at = now
        log.warning("Redis unreachable or failing over (%s); trying again in %.1fs", exc, self._outage_delay)
        self._stopping.wait(self._outage_delay)

    def _prefetch_now(self) -> int:
        """How many jobs to hold beyond ``concurrency``: batches pops of short sync jobs.

        Auto (``prefetch=None``): ``concurrency`` while sync handlers average under 50 ms and no
        async handler was seen, else 0 (a long job never keeps a popped job from idle workers).
        """
        if self._seen_async:
            return 0
        if self.prefetch is not None:
            return self.prefetch
        if self._avg_runtime < 0.002:
            return max(self.concurrency, TINY_PREFETCH)  # tiny jobs: pop (and complete) in big batches
        return self.concurrency if self._avg_runtime < 0.05 else 0

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
            return self.max_wait
        if socket_timeout:
            return max(0.1, min(self.max_wait, float(socket_timeout) - 1.0))
        return self.max_wait

    def _empty(self) -> bool:
        """Burst mode: nothing ready now in any queue (after one more pop)."""
        jobs = self.client.pop_from(self.queues, self.concurrency, worker=self.name)
        for job in jobs:
            self._begin(job)
        return not jobs

    def _begin(self, job: Any, inline: bool = False) -> None:
        key = (job.klass, job.queue_name)
        handler = self._handlers.get(key)
        if handler is None:
            handler = self._handlers[key] = resolve(job.klass, job.queue_name)
        rec = Held(job, handler, self._keeper.next_beat(job))
        with self._cond:
            earlier = self._running.get(job.jid)
            self._running[job.jid] = rec
            self._inflight += 1
        if earlier is not None:  # leased to us again (timed out, reclaimed): the old run lost its lease
            self._abort_rec(earlier, "lease lost: the job was leased again")
        if handler.is_async:
            self._seen_async = True
            self._async_loop().call_soon_threadsafe(self._create_task, rec)
        elif inline:
            self._run_one(rec)
        else:
            if self._pool_size < self.concurrency:
                self._pool_size += 1
                self._spawn(self._pool_thread, f"job-{self._pool_size}")
            self._work.put(rec)

    # ------------------------------------------------------------------ shutdown
    def _shutdown(self) -> None:
        self._stopping.set()
        with self._cond:
            unstarted = [rec for rec in self._running.values() if not rec.started]
            for rec in unstarted:
                rec.aborted = True
        for rec in unstarted:
            self._hand_back(rec, started=False)  # prefetched: give it back at once
        deadline = time.monotonic() + self.shutdown_timeout
        with self._cond:
            while self._inflight and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            leftover = list(self._running.values())
        for rec in leftover:
            self._hand_back(rec)
        self._done.put(_STOP)
        self._completions.idle()
        with self._cond:
            end = time.monotonic() + 10
            while self._pending_completes and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
        self._keeper.stop()
        for _ in range(self._pool_size):
            self._work.put(_STOP)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        try:
            self.client.workers.deregister(self.name)
            self.client.redis.delete(self._wake_key(self._ctl_queue))
        except Exception as exc:
            warn(log, exc, "could not deregister worker %s", self.name)
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()
        log.info("worker %s stopped: %d jobs run, %d raised", self.name, self.processed, self.failed)

    def _hand_back(self, rec: Held, started: bool = True) -> None:
        job = rec.job
        if started:
            self.abort(job.jid, "worker shutting down; handed back")
        else:
            rec.aborted = True
        try:
            job.move(job.queue_name)
            if started:
                log.warning("job %s did not finish within %.0fs of shutdown; handed back to %s",
                            job.jid, self.shutdown_timeout, job.queue_name)
        except Exception as exc:
            warn(log, exc, "could not hand back job %s; its lease will expire", job.jid)


__all__ = ["JobAborted", "Worker", "checkpoint", "current_job"]
