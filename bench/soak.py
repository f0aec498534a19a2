"""Soak and chaos: many jobs through worker processes while Redis and the workers are knocked over.

    python -m bench.soak                                # make soak: 200,000 jobs per mode, 4 workers
    python -m bench.soak --jobs 20000 --modes engine,reliable --json out.json
    python -m bench.soak --together ...                 # the modes side by side on one Redis

Modes: ``engine`` (the engine's ``queueengine.worker.Worker``), and the delivery modes of
``queueengine.dispatch``: ``reliable`` (leases), ``recoverable`` (claims handed back by every
worker's sweep, so several sweep at once) and ``simple`` (pop and forget: its losses to killed
workers are documented; they are counted, not hidden). By default the modes run one after the
other, each on a fresh Redis, so each has the machine.

Everything runs on loopback in a temporary directory: a primary, its replica and a Sentinel
(``queueengine.devtools.localcluster.LocalSentinel``, AOF on, ``--appendfsync everysec`` or ``always``), ``--workers`` worker
processes per mode, and a producer putting jobs at ``--rate`` jobs/s, in turn through ``put`` (one
by one, client-chosen jids), ``put_many`` (batches) and the delivery modes' ``submit`` (the engine
mode has no submit; simple has only submit). Every ``--chaos-every`` seconds a random worker is
SIGKILLed (and started again) and, every other time, the primary is frozen (``DEBUG SLEEP``), its
clients paused (``CLIENT PAUSE``), crashed (``SIGKILL``, then started on its AOF) or failed over to
the replica. When the producer is done, the time to drain is measured; then, chaos over and the
workers idle, a trickle of small ``put_many`` batches (``submit`` for simple) measures how a batch
drains into idle workers.

Each handler run is appended (``os.write`` on an ``O_APPEND`` file, before the job is completed)
with the worker's pid. At the end, for every job: complete, or failed with a reason; **lost** =
neither (simple: never run). A **duplicate** (a job run more than once) is expected only when every
run but one was made by a worker that was SIGKILLed (or the producer had to submit it again after an
error); any other duplicate fails the run. Then completed jobs are expired by retention and Redis
memory is compared with the baseline. Each lost job is reported with the Redis faults that began
between its put and the end (``lost_jobs`` in the JSON). Exit status 1 if a promise broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.chaos import Chaos, Workers
from bench.soak_report import Report, read_runs, table, verify

QUEUE = "soak"
MODES = ("engine", "reliable", "recoverable", "simple")
APPENDFSYNC = ("everysec", "always")
KLASS_ENGINE = "bench.soak.handle"
_RUNS_FD: int | None = None


def handle(job: Any) -> Any:
    """The soak handler (every mode): record the run and the worker's pid, then return."""
    global _RUNS_FD
    if _RUNS_FD is None:
        path = Path(os.environ["QE_SOAK_RUNS"]) / f"runs-{os.getpid()}.log"
        _RUNS_FD = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    pause = float(job.data.get("ms", 0)) / 1000
    if pause:
        time.sleep(pause)   # a job that takes a while: a killed worker is likely to hold some
    os.write(_RUNS_FD, f"{job.data['key']} {os.getpid()}\n".encode())
    return int(job.data["n"]) * 2


def worker_main(url: str, mode: str, namespace: str, concurrency: int, lease: float) -> None:
    """One worker process (``python -m bench.soak worker ...``)."""
    if mode == "engine":
        from queueengine import Client
        from queueengine.worker import Worker

        Worker(Client.from_url(url, namespace=namespace), [QUEUE], concurrency=concurrency,
               housekeep_interval=1.0, shutdown_timeout=2.0).run()
        return
    from queueengine.dispatch import JobManager

    worker = JobManager().worker("redis", uri=url, mode=mode, namespace=namespace, queues=[QUEUE],
                                 max_concurrent_jobs=concurrency, sweep_interval=0.5, sweep_older_than=lease)
    worker.jobs.each(handle)
    worker.run(stop_timeout=2.0)


@dataclass
class Config:
    """What one soak run does."""

    jobs: int = 200_000
    modes: tuple[str, ...] = MODES
    workers: int = 4
    concurrency: int = 4
    rate: float = 600.0
    job_ms: float = 5.0
    chaos_every: float = 3.0
    pause_seconds: float = 1.5
    lease: float = 3.0
    grace: float = 1.0
    max_seconds: float = 1800.0
    batch: int = 20
    trickle: int = 1000
    idle_drain_limit: float = 2.5
    seed: int = 1
    appendfsync: str = "everysec"


