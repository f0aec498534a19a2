"""What every adapter shares: the run context, timing, the completion probe, worker processes.

This module runs inside each system's own environment (bench/.venv-peers, bench/.venv-arq), so it
needs nothing but the standard library and redis-py.

How a drain is timed
--------------------
Every benchmark job calls :func:`hit` (through ``systems.jobs``). In a worker process started by a
drain, ``BENCH_PROBE_URL`` is set and the first job of each process waits at a gate: it adds the
process to ``bench:arrived`` and blocks until the harness sets ``bench:go``. The harness releases
the gate only once every worker process holds a job, so start-up (imports, connections, Celery's
boot) is outside the measurement and all processes start draining together. Each job then records
the wall-clock time it finished in process memory; a daemon thread writes ``first last count``
to the hash ``bench:probe`` every 50 ms. The drain's rate is ``completed / (last - go)``:
from the moment the gate opens to the last completion. No job does any extra Redis call.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT_DIR = BENCH_DIR.parent
QUEUE = "bench"
PROBE_KEY = "bench:probe"
ARRIVED_KEY = "bench:arrived"
GO_KEY = "bench:go"
PROBE_ENV = "BENCH_PROBE_URL"


class NotApplicable(Exception):  # noqa: N818
    """Raised by an adapter for a workload the system has no API for (reported as n/a)."""


@dataclass
class Ctx:
    """One workload's parameters, passed from run.py to the adapter on the command line."""

    system: str
    url: str
    n: int = 10_000  # jobs for enqueue / batch_enqueue / drain
    rt_n: int = 500  # sequential round trips
    chunk: int = 1_000  # jobs per batch call
    procs: int = 1  # worker processes for a drain
    deadline: float = 120.0  # seconds any one timed loop may take
    variant: str = ""  # queueengine: qless | simple | recoverable | reliable
    logdir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


# ---------------------------------------------------------------------------------------------
# Timing helpers


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (0..100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def time_calls(fn: Callable[[int], object], count: int, deadline: float) -> list[float]:
    """Call ``fn(i)`` for i in range(count), timing each call; stop early past ``deadline`` s."""
    lat: list[float] = []
    clock = time.perf_counter
    stop = clock() + deadline
    for i in range(count):
        t = clock()
        fn(i)
        t2 = clock()
        lat.append(t2 - t)
        if t2 > stop:
            break
    return lat


async def atime_calls(fn: Callable[[int], Awaitable[object]], count: int, deadline: float) -> list[float]:
    """The asyncio twin of :func:`time_calls`."""
    lat: list[float] = []
    clock = time.perf_counter
    stop = clock() + deadline
    for i in range(count):
        t = clock()
        await fn(i)
        t2 = clock()
        lat.append(t2 - t)
        if t2 > stop:
            break
    return lat


def summarize(latencies: list[float], jobs_per_call: int = 1) -> dict[str, Any]:
    """jobs/s over the whole loop and per-call p50/p99 in milliseconds."""
    total = sum(latencies)
    jobs = len(latencies) * jobs_per_call
    return {
        "jobs": jobs,
        "seconds": round(total, 4),
        "jobs_per_s": round(jobs / total, 1) if total > 0 else None,
        "p50_ms": round(percentile(latencies, 50) * 1000, 3) if latencies else None,  # type: ignore[operator]
        "p99_ms": round(percentile(latencies, 99) * 1000, 3) if latencies else None,  # type: ignore[operator]
    }


def fresh(url: str) -> None:
    """Empty the private benchmark Redis (it belongs to this run only)."""
    conn = redis.Redis.from_url(url)
    try:
        conn.flushall()
    finally:
        conn.close()


class RedisCost:
    """Server-side cost of a measured phase: Redis CPU time and commands per job.

    ``INFO cpu`` (user + sys of the server process) over the phase, and ``INFO commandstats``
    calls after a ``CONFIG RESETSTAT`` at its start (commands run inside Lua scripts count too).
    """

    def __init__(self, url: str) -> None:
        self.conn = redis.Redis.from_url(url)
        self.conn.config_resetstat()
        self.cpu0 = self._cpu()

    def _cpu(self) -> float:
        info = self.conn.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def per_job(self, jobs: int) -> dict[str, float | None]:
        cpu = self._cpu() - self.cpu0
        stats = self.conn.info("commandstats")
        self.conn.close()
        calls = sum(int(v.get("calls", 0)) for v in stats.values())
        if not jobs:
            return {"redis_us_per_job": None, "redis_calls_per_job": None}
        # the harness's own commands (probe polling, these stats) are left out of the top list
        own = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_hello", "cmdstat_client|setinfo",
               "cmdstat_hvals"}
        top = sorted(((k, v) for k, v in stats.items() if k not in own),
                     key=lambda kv: -int(kv[1].get("usec", 0)))[:6]
        return {
            "redis_us_per_job": round(cpu * 1e6 / jobs, 1),
            "redis_calls_per_job": round(calls / jobs, 2),
            # the commands that cost Redis the most: name -> (calls per job, server µs per job)
            "redis_top": {k.removeprefix("cmdstat_"): [round(int(v.get("calls", 0)) / jobs, 2),
                                                        round(int(v.get("usec", 0)) / jobs, 1)]
                          for k, v in top},
        }


