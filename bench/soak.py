"""Soak and chaos: many jobs through worker processes while Redis and the workers are knocked over.

    python -m bench.soak                                # make soak: 200,000 jobs per mode, 4 workers
    python -m bench.soak --jobs 20000 --modes reliable --json out.json
    python -m bench.soak --together ...                 # the modes side by side on one Redis

By default the modes run one after the other (each on a fresh Redis), so each has the machine.

Everything runs on loopback in a temporary directory: a primary, its replica and a Sentinel
(``queueengine.localcluster.LocalSentinel``, AOF on), ``--workers`` worker processes per delivery
mode (``reliable``: the engine's ``Worker``; ``recoverable``: a ``queueengine.dispatch`` worker),
and a producer putting jobs at ``--rate`` jobs/s. Every ``--chaos-every`` seconds the chaos loop
SIGKILLs a random worker (it is started again at once) and, every other time, does the next of:
freeze the primary (``DEBUG SLEEP``), pause its clients (``CLIENT PAUSE``), restart it (``SHUTDOWN``
then start on the same AOF), fail over to the replica through Sentinel.

Each handler run is appended (``os.write`` on an ``O_APPEND`` file, before the job is completed)
to a per-process file. At the end, for every job: complete (its runs counted), or failed with a
reason; **lost** = neither; a **duplicate** is a job run more than once, allowed only when its
history shows its lease/claim expired (``timed-out``: the worker running it was killed). Then
completed jobs are expired by retention and Redis memory is compared with the baseline taken
before the first put. The run is bounded by ``--max-seconds``; exit status 1 if a promise broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.chaos import FAULTS, Chaos, Workers

QUEUE = "soak"
KLASS_RELIABLE = "bench.soak.handle"
_RUNS_FD: int | None = None


def handle(job: Any) -> Any:
    """The soak handler (both modes): record the run, then return the result."""
    global _RUNS_FD
    if _RUNS_FD is None:
        path = Path(os.environ["QE_SOAK_RUNS"]) / f"runs-{os.getpid()}.log"
        _RUNS_FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    jid = getattr(job, "jid", None) or job.id
    pause = float(job.data.get("ms", 0)) / 1000
    if pause:
        time.sleep(pause)   # a job that takes a while: a killed worker is likely to hold some
    os.write(_RUNS_FD, f"{jid}\n".encode())
    return int(job.data["n"]) * 2


def worker_main(url: str, mode: str, namespace: str, concurrency: int) -> None:
    """One worker process (``python -m bench.soak worker ...``)."""
    if mode == "reliable":
        from queueengine import Client
        from queueengine.worker import Worker

        Worker(Client.from_url(url, namespace=namespace), [QUEUE], concurrency=concurrency, max_wait=1.0,
               housekeep_interval=2.0, shutdown_timeout=2.0).run()
        return
    from queueengine.dispatch import JobManager

    worker = JobManager().worker("redis", uri=url, mode="recoverable", namespace=namespace, queues=[QUEUE],
                                 max_concurrent_jobs=concurrency, sweep_interval=1.0, sweep_older_than=5.0)
    worker.jobs.each(handle)
    worker.run(stop_timeout=2.0)


@dataclass
class Config:
    """What one soak run does."""

    jobs: int = 200_000
    modes: tuple[str, ...] = ("reliable", "recoverable")
    workers: int = 4
    concurrency: int = 4
    rate: float = 600.0
    job_ms: float = 5.0
    chaos_every: float = 3.0
    pause_seconds: float = 1.5
    lease: float = 10.0
    max_seconds: float = 1800.0
    batch: int = 100
    seed: int = 1


@dataclass
class ModeReport:
    """Figures of one delivery mode."""

    mode: str
    jobs: int = 0
    seconds: float = 0.0
    completed: int = 0
    failed: int = 0
    failed_without_reason: int = 0
    lost: int = 0
    duplicates: int = 0
    unexplained_duplicates: int = 0
    runs: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """Every promise kept."""
        return self.lost == 0 and self.unexplained_duplicates == 0 and self.failed_without_reason == 0


@dataclass
class Report:
    """Figures of a soak run."""

    config: dict[str, Any]
    modes: list[ModeReport] = field(default_factory=list)
    kills: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    seconds: float = 0.0
    memory_baseline: int = 0
    memory_peak: int = 0
    memory_after: int = 0
    keys_after: int = 0
    redis_version: str = ""
    timed_out: bool = False
    chaos_errors: list[str] = field(default_factory=list)

    @property
    def memory_back(self) -> bool:
        """Memory after expiry is within 2 MB of the baseline."""
        return self.memory_after - self.memory_baseline < 2 * 1024 * 1024

    @property
    def ok(self) -> bool:
        """Every promise of every mode kept, memory back, finished in time."""
        return not self.timed_out and self.memory_back and all(m.ok for m in self.modes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        out = asdict(self)
        out["ok"], out["memory_back"] = self.ok, self.memory_back
        for m, d in zip(self.modes, out["modes"], strict=True):
            d["ok"] = m.ok
        return out


def _engine(url: str, namespace: str) -> Any:
    from queueengine import Client

    return Client.from_url(url, namespace=namespace, worker_name="soak-producer")


def _retrying(fn: Any, *args: Any, deadline: float) -> Any:
    """``fn(*args)``, retried while Redis is away (restart, failover) until ``deadline``."""
    from queueengine.connection import is_transient

    delay = 0.05
    while True:
        try:
            return fn(*args)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(1.0, delay * 2)


def produce(clients: dict[str, Any], cfg: Config, put_at: dict[str, dict[str, float]], deadline: float) -> None:
    """Put ``cfg.jobs`` jobs per mode at ``cfg.rate`` jobs/s (all modes together), in batches."""
    from queueengine import DuplicateJob
    from queueengine.dispatch.reliable import KLASS

    start = time.monotonic()
    sent = 0
    for first in range(0, cfg.jobs, cfg.batch):
        for mode, client in clients.items():
            klass = KLASS_RELIABLE if mode == "reliable" else KLASS
            batch = [{"klass": klass, "data": {"n": i, "ms": cfg.job_ms}, "jid": f"{mode[:3]}-{i:07d}", "unique": True,
                      "reply": mode == "recoverable"} for i in range(first, min(first + cfg.batch, cfg.jobs))]
            with contextlib.suppress(DuplicateJob):  # a retried put whose first try went through
                _retrying(client.queues[QUEUE].put_many, batch, deadline=deadline)
            now = time.time()
            put_at[mode].update((item["jid"], now) for item in batch)
            sent += len(batch)
        ahead = sent / cfg.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def settled(client: Any, deadline: float) -> int:
    """Completed + failed jobs of the namespace."""
    keys = client.keys
    return int(_retrying(lambda: client.redis.zcard(keys.key("completed")) + client.redis.zcard(keys.key("failed")),
                         deadline=deadline))


def read_runs(runs_dir: Path) -> Counter[str]:
    """Handler runs per jid, from every worker's file."""
    runs: Counter[str] = Counter()
    for path in runs_dir.glob("runs-*.log"):
        for line in path.read_bytes().split(b"\n"):
            if line:
                runs[line.decode()] += 1
    return runs