def _retrying(fn: Any, *args: Any, deadline: float) -> Any:
    """``fn(*args)``, retried while Redis is away past the engine's own retry, until ``deadline``."""
    from queueengine.store.connection import is_transient

    delay = 0.05
    while True:
        try:
            return fn(*args)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(1.0, delay * 2)


class Producer:
    """The jobs of one mode: puts them through ``put``, ``put_many`` and ``submit`` in turn and
    remembers, per job key, the jids it was given (several when it had to submit again)."""

    def __init__(self, url: str, mode: str, namespace: str, cfg: Config) -> None:
        from queueengine import Client
        from queueengine.dispatch import JobManager

        self.mode, self.cfg = mode, cfg
        self.engine = Client.from_url(url, namespace=namespace, worker_name="soak-producer")
        self.dispatch = None if mode == "engine" else JobManager().client(
            "redis", uri=url, mode=mode, namespace=namespace, queue=QUEUE)
        self.apis = ("put", "put_many") if mode == "engine" else ("submit",) if mode == "simple" \
            else ("put", "put_many", "submit")
        self.jids: dict[str, list[str]] = defaultdict(list)
        self.put_at: dict[str, float] = {}
        self.resubmitted: set[str] = set()
        self.by_api: Counter[str] = Counter()
        self.batches = 0

    def items(self, first: int, count: int, ms: float) -> list[dict[str, Any]]:
        """Job data of keys ``first .. first + count - 1``."""
        return [{"key": f"{self.mode[:3]}-{i:07d}", "n": i, "ms": ms} for i in range(first, first + count)]

    def put(self, first: int, count: int, deadline: float, api: str | None = None, ms: float | None = None) -> None:
        """Put ``count`` jobs through the next API in turn (or ``api``)."""
        from queueengine import DuplicateJob
        from queueengine.dispatch.reliable import KLASS

        api = api or self.apis[self.batches % len(self.apis)]
        self.batches += 1
        items = self.items(first, count, self.cfg.job_ms if ms is None else ms)
        klass = KLASS_ENGINE if self.mode == "engine" else KLASS
        q = self.engine.queues[QUEUE]
        now = time.time()
        if api == "submit":
            for data in items:
                self._submit(data, deadline)
        elif api == "put":
            for data in items:
                with contextlib.suppress(DuplicateJob):   # a soak-level retry whose first try went in
                    _retrying(lambda d=data: q.put(klass, d, jid=d["key"], unique=True), deadline=deadline)
                self.jids[data["key"]].append(data["key"])
        else:
            batch = [{"klass": klass, "data": d, "jid": d["key"], "unique": True} for d in items]
            with contextlib.suppress(DuplicateJob):
                _retrying(q.put_many, batch, deadline=deadline)
            for d in items:
                self.jids[d["key"]].append(d["key"])
        for d in items:
            self.put_at[d["key"]] = now
        self.by_api[api] += len(items)

    def _submit(self, data: dict[str, Any], deadline: float) -> None:
        assert self.dispatch is not None
        delay = 0.05
        while True:
            try:
                future: Any = self.dispatch.submit(**data)
                self.jids[data["key"]].append(future.jid)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.resubmitted.add(data["key"])   # it may have gone in: a second job of the key
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def settled(self, runs: dict[str, list[int]], deadline: float) -> int:
        """Jobs finished (complete + failed; simple: keys run at least once)."""
        if self.mode == "simple":
            return sum(1 for key in self.jids if key in runs)
        keys, redis = self.engine.keys, self.engine.redis
        return int(_retrying(lambda: redis.zcard(keys.key("completed")) + redis.zcard(keys.key("failed")),
                             deadline=deadline))

    def pending(self, deadline: float) -> int:
        """Jobs not yet finished that may still be (simple: payloads still queued)."""
        if self.mode == "simple":
            from queueengine.store.keys import ModeKeys

            return int(_retrying(self.engine.redis.llen, ModeKeys(self.engine.namespace).simple(QUEUE),
                                 deadline=deadline))
        return -1

    def close(self) -> None:
        """Close the clients."""
        if self.dispatch is not None:
            self.dispatch.close()
        self.engine.close()


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


def produce(producers: list[Producer], cfg: Config, deadline: float) -> None:
    """Put ``cfg.jobs`` jobs per mode at ``cfg.rate`` jobs/s (all modes together), in batches."""
    start, sent = time.monotonic(), 0
    for first in range(0, cfg.jobs, cfg.batch):
        count = min(cfg.batch, cfg.jobs - first)
        for prod in producers:
            prod.put(first, count, deadline)
            sent += count
        ahead = sent / cfg.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)


