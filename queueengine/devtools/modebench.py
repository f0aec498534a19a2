"""Measure the delivery modes against raw Redis LPUSH/BRPOP on the same server.

``python -m queueengine.devtools.modebench [--uri URL] [--jobs N] [--modes simple,reliable]``

Two figures per system, the consumer always in a separate process:

* throughput: the producer pushes N jobs one command each while a consumer drains them;
  jobs/s until the last one is consumed (for the modes: until the last *result* is back at
  the client, which is more work than raw Redis does);
* round trip: one job at a time, submit -> result at the client; p50 and p99 in µs. Raw Redis
  does the same with LPUSH, BRPOP and PUBLISH to a channel the producer is subscribed to.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from typing import Any

import redis

RAW_QUEUE = "bench:raw:q"
RAW_REPLY = "bench:raw:reply"


def _raw_consumer(uri: str, n: int, reply: bool, ready: Any) -> None:
    conn = redis.Redis.from_url(uri)
    ready.set()
    for _ in range(n):
        _, payload = conn.brpop([RAW_QUEUE], 0)  # type: ignore[misc]
        if reply:
            conn.publish(RAW_REPLY, payload)


def _mode_worker(uri: str, mode: str, namespace: str, ready: Any, stop: Any) -> None:
    from queueengine.dispatch import JobManager

    worker = JobManager().worker("redis", uri=uri, mode=mode, namespace=namespace)
    worker.jobs.each(lambda job: job.done(job.data["i"]))
    worker.start()
    ready.set()
    stop.wait()
    worker.stop(5)


def raw(uri: str, n: int, rounds: int) -> dict[str, float]:
    """Raw LPUSH/BRPOP throughput and LPUSH/BRPOP/PUBLISH round trip."""
    ctx = mp.get_context("spawn")
    conn = redis.Redis.from_url(uri)
    conn.delete(RAW_QUEUE)
    ready = ctx.Event()
    proc = ctx.Process(target=_raw_consumer, args=(uri, n, False, ready))
    proc.start()
    ready.wait()
    started = time.perf_counter()
    for i in range(n):
        conn.lpush(RAW_QUEUE, b'{"i":%d}' % i)
    proc.join()
    throughput = n / (time.perf_counter() - started)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(RAW_REPLY)
    pubsub.get_message(timeout=1)
    ready = ctx.Event()
    proc = ctx.Process(target=_raw_consumer, args=(uri, rounds, True, ready))
    proc.start()
    ready.wait()
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        conn.lpush(RAW_QUEUE, b'{"i":%d}' % i)
        while pubsub.get_message(timeout=5) is None:
            pass
        times.append(time.perf_counter() - t)
    proc.join()
    pubsub.close()
    return _figures(throughput, times)


def mode(uri: str, name: str, n: int, rounds: int) -> dict[str, float]:
    """The same two figures through ``queueengine.dispatch`` in mode ``name``."""
    from queueengine.dispatch import JobManager

    namespace = f"bench-{name}-{time.time_ns()}"
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_mode_worker, args=(uri, name, namespace, ready, stop))
    proc.start()
    ready.wait()
    client = JobManager().client("redis", uri=uri, mode=name, namespace=namespace)
    try:
        started = time.perf_counter()
        futures = [client.submit(i=i) for i in range(n)]
        for fut in futures:
            fut.result(120)
        throughput = n / (time.perf_counter() - started)
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            client.submit(i=i).result(10)
            times.append(time.perf_counter() - t)
    finally:
        stop.set()
        proc.join(10)
        client.close()
    return _figures(throughput, times)


def _figures(throughput: float, times: list[float]) -> dict[str, float]:
    times.sort()
    return {
        "jobs_per_s": throughput,
        "p50_us": statistics.median(times) * 1e6,
        "p99_us": times[int(len(times) * 0.99) - 1] * 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    """Print a table: raw Redis and each mode, with the ratio to raw."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", default=None, help="Redis URL (default: a private embedded server)")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--modes", default="simple,recoverable,reliable")
    args = parser.parse_args(argv)
    server = None
    uri = args.uri
    if uri is None:
        from queueengine.devtools.embedded import EmbeddedRedis

        server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-"))
        uri = server.start()
    try:
        base = raw(uri, args.jobs, args.rounds)
        rows = [("raw LPUSH/BRPOP", base)]
        for name in args.modes.split(","):
            rows.append((name, mode(uri, name, args.jobs, args.rounds)))
        print(f"{'system':18} {'jobs/s':>9} {'x raw':>6} {'p50 µs':>8} {'x raw':>6} {'p99 µs':>8}")
        for label, fig in rows:
            print(
                f"{label:18} {fig['jobs_per_s']:9.0f} {fig['jobs_per_s'] / base['jobs_per_s']:6.2f} "
                f"{fig['p50_us']:8.0f} {fig['p50_us'] / base['p50_us']:6.2f} {fig['p99_us']:8.0f}"
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