def verify(client: Any, mode: str, put_at: dict[str, float], runs: Counter[str]) -> ModeReport:
    """Check every job of one mode (see the module docstring)."""
    rep = ModeReport(mode, jobs=len(put_at))
    jids = sorted(put_at)
    completed_at = dict(client.redis.zrange(client.keys.key("completed"), 0, -1, withscores=True))
    latencies: list[float] = []
    for start in range(0, len(jids), 2000):
        chunk = jids[start:start + 2000]
        pipe = client.redis.pipeline(transaction=False)
        for jid in chunk:
            pipe.hmget(client.keys.job(jid), ["state", "failure"])
        for jid, (state, failure) in zip(chunk, pipe.execute(), strict=True):
            n = runs.get(jid, 0)
            rep.runs += n
            if state == b"complete":
                rep.completed += 1
                done = completed_at.get(jid.encode())
                if done is not None:
                    latencies.append(max(0.0, float(done) - put_at[jid]))
            elif state == b"failed":
                rep.failed += 1
                if not failure or not json.loads(failure).get("group"):
                    rep.failed_without_reason += 1
            else:
                rep.lost += 1
            if n > 1:
                rep.duplicates += 1
                if not any(h.get("what") == "timed-out" for h in client.jobs[jid].history):
                    rep.unexplained_duplicates += 1
    latencies.sort()
    if latencies:
        rep.p50_ms = round(1000 * latencies[len(latencies) // 2], 1)
        rep.p99_ms = round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        rep.max_ms = round(1000 * latencies[-1], 1)
    return rep


def expire_all(client: Any, deadline: float) -> None:
    """Retention: completed and failed jobs go at once; housekeep until none is left."""
    client.config["jobs-history"] = 0
    client.config["jobs-history-count"] = 0
    client.config["failed-history"] = 1  # whole seconds; 0 keeps them forever
    client.config["housekeeping-batch"] = 5000
    keys = client.keys
    while time.monotonic() < deadline and (client.redis.zcard(keys.key("completed"))
                                           or client.redis.zcard(keys.key("failed"))):
        client.housekeep()


def used_memory(client: Any) -> int:
    """``used_memory`` of the primary."""
    return int(client.redis.info("memory")["used_memory"])


def run(cfg: Config, workdir: str | None = None, progress: Any = None) -> Report:
    """One soak run; returns its report (``report.ok`` says whether every promise held)."""
    from queueengine.localcluster import LocalSentinel

    say = progress or (lambda *_: None)
    report = Report(config=asdict(cfg))
    began = time.monotonic()
    deadline = began + cfg.max_seconds
    base = Path(workdir or tempfile.mkdtemp(prefix="qe-soak-"))
    runs_dir, log_dir = base / "runs", base / "logs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    pair = LocalSentinel(base / "redis", appendonly=True)
    url = pair.start()
    fleets: list[Workers] = []
    chaos: Chaos | None = None
    clients = {mode: _engine(url, f"soak-{mode}") for mode in cfg.modes}
    try:
        first = next(iter(clients.values()))
        report.redis_version = str(first.redis.info("server")["redis_version"])
        for mode, client in clients.items():
            client.config["heartbeat"] = cfg.lease
            client.config["grace-period"] = 1
            client.config["jobs-history"] = 86400
            client.config["jobs-history-count"] = 10 * cfg.jobs
            if mode == "recoverable":
                client.redis.set(client.keys.key("mode"), "recoverable")
        report.memory_baseline = used_memory(first)
        for mode in cfg.modes:
            fleet = Workers(url, mode, f"soak-{mode}", cfg.workers, cfg.concurrency, runs_dir, log_dir)
            fleet.keep_alive()
            fleets.append(fleet)
        chaos = Chaos(pair, fleets, cfg, report)
        chaos.start()
        put_at: dict[str, dict[str, float]] = {mode: {} for mode in cfg.modes}
        started = time.monotonic()
        say(f"producing {cfg.jobs} jobs per mode ({', '.join(cfg.modes)}) at {cfg.rate:g}/s under chaos")
        produce(clients, cfg, put_at, deadline)
        say("all jobs put; waiting for them to settle")
        while time.monotonic() < deadline:
            with chaos.lock:
                for fleet in fleets:
                    fleet.keep_alive()
            left = sum(cfg.jobs - settled(c, deadline) for c in clients.values())
            report.memory_peak = max(report.memory_peak, _retrying(used_memory, first, deadline=deadline))
            if left <= 0:
                break
            time.sleep(0.5)
        else:
            report.timed_out = True
        chaos.stop()
        for fleet in fleets:
            fleet.stop()
        settled_in = round(time.monotonic() - started, 1)
        runs = read_runs(runs_dir)
        for mode, client in clients.items():
            report.modes.append(verify(client, mode, put_at[mode], runs))
            report.modes[-1].seconds = settled_in
        for client in clients.values():
            expire_all(client, deadline + 120)
        report.memory_after = used_memory(first)
        report.keys_after = int(first.redis.dbsize())
        report.chaos_errors = list(chaos.errors)
        if chaos.errors:
            say("chaos errors: " + "; ".join(chaos.errors))
    finally:
        if chaos is not None and chaos.is_alive():
            chaos.stop()
        for fleet in fleets:
            with contextlib.suppress(Exception):
                fleet.stop()
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
        pair.stop()
        report.seconds = round(time.monotonic() - began, 1)
    return report


def table(report: Report) -> str:
    """The figures as a Markdown table (the README's "Under faults" section)."""
    faults = report.faults
    lines = ["| mode | jobs | completed | failed (with reason) | lost | duplicates (lease expired) | "
             "put to done p50 / p99 / max | seconds |", "|---|---|---|---|---|---|---|---|"]
    for m in report.modes:
        lines.append(f"| {m.mode} | {m.jobs:,} | {m.completed:,} | {m.failed:,} | {m.lost} | "
                     f"{m.duplicates} ({m.duplicates - m.unexplained_duplicates}) | "
                     f"{m.p50_ms:g} / {m.p99_ms:g} / {m.max_ms:g} ms | {m.seconds:g} |")
    lines.append("")
    lines.append(f"Worker SIGKILLs: {report.kills}; Redis freezes (DEBUG SLEEP): {faults['sleep']}, client "
                 f"pauses (CLIENT PAUSE): {faults['pause']}, restarts on AOF: {faults['restart']}, Sentinel "
                 f"failovers: {faults['failover']}. Redis {report.redis_version}; {report.seconds:g} s. "
                 f"Memory: baseline {report.memory_baseline / 1e6:.1f} MB, peak {report.memory_peak / 1e6:.1f} MB, "
                 f"after expiry {report.memory_after / 1e6:.1f} MB ({report.keys_after} keys left: configuration, stats, "
                 "worker registry).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        url, mode, namespace, concurrency = argv[1:5]
        worker_main(url, mode, namespace, int(concurrency))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    d = Config()
    parser.add_argument("--jobs", type=int, default=d.jobs, help="jobs per mode (default %(default)s)")
    parser.add_argument("--modes", default=",".join(d.modes), help="reliable,recoverable (run side by side)")
    parser.add_argument("--workers", type=int, default=d.workers, help="worker processes per mode")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="jobs at once per worker")
    parser.add_argument("--rate", type=float, default=d.rate, help="jobs put per second, all modes together")
    parser.add_argument("--job-ms", type=float, default=d.job_ms, help="milliseconds each job takes")
    parser.add_argument("--chaos-every", type=float, default=d.chaos_every, help="seconds between chaos ticks")
    parser.add_argument("--max-seconds", type=float, default=d.max_seconds, help="give up after this long")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--together", action="store_true", help="run the modes side by side on one Redis")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    cfg = Config(jobs=args.jobs, modes=tuple(m for m in args.modes.split(",") if m), workers=args.workers,
                 concurrency=args.concurrency, rate=args.rate, job_ms=args.job_ms, chaos_every=args.chaos_every,
                 max_seconds=args.max_seconds, seed=args.seed)
    def say(msg: str) -> None:
        print(f"[soak] {msg}", flush=True)

    if args.together:
        reports = [run(cfg, progress=say)]
    else:
        reports = [run(replace(cfg, modes=(mode,)), progress=say) for mode in cfg.modes]
    for report in reports:
        print(table(report))
        print()
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")
    ok = all(r.ok for r in reports)
    print("OK: nothing lost, duplicates only after a lease expired, memory back" if ok
          else "FAILED: a promise was broken (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