def used_memory(url: str) -> int:
    conn = redis.Redis.from_url(url)
    try:
        return int(conn.info("memory")["used_memory_dataset"])
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# The probe (worker side)


class _Probe:
    def __init__(self) -> None:
        self.url = os.environ.get(PROBE_ENV)
        self.first: float | None = None
        self.last = 0.0
        self.count = 0
        self.lock = threading.Lock()
        self.flushed = -1
        self.conn: redis.Redis | None = None

    def hit(self) -> None:
        if self.url is None:
            return
        if self.count == 0 and self.first is None:
            with self.lock:
                if self.first is None:
                    self._gate()
        t = time.time()
        with self.lock:
            self.count += 1
            self.last = t

    def _gate(self) -> None:
        assert self.url is not None
        self.conn = redis.Redis.from_url(self.url)
        self.conn.sadd(ARRIVED_KEY, os.getpid())
        stop = time.monotonic() + 120
        while not self.conn.exists(GO_KEY) and time.monotonic() < stop:
            time.sleep(0.002)
        self.first = time.time()
        thread = threading.Thread(target=self._flusher, name="bench-probe", daemon=True)
        thread.start()
        atexit.register(self.flush)

    def _flusher(self) -> None:
        while True:
            time.sleep(0.05)
            try:
                self.flush()
            except Exception:  # a dying process: nothing to report to
                return

    def flush(self) -> None:
        with self.lock:
            first, last, count = self.first, self.last, self.count
        if count != self.flushed and self.conn is not None:
            self.conn.hset(PROBE_KEY, str(os.getpid()), f"{first} {last} {count}")
            self.flushed = count


_PROBE = _Probe()
hit = _PROBE.hit


