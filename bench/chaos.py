"""The soak's moving parts: worker processes that are killed and restarted, and the chaos loop.

See ``bench/soak.py``. ``Workers`` keeps ``count`` worker processes of one mode alive (a killed
one is started again at once) and remembers the pid of every worker it killed; ``Chaos`` SIGKILLs
a random worker every ``chaos_every`` seconds and, every other time, does the next Redis fault of
:data:`FAULTS` to the primary: freeze it (``DEBUG SLEEP``), pause its clients (``CLIENT PAUSE``),
crash it (``SIGKILL``, then start it again on its AOF) or fail over to the replica (Sentinel).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("sleep", "crash", "pause", "failover")


class Workers:
    """``count`` worker processes of one mode, started again as soon as one dies."""

    def __init__(self, url: str, mode: str, namespace: str, count: int, concurrency: int, runs_dir: Path,
                 log_dir: Path, lease: float = 10.0) -> None:
        self.mode = mode
        self.args = [sys.executable, "-m", "bench.soak", "worker", url, mode, namespace, str(concurrency), str(lease)]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "QE_SOAK_RUNS": str(runs_dir)}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.count = count
        self.started = 0
        self.killed: set[int] = set()   # pids of the workers SIGKILLed (their claims may run again)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.started += 1
        log = open(self.log_dir / f"worker-{self.args[5]}-{self.started}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return proc

    def keep_alive(self) -> None:
        """Start processes until ``count`` are alive."""
        self.procs = [p for p in self.procs if p.poll() is None]
        while len(self.procs) < self.count:
            self.procs.append(self._spawn())

    def kill_one(self, rng: random.Random) -> bool:
        """SIGKILL a random live worker and start another; False when none was alive."""
        alive = [p for p in self.procs if p.poll() is None]
        if not alive:
            return False
        victim = rng.choice(alive)
        self.killed.add(victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        self.keep_alive()
        return True

    def stop(self) -> None:
        """SIGTERM every worker, then SIGKILL the ones still running after 10 s."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.killed.add(p.pid)
                p.kill()
                p.wait(10)


class Chaos(threading.Thread):
    """Every ``every`` seconds: kill a worker; every other time also the next Redis fault."""

    def __init__(self, pair: Any, fleets: list[Workers], cfg: Any, report: Any) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.pair, self.fleets, self.cfg, self.report = pair, fleets, cfg, report
        self.rng = random.Random(cfg.seed)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def run(self) -> None:
        tick = 0
        while not self.stopping.wait(self.cfg.chaos_every):
            tick += 1
            with self.lock:
                fleet = self.rng.choice(self.fleets)
                if fleet.kill_one(self.rng):
                    self.report.kills += 1
                if tick % 2 == 0:
                    fault = FAULTS[(tick // 2 - 1) % len(FAULTS)]
                    at = time.time()
                    try:
                        self.fault(fault)
                        self.report.faults[fault] += 1
                        self.report.fault_log.append((at, fault))
                    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                        self.errors.append(f"{fault}: {exc!r}")

    def fault(self, name: str) -> None:
        """Do one Redis fault to the primary."""
        if name == "sleep":
            self.pair.pause(self.cfg.pause_seconds, "sleep")
        elif name == "pause":
            self.pair.pause(self.cfg.pause_seconds, "clients")
        elif name == "crash":
            crash_primary(self.pair)
        else:
            self.pair.failover()

    def stop(self) -> None:
        """End the loop (after the fault in progress, if any)."""
        self.stopping.set()
        self.join(60)


def faults_between(log: list[tuple[float, str]], since: float, until: float | None = None) -> list[dict[str, Any]]:
    """The Redis faults of ``log`` (wall time, kind) that began at or after ``since`` (and before
    ``until``): ``{"kind", "at"}``, ``at`` in seconds after ``since``."""
    return [{"kind": kind, "at": round(at - since, 2)} for at, kind in log
            if at >= since and (until is None or at < until)]


def crash_primary(pair: Any, timeout: float = 120.0) -> None:
    """SIGKILL the primary of a ``LocalSentinel`` and start it again on its AOF as the primary;
    wait until the replica is linked again."""
    from queueengine.devtools.localcluster import _without_replicaof

    primary = pair.primary()
    primary.extra_args = _without_replicaof(primary.extra_args)
    crash(primary)
    primary.start(timeout)
    pair.wait_replicated(timeout, exact=False)


def crash(server: Any) -> None:
    """SIGKILL a ``queueengine.devtools.embedded.EmbeddedRedis`` (no SHUTDOWN, no save: a crash) and reap
    it; ``server.start()`` then restarts it on its port and data directory (its AOF)."""
    proc, server.process = server.process, None
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()
