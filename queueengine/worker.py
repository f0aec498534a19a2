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
import contextlib
import contextvars
import inspect
import logging
import os
import queue as queue_mod
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from time import perf_counter
from types import FrameType
from typing import Any

import redis

from queueengine.connection import is_transient
from queueengine.exceptions import LostLease
from queueengine.handlers import (
    Handler,
    JobAborted,
    failure_group,
    failure_message,
    failure_traceback,
    resolve,
)
from queueengine.heartbeats import Held, LeaseKeeper

log = logging.getLogger("queueengine.worker")

RUNNING = "running"
_current: contextvars.ContextVar[Held | None] = contextvars.ContextVar("queueengine_job", default=None)


def checkpoint() -> None:
    """Call from a handler at safe points: raises ``JobAborted`` once its job's lease is lost or it is canceled."""
    rec = _current.get()
    if rec is not None and rec.aborted:
        raise JobAborted(f"job {rec.job.jid} was aborted: {rec.abort_reason}")


def current_job() -> Any:
    """The job the calling handler is running (None outside a handler)."""
    rec = _current.get()
    return rec.job if rec is not None else None


_STOP = object()


class Worker:
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
        self._commit_lock = threading.Lock()
        self._commit_queue: list[tuple[Held, Any]] = []
        self._committing = False
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
        self._start()
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
        from queueengine.keys import Keys

        return Keys(self.client.namespace).wake(queue)

    def info(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "queues": list(self.queues),
                "concurrency": self.concurrency, "mode": self.mode, "started": time.time(),
                "burst": self.burst}

    def _start(self) -> None:
        self._warn_if_name_taken()
        self._register()
        self._keeper.start(self._spawn)
        self._spawn(self._complete_loop, "completer")
        if self.install_signals and threading.current_thread() is threading.main_thread():
            self._spawn(self._on_signals, "signals")
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old_handlers[sig] = signal.signal(sig, self._signal_handler)
        log.info("worker %s started: queues %s, concurrency %d", self.name, ",".join(self.queues), self.concurrency)

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
        while not self._stopping.is_set():
            with cond:
                while not self._stopping.is_set():
                    extra = self._prefetch_now()
                    self._low = self.concurrency - 1 if not extra else self.concurrency
                    if self._inflight <= self._low:
                        break
                    cond.wait()
                free = self.concurrency + extra - self._inflight
            if self._stopping.is_set():
                break
            try:
                jobs, due = client.pop_or_due(queues, free, worker=self.name)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._ride_out(exc)
                continue
            if jobs:
                idle_spins = 0
                for job in jobs:
                    self._begin(job)
                if len(jobs) >= free or (due is not None and due <= 0.01) or self.burst:
                    continue  # there may be more right now: pop again as soon as a slot is free
                # the queues are drained (the pop dropped their wake tokens): wait for a put
            elif self.burst:
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
                client.wait_for_work(wait_queues, timeout)
            except redis.exceptions.TimeoutError:
                continue  # the socket timed out just before BLPOP did: same as a timeout
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._ride_out(exc)

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

    def _begin(self, job: Any) -> None:
        key = (job.klass, job.queue_name)
        handler = self._handlers.get(key)
        if handler is None:
            handler = self._handlers[key] = resolve(job.klass, job.queue_name)
        rec = Held(job, handler, self._keeper.next_beat(job))
        with self._cond:
            self._running[job.jid] = rec
            self._inflight += 1
        if handler.is_async:
            self._seen_async = True
            self._async_loop().call_soon_threadsafe(self._create_task, rec)
        else:
            if self._pool_size < self.concurrency:
                self._pool_size += 1
                self._spawn(self._pool_thread, f"job-{self._pool_size}")
            self._work.put(rec)

    # ------------------------------------------------------------------ running handlers
    def _pool_thread(self) -> None:
        get = self._work.get
        while True:
            rec = get()
            if rec is _STOP:
                return
            _current.set(rec)
            commit = None
            try:
                if rec.handler.call is None:
                    self._settle_error(rec, None)
                    continue
                with self._cond:
                    rec.started = not rec.aborted
                if not rec.started:
                    continue  # handed back by the shutdown before it could start
                began = perf_counter()
                result = rec.handler.call(rec.job)
                self._avg_runtime = 0.9 * self._avg_runtime + 0.1 * (perf_counter() - began)
                if inspect.isawaitable(result):
                    result = asyncio.run_coroutine_threadsafe(_await(result), self._async_loop()).result()
            except BaseException as exc:  # noqa: BLE001 - a handler's SystemExit is a failure too
                self._settle_error(rec, exc)
            else:
                commit = self._settle_return(rec, result)
            finally:
                _current.set(None)
                self._finish(rec)
            if commit is not None:
                self._commit(commit)

    def _async_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._spawn(self._run_loop, "asyncio")
        return self._loop

    def _run_loop(self) -> None:
        assert self._loop is not None
        self._loop_ident = threading.get_ident()
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _create_task(self, rec: Held) -> None:
        rec.started = True
        rec.task = asyncio.get_running_loop().create_task(self._run_async(rec))
        if rec.aborted:
            rec.task.cancel()

    async def _run_async(self, rec: Held) -> None:
        _current.set(rec)
        try:
            if rec.handler.call is None:
                self._settle_error(rec, None)
                return
            result = await rec.handler.call(rec.job)
        except asyncio.CancelledError as exc:
            if not rec.aborted:
                self._settle_error(rec, exc)
        except BaseException as exc:  # noqa: BLE001
            self._settle_error(rec, exc)
        else:
            self._settle_return(rec, result)
        finally:
            self._finish(rec)

    def _settle_return(self, rec: Held, result: Any) -> tuple[Held, Any] | None:
        """Count a handler that returned; the completion to send from this thread (a pool
        thread), if any. On the asyncio loop the completer thread sends it instead."""
        self.processed += 1
        if rec.aborted or rec.job.state != RUNNING:
            return None  # lease lost, or the handler completed/failed/retried/moved the job itself
        with self._cond:
            self._pending_completes += 1
        if threading.get_ident() == self._loop_ident:
            self._done.put((rec, result))   # never block the asyncio loop
            return None
        return rec, result

    def _commit(self, item: tuple[Held, Any]) -> None:
        """Complete a job from the thread that ran it (no hand-off to another thread): the first
        thread to find no send in progress sends everything queued (one ``complete_many``) and
        goes on while more queued up meanwhile; the others only queue theirs."""
        with self._commit_lock:
            self._commit_queue.append(item)
            if self._committing:
                return
            self._committing = True
        while True:
            with self._commit_lock:
                batch, self._commit_queue = self._commit_queue[:512], self._commit_queue[512:]
                if not batch:
                    self._committing = False
                    return
            try:
                self._send_completions(batch)
            except BaseException:
                with self._commit_lock:
                    self._committing = False
                raise

    def _settle_error(self, rec: Held, exc: BaseException | None) -> None:
        job, handler = rec.job, rec.handler
        if exc is not None:
            self.failed += 1
        if rec.aborted:
            log.info("job %s aborted (%s); not completing it", job.jid, rec.abort_reason)
            return
        if isinstance(exc, LostLease):
            log.warning("job %s lost its lease while running (%s); leaving it to its new owner", job.jid, exc)
            return
        if exc is not None and job.state != RUNNING:
            log.warning("job %s raised after it was settled", job.jid, exc_info=exc)
            return
        try:
            if exc is None:
                job.fail(handler.error_group, handler.error_message)
            elif handler.policy is not None and isinstance(exc, handler.policy.on):
                delay = handler.policy.delay(job)
                left = job.retry(delay=delay, group=failure_group(job.queue_name, exc),
                                 message=f"{failure_message(exc)}\n\n{failure_traceback(exc)}")
                if left >= 0 and 0 < delay < self.max_wait:
                    self._nudge()  # the dispatcher may be waiting past the new due time
            else:
                job.fail(failure_group(job.queue_name, exc), failure_message(exc), traceback=failure_traceback(exc))
        except Exception:
            log.warning("could not record the failure of job %s", job.jid, exc_info=True)

    def _finish(self, rec: Held) -> None:
        with self._cond:
            self._running.pop(rec.job.jid, None)
            self._inflight -= 1
            if self._inflight == self._low or self._inflight == 0:
                self._cond.notify_all()

    # ------------------------------------------------------------------ completing
    def _complete_loop(self) -> None:
        get, get_nowait = self._done.get, self._done.get_nowait
        while True:
            batch = [get()]
            while len(batch) < 512:
                try:
                    batch.append(get_nowait())
                except queue_mod.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            self._send_completions([i for i in batch if i is not _STOP])
            if stop:
                return

    def _send_completions(self, batch: list[Any]) -> None:
        pairs = [(rec.job, result) for rec, result in batch if not rec.aborted]
        try:
            if pairs:
                self._complete(pairs)
        finally:
            with self._cond:
                self._pending_completes -= len(batch)
                self._cond.notify_all()

    def _complete(self, pairs: list[tuple[Any, Any]]) -> None:
        delay = 0.5
        while True:
            try:
                states = self.client.complete_many(pairs)
            except Exception as exc:
                if not is_transient(exc):
                    log.debug("batch complete failed; completing one by one", exc_info=True)
                    break
                # Redis is away: keep the results and try again for a while (the leases are no
                # longer heartbeated; past them, the engine refuses and the jobs are run again)
                if delay > 16:
                    log.error("could not complete %d jobs: Redis unreachable", len(pairs), exc_info=True)
                    return
                log.warning("Redis unreachable while completing %d jobs; retrying in %.1fs", len(pairs), delay)
                time.sleep(delay)
                delay *= 2
                continue
            for (job, _), state in zip(pairs, states, strict=False):
                if state != "complete":
                    log.warning("job %s was not completed: %s (its lease went elsewhere)", job.jid, state)
            return
        for job, result in pairs:  # one of them could not be sent (a result JSON cannot hold?)
            try:
                if job.state == RUNNING:
                    job.complete(result)
            except (TypeError, ValueError) as exc:
                try:
                    job.fail(f"{job.queue_name}-{type(exc).__name__}",
                             f"the handler's return value cannot be stored as the job's result: {exc}")
                except Exception:
                    log.warning("could not fail job %s", job.jid, exc_info=True)
            except Exception:
                log.warning("could not complete job %s", job.jid, exc_info=True)

    # ------------------------------------------------------------------ abort
    def abort(self, jid: str, reason: str) -> bool:
        """Abort a running job: it is never completed; an async handler is cancelled."""
        with self._cond:
            rec = self._running.get(jid)
        if rec is None or rec.aborted:
            return False
        rec.abort_reason = reason
        rec.aborted = True
        with contextlib.suppress(AttributeError):
            rec.job.aborted = True
        log.warning("job %s aborted: %s", jid, reason)
        if rec.handler.is_async and self._loop is not None:
            self._loop.call_soon_threadsafe(self._cancel_task, rec)
        return True

    @staticmethod
    def _cancel_task(rec: Held) -> None:
        if rec.task is not None:
            rec.task.cancel()

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
        except Exception:
            log.warning("could not deregister worker %s", self.name, exc_info=True)
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
        except Exception:
            log.warning("could not hand back job %s; its lease will expire", job.jid, exc_info=True)


async def _await(awaitable: Any) -> Any:
    return await awaitable


__all__ = ["JobAborted", "Worker", "checkpoint", "current_job"]
