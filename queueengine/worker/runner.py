"""Where a worker's handlers run: a pool of threads for sync handlers, one asyncio loop for
async ones, and the aborts of running jobs.

:class:`Runner` takes each job the dispatcher hands it (``run``), runs its handler, settles the
outcome (:mod:`queueengine.worker.outcome`) and queues the completion; the thread that ran a sync
handler queues it itself, while a completer thread queues those of async handlers (the event
loop must not block on Redis). ``abort`` marks a held job aborted (its outcome is then dropped)
and cancels an async handler's task; a thread cannot be killed, so a sync handler sees
``job.aborted`` and gets ``JobAborted`` from :func:`checkpoint`.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import queue as queue_mod
import threading
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson

from queueengine.worker import tracing
from queueengine.worker.handlers import JobAborted
from queueengine.worker.outcome import completion, settle_error

if TYPE_CHECKING:
    from queueengine.job import Job
    from queueengine.worker.completions import Completions
    from queueengine.worker.ledger import Held, Ledger

log = logging.getLogger("queueengine.worker")

_current: contextvars.ContextVar[Held | None] = contextvars.ContextVar("queueengine_job", default=None)

Spawn = Callable[[Callable[[], None], str], threading.Thread]
"""Start a daemon thread running ``target`` named ``qe-<what>``: ``spawn(target, what)``."""


def spawn(target: Callable[[], None], what: str) -> threading.Thread:
    """Start a daemon thread ``qe-<what>`` running ``target`` (the worker's threads)."""
    thread = threading.Thread(target=target, name=f"qe-{what}", daemon=True)
    thread.start()
    return thread


def checkpoint() -> None:
    """Call from a handler at safe points: raises ``JobAborted`` once its job's lease is lost or it is canceled."""
    rec = _current.get()
    if rec is not None and rec.aborted:
        raise JobAborted(f"job {rec.job.jid} was aborted: {rec.abort_reason}")


def current_job() -> Job | None:
    """The job the calling handler is running (None outside a handler)."""
    rec = _current.get()
    return rec.job if rec is not None else None


class Runner:
    """Runs the handlers of one worker's jobs (see the module docstring).

    ``wake_dispatcher()`` is called when a handler's exception scheduled a retry due within
    ``max_wait`` seconds (the dispatcher may be blocked past the retry's due time).
    ``avg_runtime`` (a moving average of sync handlers' run time, seconds) and ``seen_async``
    (an async handler was run) tell the dispatcher how much to prefetch.
    """

    def __init__(self, ledger: Ledger, completions: Completions, *, wake_dispatcher: Callable[[], None],
                 max_wait: float) -> None:
        self._ledger = ledger
        self._completions = completions
        self._wake_dispatcher = wake_dispatcher
        self._max_wait = max_wait
        self._work: queue_mod.SimpleQueue[Held | None] = queue_mod.SimpleQueue()   # None: stop
        self._done: queue_mod.SimpleQueue[tuple[Held, orjson.Fragment] | None] = queue_mod.SimpleQueue()
        self._pool_size = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.avg_runtime = 1.0
        self.seen_async = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the completer thread (completions of async handlers)."""
        spawn(self._complete_loop, "completer")

    def stop_completer(self) -> None:
        """The completer thread queues what it has and ends (after every handler finished)."""
        self._done.put(None)

    def stop(self) -> None:
        """End the pool threads and the asyncio loop (after every handler finished)."""
        for _ in range(self._pool_size):
            self._work.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    # ------------------------------------------------------------------ running handlers
    def run(self, rec: Held, inline: bool = False) -> None:
        """Run the handler of ``rec`` (held in the ledger already): an async one on the loop, a
        sync one on a pool thread, or on this thread when ``inline`` (a lone tiny job)."""
        if rec.handler.is_async:
            self.seen_async = True
            self._async_loop().call_soon_threadsafe(self._create_task, rec)
        elif inline:
            self._run_sync(rec)
        else:
            if self._pool_size < self._ledger.concurrency:
                self._pool_size += 1
                spawn(self._pool_thread, f"job-{self._pool_size}")
            self._work.put(rec)

    def _pool_thread(self) -> None:
        get = self._work.get
        while (rec := get()) is not None:
            self._run_sync(rec)

    def _run_sync(self, rec: Held) -> None:
        """Run a sync handler in this thread (a pool thread, or the dispatcher for a lone tiny job)."""
        _current.set(rec)
        payload = None
        try:
            call = rec.handler.call
            if call is None:
                self._settle_error(rec, None)
                return
            if not self._ledger.begin(rec):
                return  # handed back by the shutdown before it could start
            began = perf_counter()
            with tracing.process(rec.job):   # the otel extra's consumer span (a no-op without it)
                result = call(rec.job)
            self.avg_runtime = 0.7 * self.avg_runtime + 0.3 * (perf_counter() - began)
            if inspect.isawaitable(result):
                result = asyncio.run_coroutine_threadsafe(_await(result), self._async_loop()).result()
        except BaseException as exc:  # noqa: BLE001 - a handler's SystemExit is a failure too
            self._settle_error(rec, exc)
        else:
            payload = completion(rec, result)
            self._ledger.returned(payload is not None)
        finally:
            _current.set(None)
            self._ledger.release(rec)
        if payload is not None:
            self._completions.add((rec, payload))

    def _async_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            spawn(self._run_loop, "asyncio")
        return self._loop

    def _run_loop(self) -> None:
        loop = self._loop
        assert loop is not None, "started by _async_loop"
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def _create_task(self, rec: Held) -> None:
        rec.run_as(asyncio.get_running_loop().create_task(self._run_async(rec)))

    async def _run_async(self, rec: Held) -> None:
        _current.set(rec)
        try:
            call = rec.handler.call
            if call is None:
                self._settle_error(rec, None)
                return
            with tracing.process(rec.job):
                result = await call(rec.job)
        except asyncio.CancelledError as exc:
            if not rec.aborted:
                self._settle_error(rec, exc)
        except BaseException as exc:  # noqa: BLE001
            self._settle_error(rec, exc)
        else:
            payload = completion(rec, result)
            self._ledger.returned(payload is not None)
            if payload is not None:
                self._done.put((rec, payload))   # never block the asyncio loop on Redis
        finally:
            self._ledger.release(rec)

    def _settle_error(self, rec: Held, exc: BaseException | None) -> None:
        if exc is not None:
            self._ledger.raised()
        delay = settle_error(rec, exc)
        if 0 < delay < self._max_wait:
            self._wake_dispatcher()

    def _complete_loop(self) -> None:
        """Queue the completions of async handlers."""
        get = self._done.get
        while (item := get()) is not None:
            self._completions.add(item)

    # ------------------------------------------------------------------ abort
    def abort(self, jid: str, reason: str, since: float | None = None) -> bool:
        """Abort a running job: it is never completed; an async handler is cancelled.
        ``since``: the server time of the event that asks; a lease taken after it is kept (the
        job came back to this worker, e.g. after a timeout, before the event was read)."""
        rec = self._ledger.get(jid)
        if rec is None or rec.aborted:
            return False
        if since is not None and rec.job.time > since:
            return False
        return self.abort_held(rec, reason)

    def abort_held(self, rec: Held, reason: str) -> bool:
        """Abort the job of ``rec`` (see ``abort``); False when it was aborted already."""
        if not rec.abort(reason):
            return False
        log.warning("job %s aborted: %s", rec.job.jid, reason)
        if rec.handler.is_async and self._loop is not None:
            self._loop.call_soon_threadsafe(_cancel_task, rec)
        return True


def _cancel_task(rec: Held) -> None:
    if rec.task is not None:
        rec.task.cancel()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


__all__ = ["Runner", "Spawn", "checkpoint", "current_job", "spawn"]
