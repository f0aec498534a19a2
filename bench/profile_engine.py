"""Profile queueengine's hot paths (for the engine engineers): where do put, the worker and a
round trip spend their time, in Python and in Redis?

    bench/.venv-peers/bin/python bench/profile_engine.py [--n 5000] [--variant qless] [--top 25]

Starts its own private Redis, then, with cProfile:

1. the producer: ``--n`` single ``q.put`` calls, and the same jobs through ``q.put_many``;
2. one worker process draining ``--n`` no-op jobs (the worker runs under cProfile through
   ``BENCH_PROFILE``; its profile is written when SIGTERM ends it);
3. the caller's side of 200 round trips (``put(reply=True)`` + ``client.wait``).

For each it prints the top functions by own time and by cumulative time, and the Redis commands
that cost the server most per job. Profiling slows Python down, so these are for finding where the
time goes, not for the tables. Output also goes to bench/results/profile-<variant>.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(BENCH), str(ROOT)):  # after PYTHONPATH, which may hold an engine snapshot
    if _p not in sys.path:
        sys.path.append(_p)

from systems import common  # noqa: E402
from systems import queueengine_bench as qb  # noqa: E402


def table(prof: cProfile.Profile | pstats.Stats, top: int, title: str) -> str:
    out = io.StringIO()
    stats = prof if isinstance(prof, pstats.Stats) else pstats.Stats(prof, stream=out)
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs()
    out.write(f"\n=== {title}: by own time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"\n=== {title}: by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def top_redis(cost: dict[str, object]) -> str:
    lines = [f"Redis: {cost.get('redis_us_per_job')} µs CPU and {cost.get('redis_calls_per_job')} calls per job"]
    for name, (calls, usec) in dict(cost.get("redis_top") or {}).items():  # type: ignore[call-overload]
        lines.append(f"  {name:<18} {calls:>7} calls/job {usec:>8} µs/job")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--variant", default="qless")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()

    from queueengine.devtools.embedded import EmbeddedRedis

    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="qe-profile-") as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        ctx = common.Ctx(system="queueengine", url=server.url, n=args.n, variant=args.variant,
                         logdir=str(Path(tmp) / "logs"), deadline=60)
        qb.setup(ctx)

        # 1. producer
        common.fresh(ctx.url)
        cost = common.RedisCost(ctx.url)
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        qb.enqueue_calls(ctx)
        prof.disable()
        report.append(f"\n##### put x {args.n}: {args.n / (time.perf_counter() - t):,.0f} jobs/s under cProfile\n")
        report.append(top_redis(cost.per_job(args.n)))
        report.append(table(prof, args.top, "put"))
        if args.variant == "qless":
            common.fresh(ctx.url)
            cost = common.RedisCost(ctx.url)
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.enable()
            qb.batch_calls(ctx)
            prof.disable()
            report.append(f"\n##### put_many x {args.n}: {args.n / (time.perf_counter() - t):,.0f} jobs/s\n")
            report.append(top_redis(cost.per_job(args.n)))
            report.append(table(prof, args.top, "put_many"))

        # 2. one worker process draining
        pdir = Path(tmp) / "pstats"
        pdir.mkdir()
        os.environ["BENCH_PROFILE"] = str(pdir)
        ctx.procs = 1
        res = common.drain(ctx, qb.prefill)
        os.environ.pop("BENCH_PROFILE")
        report.append(f"\n##### worker draining {res['jobs']:,} jobs: {res['jobs_per_s']} jobs/s under cProfile\n")
        report.append(top_redis(res))
        files = sorted(pdir.glob("*.pstats"))
        good = []
        for f in files:
            try:
                pstats.Stats(str(f))
                good.append(str(f))
            except Exception:
                pass
        if good:
            report.append(table(pstats.Stats(*good), args.top, f"worker (all {len(good)} threads)"))
        else:
            report.append("(the worker wrote no profile: did it exit on SIGTERM?)\n")

        # 3. round-trip caller
        common.fresh(ctx.url)
        with common.Workers(ctx, 1, probe=False):
            qb.roundtrip_calls(ctx, 5, 60.0)
            cost = common.RedisCost(ctx.url)
            prof = cProfile.Profile()
            prof.enable()
            lat = qb.roundtrip_calls(ctx, 200, 10.0)
            prof.disable()
            rcost = cost.per_job(len(lat))
        report.append(f"\n##### round trip x 200: p50 {common.percentile(lat, 50) * 1000:.2f} ms\n")  # type: ignore[operator]
        report.append(top_redis(rcost))
        report.append(table(prof, args.top, "round-trip caller"))

    text = "".join(report)
    print(text)
    out = BENCH / "results" / f"profile-{args.variant}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
