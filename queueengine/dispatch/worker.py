"""The worker side shared by every delivery mode: ``Job``, ``worker.jobs``, ``Worker``.

The fetch thread takes as many jobs as there are free slots (``max_concurrent_jobs``), runs the
handler inline (one slot, no timeout: the fastest path) or on a thread pool, enforces the
worker ``timeout``, and frees a slot whenever a job is done, failed or handed back. A second
thread does the mode's periodic duties (heartbeats, sweeps).
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from queueengine.store.connection import is_transient
from queueengine.store.outages import call_retrying, outage_retry, warn

from .base import RawJob, WorkerBackend, _Timers, encode_result, log, new_id
from .errors import InvalidArgument

OUTCOME_RETRY_FOR = 30.0
"""Seconds a worker keeps trying to store an outcome while Redis is unreachable."""


class Job:
    """A job as a worker's handler sees it: ``id``, ``data``, ``queue``, ``done()``, ``fail()``."""

    __slots__ = ("_raw", "_worker", "_state", "started")

    def __init__(self, worker: Worker, raw: RawJob) -> None:
        self._raw = raw
        self._worker = worker
        self._state = "running"
        self.started = time.monotonic()

    @property
    def id(self) -> str:
        """The job id (a UUID4 string)."""
        return self._raw.id

    @property
    def data(self) -> dict[str, Any]:
        """The keyword arguments given to ``submit()``."""
        return self._raw.data

    @property
    def queue(self) -> str:
        """The queue the job came from."""
        return self._raw.queue

    @property
    def state(self) -> str:
        """``running``, ``done``, ``failed`` or ``handed_back``."""
        return self._state

    def is_ready(self) -> bool:
        """True once the job is done, failed or handed back."""
        return self._state != "running"

    def done(self, result: Any = None) -> bool:
        """Complete the job with ``result`` (JSON); False if it was already finished."""
        encode_result(result)
        return self._worker._finish(self, "done", True, result)

    def fail(self, reason: Any = "failed", group: str | None = None) -> bool:
        """Fail the job; the client's future raises ``JobFailed`` with ``reason`` as its message
        (group ``<queue>-failed`` unless given). False if the job was already finished."""
        failure = {"group": group or f"{self.queue}-failed", "message": str(reason)}
        return self._worker._finish(self, "failed", False, failure)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.queue} {self._state}>"


Handler = Callable[[Job], Any]


class JobSource:
    """``worker.jobs``: register the handler every fetched job is given to."""

    def __init__(self) -> None:
        self.handler: Handler | None = None

    def each(self, handler: Handler) -> JobSource:
        """Call ``handler(job)`` for every job. It may return the result (or an awaitable of
        it), call ``job.done()``/``job.fail()`` itself (now or later), or raise to fail the job."""
        if not callable(handler):
            raise InvalidArgument(f"jobs.each(): handler must be callable, got {handler!r}")
        self.handler = handler
        return self