def wait_settled(producers: list[Producer], fleets: list[Workers], runs_dir: Path, deadline: float,
                 report: Report, chaos: Chaos | None) -> dict[str, float]:
    """Wait until every mode's jobs are finished (simple: nothing left queued and no run for 2 s);
    return the seconds each mode took from now."""
    began, took = time.monotonic(), {}
    quiet: dict[str, tuple[int, float]] = {}
    while time.monotonic() < deadline and len(took) < len(producers):
        if chaos is not None:
            with chaos.lock:
                for fleet in fleets:
                    fleet.keep_alive()
        runs = read_runs(runs_dir) if any(p.mode == "simple" for p in producers) else {}
        for prod in producers:
            if prod.mode in took:
                continue
            done = prod.settled(runs, deadline)
            if done >= len(prod.jids):
                took[prod.mode] = time.monotonic() - began
            elif prod.mode == "simple" and prod.pending(deadline) == 0:
                last = quiet.get(prod.mode)
                if last is None or last[0] != done:
                    quiet[prod.mode] = (done, time.monotonic())
                elif time.monotonic() - last[1] > 2.0:   # the rest was lost with killed workers
                    took[prod.mode] = last[1] - began
        report.memory_peak = max(report.memory_peak, _retrying(used_memory, producers[0].engine, deadline=deadline))
        time.sleep(0.1)
    if len(took) < len(producers):
        report.timed_out = True
    return took


def trickle(producers: list[Producer], fleets: list[Workers], cfg: Config, runs_dir: Path, deadline: float,
            report: Report) -> dict[str, float]:
    """Idle workers, then ``cfg.trickle`` jobs per mode in batches of 20 at 500 jobs/s: seconds from
    the last put to the last of them done, per mode."""
    time.sleep(1.0)   # every worker idle, blocked on its wait
    base = cfg.jobs
    for first in range(base, base + cfg.trickle, 20):
        for prod in producers:
            prod.put(first, min(20, base + cfg.trickle - first), deadline,
                     api="submit" if prod.mode == "simple" else "put_many", ms=0.0)
        time.sleep(20 / 500)
    return wait_settled(producers, fleets, runs_dir, deadline, report, None)


def _configure(prod: Producer, cfg: Config) -> None:
    client = prod.engine
    client.config["heartbeat"] = cfg.lease
    client.config["grace-period"] = cfg.grace
    client.config["jobs-history"] = 86400
    client.config["jobs-history-count"] = 10 * (cfg.jobs + cfg.trickle)


def run(cfg: Config, workdir: str | None = None, progress: Any = None) -> Report:
    """One soak run; returns its report (``report.ok`` says whether every promise held)."""
    from queueengine.devtools.localcluster import LocalSentinel

    if cfg.appendfsync not in APPENDFSYNC:
        raise ValueError(f"appendfsync: {cfg.appendfsync!r}; choose from {', '.join(APPENDFSYNC)}")
    say = progress or (lambda *_: None)
    report = Report(config=asdict(cfg), started_at=time.time())
    began = time.monotonic()
    deadline = began + cfg.max_seconds
    base = Path(workdir or tempfile.mkdtemp(prefix="qe-soak-"))
    runs_dir, log_dir = base / "runs", base / "logs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    pair = LocalSentinel(base / "redis", appendonly=True, extra_args=("--appendfsync", cfg.appendfsync))
    url = pair.start()
    fleets: list[Workers] = []
    chaos: Chaos | None = None
    producers: list[Producer] = []
    try:
        for mode in cfg.modes:
            producers.append(Producer(url, mode, f"soak-{mode}", cfg))
            _configure(producers[-1], cfg)
        first = producers[0].engine
        report.redis_version = str(first.redis.info("server")["redis_version"])
        report.appendfsync = str(first.redis.config_get("appendfsync")["appendfsync"])
        report.memory_baseline = used_memory(first)
        for mode in cfg.modes:
            fleet = Workers(url, mode, f"soak-{mode}", cfg.workers, cfg.concurrency, runs_dir, log_dir, cfg.lease)
            fleet.keep_alive()
            fleets.append(fleet)
        chaos = Chaos(pair, fleets, cfg, report)
        chaos.start()
        say(f"producing {cfg.jobs} jobs per mode ({', '.join(cfg.modes)}) at {cfg.rate:g}/s under chaos")
        produce(producers, cfg, deadline)
        say("all jobs put; draining")
        drained = wait_settled(producers, fleets, runs_dir, deadline, report, chaos)
        chaos.stop()
        say(f"drained {drained}; trickling put_many batches into idle workers")
        with chaos.lock:
            for fleet in fleets:
                fleet.keep_alive()
        idle = trickle(producers, fleets, cfg, runs_dir, deadline, report)
        for fleet in fleets:
            fleet.stop()
        verify_modes(producers, fleets, runs_dir, cfg, report, drained, idle)
        for prod in producers:
            if prod.mode != "simple":
                expire_all(prod.engine, deadline + 120)
        report.memory_after = used_memory(first)
        report.keys_after = int(first.redis.dbsize())
        report.chaos_errors = list(chaos.errors)
        if chaos.errors:
            say("chaos errors: " + "; ".join(chaos.errors))
    finally:
        tear_down(chaos, fleets, producers)
        pair.stop()
        report.seconds = round(time.monotonic() - began, 1)
    return report


