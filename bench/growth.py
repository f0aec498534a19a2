"""Does anything in queueengine grow with the queue's length?

    python bench/growth.py --url redis://127.0.0.1:PORT/0 [--sizes 10000,100000,1000000]
                           [--samples 200] [--deadline 150] [--out growth.json]

Fills one queue with ``put_many`` up to each size in turn (10k, then 100k, then 1M jobs waiting)
and at each size measures, over ``--samples`` calls each: one more ``q.put``, ``q.pop()`` and
``job.complete()``; Redis memory per waiting job (``used_memory`` growth / jobs waiting); and,
when ``bench/dashboard_pages.py`` (the dashboard team's) is there, the dashboard's page times:
it runs as ``python bench/dashboard_pages.py --url URL --namespace NS --queue Q --json`` (with
the project's ``.venv`` when there is one, for Django) and prints ``{"page": ms, ...}`` last.

The Redis given must be private to the benchmark: it is flushed first. Every fill is bounded by
``--deadline`` seconds; a size that cannot be reached in time is reported as far as it got.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(BENCH), str(ROOT)):  # after PYTHONPATH, which may hold an engine snapshot
    if _p not in sys.path:
        sys.path.append(_p)

from systems import queueengine_bench as qb  # noqa: E402
from systems.common import QUEUE, Ctx, percentile  # noqa: E402


def stats(lat: list[float]) -> dict[str, float | None]:
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    return {"p50_ms": None if p50 is None else round(p50 * 1000, 3),
            "p99_ms": None if p99 is None else round(p99 * 1000, 3)}


def dashboard_hook() -> Any:
    """A callable ``(url, namespace, queue) -> {page: ms}`` running bench/dashboard_pages.py, or why not.

    The dashboard needs Django, which the peers' environment does not have, so the script runs as
    a subprocess with the project's own environment (``.venv``, built by ``make venv``) when there
    is one: ``python bench/dashboard_pages.py --url URL --namespace NS --queue Q --json`` must print
    ``{"page": milliseconds, ...}`` as its last line.
    """
    path = BENCH / "dashboard_pages.py"
    if not path.exists():
        return "bench/dashboard_pages.py not there yet"
    py = ROOT / ".venv" / "bin" / "python"
    python = str(py) if py.exists() else sys.executable

    def measure(url: str, namespace: str, queue: str) -> dict[str, float]:
        argv = [python, str(path), "--url", url, "--namespace", namespace, "--queue", queue, "--json"]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"dashboard_pages.py exited {proc.returncode}: {tail[:200]}")
        return {str(k): float(v) for k, v in json.loads(lines[-1]).items()}

    return measure


def fill(q: Any, waiting: int, size: int, chunk: int, deadline: float) -> int:
    """Put jobs until ``size`` wait (or ``deadline`` seconds pass); how many wait then."""
    stop = time.perf_counter() + deadline
    while waiting < size and time.perf_counter() < stop:
        step = min(chunk, size - waiting)
        if hasattr(q, "put_many"):
            qb._put_many(q, qb.NOOP, waiting, waiting + step)
        else:
            for i in range(waiting, waiting + step):
                q.put(qb.NOOP, {"i": i})
        waiting += step
    return waiting


def latencies(q: Any, samples: int, waiting: int) -> dict[str, Any]:
    """p50/p99 of one more put, of pop and of complete, ``samples`` calls each (the extra jobs
    put are popped back)."""
    lat_put = []
    for i in range(samples):
        t = time.perf_counter()
        q.put(qb.NOOP, {"i": -i})
        lat_put.append(time.perf_counter() - t)
    lat_pop, lat_done = [], []
    for _ in range(samples):
        t = time.perf_counter()
        job = q.pop()
        t2 = time.perf_counter()
        if job is None:
            raise RuntimeError(f"pop returned None with {waiting} jobs waiting")
        job.complete()
        t3 = time.perf_counter()
        lat_pop.append(t2 - t)
        lat_done.append(t3 - t2)
    return {"put": stats(lat_put), "pop": stats(lat_pop), "complete": stats(lat_done)}


def dashboard_times(dash: Any, url: str) -> dict[str, float] | str:
    """The dashboard's page times (ms) at this length, or the error that stopped them."""
    try:
        pages = dash(url=url, namespace=qb.NAMESPACE, queue=QUEUE)
        return {k: round(float(v), 2) for k, v in dict(pages).items()}
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"[:200]


def measure(args: argparse.Namespace, sizes: list[int], result: dict[str, Any]) -> None:
    """Fill the queue to each size in turn and measure there; rows and notes go into ``result``."""
    ctx = Ctx(system="queueengine", url=args.url, variant="qless")
    qb.setup(ctx)
    client = qb._client(ctx)
    q = client.queues[QUEUE]
    conn = ctx.redis()
    conn.flushall()
    base_mem = int(conn.info("memory")["used_memory_dataset"])
    dash = dashboard_hook()
    if isinstance(dash, str):
        result["notes"].append(f"Dashboard page times: not measured ({dash}).")
    if not hasattr(q, "put_many"):
        result["notes"].append("q.put_many is missing: the queue was filled with single puts.")
    waiting = 0
    for size in sizes:
        t0 = time.perf_counter()
        start_waiting = waiting
        waiting = fill(q, waiting, size, args.chunk, args.deadline)
        fill_s = time.perf_counter() - t0
        mem = int(conn.info("memory")["used_memory_dataset"])
        row: dict[str, Any] = {
            "target": size,
            "waiting": waiting,
            "fill_jobs_per_s": round((waiting - start_waiting) / fill_s, 1) if fill_s > 0 else None,
            "bytes_per_job": round((mem - base_mem) / waiting, 1) if waiting else None,
            "used_memory_mb": round(mem / 1e6, 1),
        }
        if waiting < size:
            result["notes"].append(f"Stopped filling at {waiting:,} of {size:,} jobs "
                                   f"(deadline {args.deadline:.0f}s).")
        row.update(latencies(q, args.samples, waiting))
        if callable(dash):
            row["dashboard"] = dashboard_times(dash, args.url)
        result["sizes"].append(row)
        print(json.dumps(row), flush=True)
        if waiting < size:
            break


def main(argv: list[str] | None = None) -> int:
    """Measure (see the module docstring) and print or write the JSON report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--deadline", type=float, default=150.0)
    ap.add_argument("--chunk", type=int, default=5_000)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    result: dict[str, Any] = {"samples": args.samples, "sizes": [], "notes": []}
    try:
        measure(args, sizes, result)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:400]
        print(result["error"], file=sys.stderr)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
