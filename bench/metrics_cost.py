"""What the engine's metrics as time series (issue 15) cost: latency, Redis work and memory.

    .venv/bin/python bench/metrics_cost.py [--n 3000] [--rounds 5]

On a private Redis, with the ``metrics`` option on and off in alternating rounds:

- put, pop and complete latency (p50 / p99 of single calls, one client);
- Redis commands and server microseconds per job (``INFO commandstats``) of pop and complete,
  alone and in batches of 16 (how a worker sends them);
- memory: one queue and class busy every minute of an hour, its waits and runs spread over 12
  buckets each, driven by a test clock and read with ``MEMORY USAGE``, scaled to a day.

The drain rate side by side is ``make bench`` (``qe`` vs ``qe-nometrics``) or
``bench/worker_drain.py --metrics-ratio``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queueengine import Client  # noqa: E402
from queueengine.devtools.embedded import EmbeddedRedis  # noqa: E402
from queueengine.devtools.testing import ManualClock  # noqa: E402

KLASS = "bench.metrics.Job"


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def one_round(client: Client, conn: redis.Redis, n: int, metrics: bool) -> dict[str, Any]:
    """Latencies and Redis work of put / pop / complete, singly and in batches of 16."""
    conn.flushdb()
    client.config["metrics"] = 1 if metrics else 0
    q = client.queues["cost"]
    out: dict[str, Any] = {}
    out["put"] = [timed(lambda: q.put(KLASS, {})) for _ in range(n)]
    jobs: list[Any] = []
    conn.config_resetstat()
    out["pop"] = [timed(lambda: jobs.append(q.pop())) for _ in range(n)]
    out["pop_redis"] = redis_per_job(conn, n)
    conn.config_resetstat()
    out["complete"] = [timed(job.complete) for job in jobs]
    out["complete_redis"] = redis_per_job(conn, n)
    q.put_many([(KLASS, {}) for _ in range(n)])
    conn.config_resetstat()
    batch: list[Any] = []
    for _ in range(n // 16):
        batch.extend(q.pop(16))
    out["pop16_redis"] = redis_per_job(conn, len(batch))
    conn.config_resetstat()
    for i in range(0, len(batch), 16):
        client.complete_many([(j, None) for j in batch[i:i + 16]])
    out["complete16_redis"] = redis_per_job(conn, len(batch))
    return out


def redis_per_job(conn: redis.Redis, jobs: int) -> tuple[float, float]:
    """(commands per job inside the Lua calls, server µs per job in FCALL/EVALSHA)."""
    stats = conn.info("commandstats")
    lua = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))
    calls = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_info")
                and not k.startswith("cmdstat_config"))
    return calls / jobs, lua / jobs



def memory(url: str) -> tuple[float, float]:
    """(bytes of a day's minute hashes, bytes of a day's hour hashes) of one busy queue and class."""
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    start = 1_700_000_000 - 1_700_000_000 % 3600
    clock = ManualClock(start)
    client = Client.from_url(url, namespace="mem", clock=clock)
    q = client.queues["busy"]
    spread = [0.001 * 1.5 ** k for k in range(12)]
    for minute in range(60):
        base = start + minute * 60
        for k in range(12):
            clock.set(base + 1 - spread[k])
            q.put(KLASS, {})
        clock.set(base + 1)
        for k, job in enumerate(q.pop(12)):
            clock.set(base + 1 + spread[k])
            job.complete()
    minutes = sum(conn.memory_usage(k, samples=0) or 0 for k in conn.keys("*:mt:m:*"))
    hours = sum(conn.memory_usage(k, samples=0) or 0 for k in conn.keys("*:mt:h:*"))
    client.close()
    conn.close()
    return minutes * 24, hours * 24


def ms(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] * 1000


def main() -> None:
    """Alternate rounds with metrics on and off; print the medians side by side."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-metrics-cost-"))
    url = server.start()
    try:
        conn = redis.Redis.from_url(url)
        client = Client.from_url(url, namespace="cost", worker_name="cost")
        rounds: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for r in range(opts.rounds):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                rounds[on].append(one_round(client, conn, opts.n, on))
        # the least disturbed round of each (a shared machine only ever adds time)
        print(f"{'(best of ' + str(opts.rounds) + ' rounds)':<22} {'metrics on':>14} {'metrics off':>14}")
        for op in ("put", "pop", "complete"):
            for q in (50, 99):
                on = min(ms(x[op], q) for x in rounds[True])
                off = min(ms(x[op], q) for x in rounds[False])
                print(f"{op + f' p{q} ms':<22} {on:>14.3f} {off:>14.3f}")
        for path in ("pop_redis", "complete_redis", "pop16_redis", "complete16_redis"):
            on_c = statistics.median(x[path][0] for x in rounds[True])
            off_c = statistics.median(x[path][0] for x in rounds[False])
            on_u = min(x[path][1] for x in rounds[True])
            off_u = min(x[path][1] for x in rounds[False])
            name = path.replace("_redis", "")
            print(f"{name + ' cmds/job':<22} {on_c:>14.2f} {off_c:>14.2f}")
            print(f"{name + ' Lua µs/job':<22} {on_u:>14.1f} {off_u:>14.1f}")
        client.close()
        minutes, hours = memory(url)
        print(f"memory of one busy queue x class: a day of minute hashes {minutes / 1024:.0f} KB, "
              f"a day of hour hashes {hours / 1024:.1f} KB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