# ---------------------------------------------------------------------------------------------
# Worker processes (harness side)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Whatever run.py put first (e.g. a snapshot of the engine at a given commit) stays first.
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    for extra in (str(BENCH_DIR), str(ROOT_DIR)):
        if extra not in paths:
            paths.append(extra)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Workers:
    """Start ``count`` worker processes of ``ctx.system`` (``runner SYSTEM worker``); stop them all."""

    def __init__(self, ctx: Ctx, count: int, probe: bool) -> None:
        self.ctx = ctx
        self.procs: list[subprocess.Popen[bytes]] = []
        env = _child_env()
        if probe:
            env[PROBE_ENV] = ctx.url
        else:
            env.pop(PROBE_ENV, None)
        logdir = Path(ctx.logdir or BENCH_DIR / "results" / "tmp")
        logdir.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            argv = [sys.executable, "-m", "systems.runner", ctx.system, "worker", "--url", ctx.url,
                    "--variant", ctx.variant, "--procs", str(count)]
            name = f"{ctx.system}{'-' + ctx.variant if ctx.variant else ''}-worker{k}.log"
            with open(logdir / name, "ab") as log:
                self.procs.append(subprocess.Popen(argv, cwd=BENCH_DIR, env=env, stdin=subprocess.DEVNULL,
                                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def dead(self) -> list[int]:
        return [p.returncode for p in self.procs if p.poll() is not None]

    def stop(self, grace: float = 5.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        stop = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.1, stop - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def drain(ctx: Ctx, prefill: Callable[[Ctx], None]) -> dict[str, Any]:
    """Queue ``ctx.n`` jobs, start ``ctx.procs`` workers, open the gate, time until all are done."""
    fresh(ctx.url)
    t = time.perf_counter()
    prefill(ctx)
    prefill_s = time.perf_counter() - t
    conn = ctx.redis()
    notes: list[str] = []
    try:
        with Workers(ctx, ctx.procs, probe=True) as workers:
            stop = time.monotonic() + min(90.0, ctx.deadline)
            while conn.scard(ARRIVED_KEY) < ctx.procs and time.monotonic() < stop:
                if workers.dead():
                    raise RuntimeError(f"a worker exited with {workers.dead()} before its first job "
                                       f"(see {ctx.logdir or 'bench/results/tmp'})")
                time.sleep(0.01)
            arrived = conn.scard(ARRIVED_KEY)
            if arrived < ctx.procs:
                notes.append(f"only {arrived}/{ctx.procs} workers got a job before the gate opened")
            cost = RedisCost(ctx.url)
            t0 = time.time()
            conn.set(GO_KEY, "1")
            stop = time.monotonic() + ctx.deadline
            done, last = 0, t0
            while time.monotonic() < stop:
                rows = [v.decode().split() for v in conn.hvals(PROBE_KEY)]
                done = sum(int(r[2]) for r in rows)
                last = max((float(r[1]) for r in rows), default=t0)
                if done >= ctx.n:
                    break
                if len(workers.dead()) == len(workers.procs):
                    notes.append("all workers exited early")
                    break
                time.sleep(0.025)
            server = cost.per_job(done)
            if done < ctx.n:
                notes.append(f"stopped after {done}/{ctx.n} jobs (deadline {ctx.deadline:.0f}s)")
    finally:
        conn.close()
    elapsed = last - t0
    return {
        "jobs": done,
        "seconds": round(elapsed, 4),
        "jobs_per_s": round(done / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": None,
        "p99_ms": None,
        "procs": ctx.procs,
        "prefill_s": round(prefill_s, 3),
        "notes": notes,
        **server,
    }


def roundtrip(ctx: Ctx, run_calls: Callable[[Ctx, int, float], list[float]]) -> dict[str, Any]:
    """Start one worker, warm up (first call may wait for the worker's start), time ``ctx.rt_n`` calls.

    ``run_calls(ctx, count, first_timeout)`` makes ``count`` sequential submit-and-wait calls and
    returns their latencies; only the first call may take up to ``first_timeout`` seconds.
    """
    fresh(ctx.url)
    with Workers(ctx, 1, probe=False) as workers:
        # Warm-up: the worker's start, connections, script loading. A call that races the
        # worker's start may fail (saq's start-up sweep can abort a job dequeued at that very
        # moment), so the warm-up is tried up to three times before giving up.
        for attempt in range(3):
            try:
                run_calls(ctx, 5, 60.0)
                break
            except Exception:
                if attempt == 2 or workers.dead():
                    raise
                time.sleep(1.0)
        if workers.dead():
            raise RuntimeError(f"the worker exited with {workers.dead()}")
        cost = RedisCost(ctx.url)
        lat = run_calls(ctx, ctx.rt_n, 10.0)
        server = cost.per_job(len(lat))
    out = summarize(lat)
    out.update(server)
    if len(lat) < ctx.rt_n:
        out["notes"] = [f"stopped after {len(lat)}/{ctx.rt_n} calls (deadline {ctx.deadline:.0f}s)"]
    return out


def enqueue(ctx: Ctx, run_calls: Callable[[Ctx], list[float]], jobs_per_call: int = 1,
            repeats: int = 1) -> dict[str, Any]:
    """Time the adapter's enqueue loop on an empty Redis ``repeats`` times; keep the median run.

    Each run also measures the Redis memory per waiting job. (run.py repeats the cheap workloads
    in separate rounds across all systems instead, so that noise and CPU placement vary.)
    """
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        fresh(ctx.url)
        before = used_memory(ctx.url)
        cost = RedisCost(ctx.url)
        lat = run_calls(ctx)
        server = cost.per_job(len(lat) * jobs_per_call)
        after = used_memory(ctx.url)
        out = summarize(lat, jobs_per_call)
        out.update(server)
        if out["jobs"]:
            out["bytes_per_job"] = round((after - before) / out["jobs"], 1)
        if out["jobs"] < ctx.n:
            out["notes"] = [f"stopped after {out['jobs']}/{ctx.n} jobs (deadline {ctx.deadline:.0f}s)"]
            runs = [out]
            break
        runs.append(out)
    runs.sort(key=lambda r: r["jobs_per_s"] or 0)
    median = runs[len(runs) // 2]
    median["runs_jobs_per_s"] = [r["jobs_per_s"] for r in runs]
    return median


def run_async(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def ctx_from_args(argv: list[str] | None = None) -> tuple[str, Ctx, str]:
    ap = argparse.ArgumentParser()
    ap.add_argument("system")
    ap.add_argument("action")
    ap.add_argument("--url", required=True)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rt-n", type=int, default=500)
    ap.add_argument("--chunk", type=int, default=1_000)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=120.0)
    ap.add_argument("--variant", default="")
    ap.add_argument("--logdir", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    ctx = Ctx(system=a.system, url=a.url, n=a.n, rt_n=a.rt_n, chunk=a.chunk, procs=a.procs,
              deadline=a.deadline, variant=a.variant, logdir=a.logdir)
    return a.action, ctx, a.out


def write_result(path: str, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, default=str)
    if path:
        Path(path).write_text(text)
    else:
        print(text)


__all__ = ["Ctx", "NotApplicable", "asdict", "hit", "drain", "roundtrip", "enqueue", "time_calls", "atime_calls",
           "summarize", "fresh", "Workers", "QUEUE", "run_async", "ctx_from_args", "write_result"]