def verify_modes(producers: list[Producer], fleets: list[Workers], runs_dir: Path, cfg: Config, report: Report,
                 drained: dict[str, float], idle: dict[str, float]) -> None:
    """Verify every mode's jobs (``verify``) and add its report, with its drain times, to ``report``."""
    runs = read_runs(runs_dir)
    for prod, fleet in zip(producers, fleets, strict=True):
        rep = verify(prod, runs, fleet.killed, report.fault_log)
        rep.drain_s = round(drained.get(prod.mode, -1.0), 2)
        rep.idle_drain_s = round(idle.get(prod.mode, -1.0), 2)
        report.idle_stalled |= not 0 <= rep.idle_drain_s <= cfg.idle_drain_limit
        report.modes.append(rep)


def tear_down(chaos: Chaos | None, fleets: list[Workers], producers: list[Producer]) -> None:
    """Stop the chaos thread, the worker fleets and the producers (whatever state they are in)."""
    if chaos is not None and chaos.is_alive():
        chaos.stop()
    for fleet in fleets:
        with contextlib.suppress(Exception):
            fleet.stop()
    for prod in producers:
        with contextlib.suppress(Exception):
            prod.close()


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        url, mode, namespace, concurrency, lease = argv[1:6]
        worker_main(url, mode, namespace, int(concurrency), float(lease))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    d = Config()
    parser.add_argument("--jobs", type=int, default=d.jobs, help="jobs per mode (default %(default)s)")
    parser.add_argument("--modes", default=",".join(d.modes), help="engine,reliable,recoverable,simple")
    parser.add_argument("--workers", type=int, default=d.workers, help="worker processes per mode")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="jobs at once per worker")
    parser.add_argument("--rate", type=float, default=d.rate, help="jobs put per second, all modes together")
    parser.add_argument("--job-ms", type=float, default=d.job_ms, help="milliseconds each job takes")
    parser.add_argument("--lease", type=float, default=d.lease, help="lease (and recoverable sweep age), seconds")
    parser.add_argument("--chaos-every", type=float, default=d.chaos_every, help="seconds between chaos ticks")
    parser.add_argument("--max-seconds", type=float, default=d.max_seconds, help="give up after this long")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--appendfsync", choices=APPENDFSYNC, default=d.appendfsync,
                        help="AOF fsync policy of every Redis server the soak starts (default %(default)s)")
    parser.add_argument("--together", action="store_true", help="run the modes side by side on one Redis")
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    if unknown := set(modes) - set(MODES):
        parser.error(f"--modes: unknown {sorted(unknown)}; choose from {','.join(MODES)}")
    cfg = Config(jobs=args.jobs, modes=modes, workers=args.workers, concurrency=args.concurrency, rate=args.rate,
                 job_ms=args.job_ms, lease=args.lease, chaos_every=args.chaos_every, max_seconds=args.max_seconds,
                 seed=args.seed, appendfsync=args.appendfsync)

    def say(msg: str) -> None:
        print(f"[soak] {msg}", flush=True)

    if args.together:
        reports = [run(cfg, progress=say)]
    else:
        reports = [run(replace(cfg, modes=(mode,)), progress=say) for mode in cfg.modes]
    print(table(reports))
    for m in (m for r in reports for m in r.modes):
        for lost in m.lost_jobs:
            print(f"lost ({m.mode}): {json.dumps(lost)}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in reports], indent=2) + "\n")
    ok = all(r.ok for r in reports)
    print("OK: nothing lost (simple: within its documented losses), duplicates only after a worker was killed, "
          "memory back, no idle stall" if ok else "FAILED: a promise was broken (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
