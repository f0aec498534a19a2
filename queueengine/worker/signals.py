"""SIGTERM and SIGINT for a worker run on the main thread: the first stops it gracefully (it
finishes or hands back its running jobs), a second exits the process at once."""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_mod
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from queueengine.worker.runner import spawn

log = logging.getLogger("queueengine.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class SignalHandling:
    """Installs the worker's handlers of ``SIGNALS`` and puts the old ones back.

    The handler itself only sets ``stopping`` and queues the signal (safe in a signal handler);
    a thread then logs it and calls ``stop()``, which may talk to Redis.
    """

    def __init__(self, worker: str, stop: Callable[[], None], stopping: threading.Event) -> None:
        self._worker = worker
        self._stop = stop
        self._stopping = stopping
        self._received: queue_mod.SimpleQueue[int] = queue_mod.SimpleQueue()
        self._count = 0
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        """Handle the signals from now on (only on the main thread: elsewhere Python cannot)."""
        if threading.current_thread() is not threading.main_thread():
            return
        spawn(self._on_signal, "signals")
        for sig in SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put back the handlers that were installed before ``install``."""
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._count += 1
        if self._count > 1:
            # os.write, not sys.stderr: the handler may run inside a write to stderr on this thread,
            # where a buffered write would fail as reentrant (or wait on a lock) before the exit
            with contextlib.suppress(OSError):
                os.write(2, f"queueengine worker {self._worker}: second signal {signum}, exiting now\n".encode())
            os._exit(128 + signum)
        self._stopping.set()
        self._received.put(signum)  # SimpleQueue.put is safe in a signal handler

    def _on_signal(self) -> None:
        signum = self._received.get()
        log.info("worker %s: signal %d, finishing running jobs (a second signal exits at once)", self._worker, signum)
        self._stop()


__all__ = ["SIGNALS", "SignalHandling"]