class Worker:
    """Fetches jobs from its queues in strict priority order and runs the handler on them."""

    def __init__(
        self,
        backend: WorkerBackend,
        *,
        queues: Iterable[str],
        max_concurrent_jobs: int = 1,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.id = new_id()
        self.queues = list(queues)
        self.max_concurrent_jobs = max_concurrent_jobs
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.jobs = JobSource()
        self._backend = backend
        self._cond = threading.Condition()
        self._running: dict[str, Job] = {}
        self._recording = 0  # outcomes being stored: stop() waits for them before it disconnects
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._fetch_ident: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers = _Timers(f"qe-worker-{self.id[:8]}")
        self.processed = 0
        self._outcome_retry = outage_retry(OUTCOME_RETRY_FOR)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Worker:
        """Start working in background threads; returns at once."""
        if self.jobs.handler is None:
            raise RuntimeError("no handler: call worker.jobs.each(handler) before start()")
        if self._thread is not None:
            return self
        if self.max_concurrent_jobs > 1 or self.timeout is not None:
            # Handlers run inline on the fetch thread when one slot and no timeout (fastest);
            # otherwise on a pool with spare threads, so a handler that outlived its timeout
            # (its slot is freed) does not keep the next job from starting.
            spare = 8 if self.timeout is not None else 0
            self._pool = ThreadPoolExecutor(self.max_concurrent_jobs + spare, thread_name_prefix="qe-job")
        self._thread = threading.Thread(target=self._fetch_loop, name="qe-fetch", daemon=True)
        self._thread.start()
        threading.Thread(target=self._tick_loop, name="qe-tick", daemon=True).start()
        return self

    def run(self, stop_timeout: float = 10.0) -> None:
        """Work until :meth:`stop` is called; in the main thread, SIGTERM and Ctrl-C stop the
        worker gracefully (in-flight jobs finish or are handed back within ``stop_timeout``)."""
        asked = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            # before start(): a SIGTERM that arrives while the first job runs must stop us gracefully
            previous = signal.signal(signal.SIGTERM, lambda *_: asked.set())
        try:
            self.start()
            while not self._stopped.wait(0.2):
                if asked.is_set():
                    self.stop(stop_timeout)
        except KeyboardInterrupt:
            self.stop(stop_timeout)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop fetching; wait up to ``timeout`` s for in-flight jobs, hand back the rest.

        Returns True when every in-flight job finished. A fetch that was in flight is completed
        and what it brought is handed back, so no job is orphaned. Called from a handler (one of
        the worker's own threads), it only starts the shutdown and returns True at once.
        """
        if threading.current_thread().name.startswith(("qe-fetch", "qe-job", "qe-async")):
            if not self._stopping.is_set():
                self._stopping.set()
                threading.Thread(target=self.stop, args=(timeout,), name="qe-stop", daemon=True).start()
            return True
        if self._stopped.is_set():
            return True
        self._stopping.set()
        thread = self._thread
        while thread is not None and thread.is_alive():
            self._backend.unblock()
            thread.join(0.05)
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._running or self._recording) and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            leftovers = list(self._running.values())
        for job in leftovers:
            self._hand_back(job)
        self._timers.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        try:
            self._backend.close()
        finally:
            self._stopped.set()
        return not leftovers

    @property
    def in_flight(self) -> int:
        """Jobs fetched and not yet finished."""
        with self._cond:
            return len(self._running)

    # -- fetch loop --------------------------------------------------------------------------
    def _fetch_loop(self) -> None:
        self._fetch_ident = threading.get_ident()
        backoff = 0.1
        while not self._stopping.is_set():
            with self._cond:
                while len(self._running) >= self.max_concurrent_jobs and not self._stopping.is_set():
                    self._cond.wait(self.poll_interval)
                free = self.max_concurrent_jobs - len(self._running)
            if self._stopping.is_set() or free <= 0:
                continue
            try:
                raws = self._backend.fetch(free, self.poll_interval)
                backoff = 0.1
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("fetch failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for raw in raws:
                job = Job(self, raw)
                with self._cond:
                    self._running[raw.id] = job
                if self._stopping.is_set():
                    self._hand_back(job)
                    continue
                self._dispatch(job)

    def _tick_loop(self) -> None:
        """Heartbeats and sweeps, once a second, independent of what the handlers do."""
        interval = float(getattr(self._backend, "tick_interval", 1.0))
        while not self._stopping.wait(interval):
            with self._cond:
                running = [job._raw for job in self._running.values()]
            try:
                self._backend.tick(running)
            except Exception as exc:
                warn(log, exc, "periodic duties failed")

    def _dispatch(self, job: Job) -> None:
        if self.timeout is not None:
            limit = self.timeout

            def expire() -> None:
                job.fail(f"timeout: the job ran longer than {limit:g}s", f"{job.queue}-timeout")

            self._timers.add(limit, expire)
        if self._pool is None:
            self._call_handler(job)
        else:
            self._pool.submit(self._call_handler, job)

    def _call_handler(self, job: Job) -> None:
        handler = self.jobs.handler
        assert handler is not None
        try:
            result = handler(job)
        except Exception as exc:
            job.fail(f"{type(exc).__name__}: {exc}", f"{job.queue}-{type(exc).__name__}")
            return
        if inspect.isawaitable(result):
            fut = asyncio.run_coroutine_threadsafe(_as_coroutine(result), self._event_loop())
            fut.add_done_callback(lambda f: self._settle_async(job, f))
        elif result is not None and job._state == "running":
            self._auto_done(job, result)

    def _settle_async(self, job: Job, fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            job.fail(f"{type(exc).__name__}: {exc}", f"{job.queue}-{type(exc).__name__}")
        elif fut.result() is not None and job._state == "running":
            self._auto_done(job, fut.result())

    @staticmethod
    def _auto_done(job: Job, result: Any) -> None:
        try:
            job.done(result)
        except InvalidArgument as exc:
            job.fail(str(exc))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._cond:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="qe-async", daemon=True).start()
                self._loop = loop
            return self._loop

    def _finish(self, job: Job, state: str, ok: bool, value: Any) -> bool:
        with self._cond:
            if job._state != "running":
                return False
            job._state = state
            self._running.pop(job.id, None)
            self.processed += 1
            self._recording += 1
            self._cond.notify_all()
        defer = threading.get_ident() == self._fetch_ident and not self._stopping.is_set()
        try:
            self._record(job, ok, value, defer)
        finally:
            with self._cond:
                self._recording -= 1
                self._cond.notify_all()
        return True

    def _record(self, job: Job, ok: bool, value: Any, defer: bool) -> None:
        """Store the outcome; while Redis is away (a restart, a failover) keep trying for up to
        ``OUTCOME_RETRY_FOR`` seconds (the job's lease, if any, is not heartbeated meanwhile:
        past it the engine refuses the outcome and the job runs again elsewhere)."""
        def note(exc: Exception) -> None:
            log.warning("Redis unreachable while recording the outcome of job %s (%s: %s); retrying",
                        job.id, type(exc).__name__, exc)

        try:
            call_retrying(self._outcome_retry, lambda: self._backend.finish(job._raw, ok, value, defer), note)
        except Exception as exc:
            if is_transient(exc):
                log.error("could not record the outcome of job %s: Redis unreachable for %gs (%s)", job.id,
                          OUTCOME_RETRY_FOR, exc)
            else:
                log.error("could not record the outcome of job %s", job.id, exc_info=exc)

    def _hand_back(self, job: Job) -> None:
        with self._cond:
            if job._state != "running":
                return
            job._state = "handed_back"
            self._running.pop(job.id, None)
            self._cond.notify_all()
        try:
            self._backend.hand_back(job._raw)
        except Exception as exc:
            warn(log, exc, "could not hand back job %s", job.id)


async def _as_coroutine(awaitable: Any) -> Any:
    return await awaitable
