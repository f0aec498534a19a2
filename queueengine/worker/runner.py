"""The part of the worker that runs handlers: its thread pool, its asyncio loop, what a
handler's return or exception does to the job, aborts, and the completer of async handlers.

:class:`Runner` is the base of :class:`queueengine.worker.Worker`, which owns the state it uses
(the lock, the jobs held, the queues between threads); it is split out only to keep each module
a readable size.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import queue as queue_mod
import threading
from time import perf_counter
from typing import Any

import orjson

from queueengine.exceptions import LostLease
from queueengine.store import jsondata as _jsondata
from queueengine.store.outages import warn
from queueengine.worker import tracing
from queueengine.worker.completions import Completions
from queueengine.worker.handlers import failure_group, failure_message, failure_traceback
from queueengine.worker.leases import Held

log = logging.getLogger("queueengine.worker")

RUNNING = "running"
_STOP = object()
_current: contextvars.ContextVar[Held | None] = contextvars.ContextVar("queueengine_job", default=None)


class Runner:
    """Handler running for a Worker (see the module docstring)."""

    concurrency: int
    max_wait: float
    processed: int
    failed: int
    _cond: threading.Condition
    _running: dict[str, Held]
    _inflight: int
    _low: int
    _avg_runtime: float
    _pending_completes: int
    _completions: Completions
    _loop_ident: int | None
    _work: queue_mod.SimpleQueue[Any]
    _done: queue_mod.SimpleQueue[Any]
    _loop: asyncio.AbstractEventLoop | None

    def _spawn(self, target: Any, what: str) -> threading.Thread:
        raise NotImplementedError

    def _nudge(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ running handlers
    def _pool_thread(self) -> None:
        get = self._work.get
        while True:
            rec = get()
            if rec is _STOP:
                return
            self._run_one(rec)

    def _run_one(self, rec: Held) -> None:
        """Run a sync handler in this thread (a pool thread, or the dispatcher for a lone tiny job)."""
        _current.set(rec)
        commit = None
        try:
            if rec.handler.call is None:
                self._settle_error(rec, None)
                return
            with self._cond:
                rec.started = not rec.aborted
            if not rec.started:
                return  # handed back by the shutdown before it could start
            began = perf_counter()
            with tracing.process(rec.job):   # the otel extra's consumer span (a no-op without it)
                result = rec.handler.call(rec.job)
            self._avg_runtime = 0.7 * self._avg_runtime + 0.3 * (perf_counter() - began)
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
            self._completions.add(commit)

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
            with tracing.process(rec.job):
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
        try:
            payload = orjson.Fragment(_jsondata.encode(result, "result"))
        except TypeError as exc:  # UnsupportedData: NaN, a set, ... (it names the path)
            self._unstorable(rec, exc)
            return None
        with self._cond:
            self._pending_completes += 1
        if threading.get_ident() == self._loop_ident:
            self._done.put((rec, payload))   # never block the asyncio loop
            return None
        return rec, payload

    def _unstorable(self, rec: Held, exc: Exception) -> None:
        job = rec.job
        try:
            job.fail(f"{job.queue_name}-InvalidArgument",
                     f"the handler's return value cannot be stored as the job's result: result must be "
                     f"JSON-serialisable: {exc}")
        except Exception as exc:
            warn(log, exc, "could not fail job %s", job.jid)

    def _completions_sent(self, n: int) -> None:
        with self._cond:
            self._pending_completes -= n
            self._cond.notify_all()

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
        except Exception as exc:
            warn(log, exc, "could not record the failure of job %s", job.jid)

    def _finish(self, rec: Held) -> None:
        with self._cond:
            if self._running.get(rec.job.jid) is rec:  # the jid may be held again by a newer lease
                del self._running[rec.job.jid]
            self._inflight -= 1
            if self._inflight == self._low or self._inflight == 0:
                self._cond.notify_all()

    # ------------------------------------------------------------------ completing
    def _complete_loop(self) -> None:
        """Completions of async handlers (the event loop must not block on Redis)."""
        while True:
            item = self._done.get()
            if item is _STOP:
                return
            self._completions.add(item)

    # ------------------------------------------------------------------ abort
    def abort(self, jid: str, reason: str, since: float | None = None) -> bool:
        """Abort a running job: it is never completed; an async handler is cancelled.
        ``since``: the server time of the event that asks; a lease taken after it is kept (the
        job came back to this worker, e.g. after a timeout, before the event was read)."""
        with self._cond:
            rec = self._running.get(jid)
        if rec is None or rec.aborted:
            return False
        if since is not None and float(getattr(rec.job, "time", 0.0) or 0.0) > since:
            return False
        return self._abort_rec(rec, reason)

    def _abort_rec(self, rec: Held, reason: str) -> bool:
        if rec.aborted:
            return False
        jid = rec.job.jid
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



async def _await(awaitable: Any) -> Any:
    return await awaitable
