"""Run N worker processes: fork them, restart those that die, forward signals, kill stragglers.

``Supervisor(target, processes=N).run()`` forks N children; each calls ``target(index)`` (which
builds its own client and worker after the fork: never share a Redis connection across a
fork) and exits with its return value. A child that dies is restarted, with a growing pause if
it keeps dying soon after starting; one that exits with code 0 (a burst worker that is done)
is not restarted, and the supervisor returns when none is left. SIGTERM/SIGINT are forwarded to every child; children get
``shutdown_timeout`` seconds (plus a little) to finish, then SIGKILL. A second signal is
forwarded at once and the supervisor stops waiting.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("queueengine.worker.supervisor")


class Supervisor:
    """Fork ``processes`` children running ``target(index)`` and keep them alive until told to stop."""

    def __init__(self, target: Callable[[int], int], processes: int, shutdown_timeout: float = 30.0,
                 kill_margin: float = 5.0) -> None:
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a whole number >= 1, got {processes!r}")
        self.target = target
        self.processes = processes
        self.shutdown_timeout = shutdown_timeout
        self.kill_margin = kill_margin
        self.children: dict[int, int] = {}       # pid -> index
        self.restarts = 0
        self._started: dict[int, float] = {}     # index -> start time
        self._fast_deaths: dict[int, int] = {}   # index -> consecutive early deaths
        self._signals: list[int] = []

    def _fork(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                code = int(self.target(index) or 0)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("worker process %d crashed", index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = index
        self._started[index] = time.monotonic()
        log.info("started worker process %d (pid %d)", index, pid)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def run(self) -> int:
        """Supervise until a signal arrives and every child has exited; return an exit code."""
        old = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for i in range(self.processes):
                self._fork(i)
            while not self._signals:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                index = self.children.pop(pid, None)
                if index is None or self._signals:
                    continue
                if os.waitstatus_to_exitcode(status) == 0:
                    log.info("worker process %d finished", index)  # e.g. burst mode: done, not dead
                    if not self.children:
                        break
                    continue
                self._restart(index, status)
            return self._drain()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def _restart(self, index: int, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        lived = time.monotonic() - self._started.get(index, 0.0)
        self._fast_deaths[index] = self._fast_deaths.get(index, 0) + 1 if lived < 5 else 0
        pause = min(30.0, 0.5 * 2 ** max(self._fast_deaths[index] - 1, 0)) if self._fast_deaths[index] else 0.0
        log.warning("worker process %d exited with %s after %.1fs; restarting%s", index, code, lived,
                    f" in {pause:.1f}s" if pause else "")
        deadline = time.monotonic() + pause
        while not self._signals and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))
        if not self._signals:
            self.restarts += 1
            self._fork(index)

    def _drain(self) -> int:
        """After a signal: wait for children, SIGKILL them after the timeout (or at once on a second signal)."""
        first = 1  # the signal that ended supervision; a second may already have come meanwhile
        deadline = time.monotonic() + self.shutdown_timeout + self.kill_margin
        worst = 0
        while self.children:
            if time.monotonic() >= deadline or len(self._signals) > first:
                for pid in list(self.children):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    log.warning("worker pid %d killed", pid)
                deadline = float("inf")
                first = len(self._signals) + 10_000
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            self.children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            worst = max(worst, code if code > 0 else 0)
        return 0 if worst == 0 else 1


__all__ = ["Supervisor"]
