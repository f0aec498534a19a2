"""Engine micro-benchmark: put, put_many, pop+complete and put->wait against raw Redis.

Usage: python bench/engine_micro.py [--url redis://...] [-n 20000]
Without --url a private redis-server is started (queueengine.devtools.embedded). Prints jobs/s and the
ratio to the raw-Redis baseline of the same shape (LPUSH loop, pipelined LPUSH, RPOP, BRPOP
ping-pong).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queueengine import Client, Queue  # noqa: E402
from queueengine.devtools.embedded import EmbeddedRedis  # noqa: E402


def rate(n: int, fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


Rates = tuple[float, float]
"""(engine jobs/s, raw Redis jobs/s) of one benchmark."""


def put_rates(r: redis.Redis, q: Queue, n: int) -> dict[str, Rates]:
    """Single puts against an LPUSH loop; put_many against pipelined LPUSHes (5n jobs)."""
    raw_put = rate(n, lambda: [r.lpush("raw", '{"i": 1}') for _ in range(n)])
    eng_put = rate(n, lambda: [q.put("noop", {"i": 1}) for _ in range(n)])

    def raw_pipe() -> None:
        for _ in range(0, n * 5, 1000):
            p = r.pipeline(transaction=False)
            for _ in range(1000):
                p.lpush("raw2", '{"i": 1}')
            p.execute()
    raw_many = rate(n * 5, raw_pipe)
    eng_many = rate(n * 5, lambda: q.put_many([("noop", {"i": 1})] * (n * 5)))
    return {"put (one call per job)": (eng_put, raw_put), "put_many (batches of 1000)": (eng_many, raw_many)}


def drain_rates(r: redis.Redis, client: Client, n: int) -> dict[str, Rates]:
    """Pop(100) + complete_many of the 6n jobs put_rates put, against RPOP of 100."""
    def raw_drain() -> None:
        while True:
            got = r.rpop("raw", 100)
            if not got:
                got = r.rpop("raw2", 100)
                if not got:
                    break

    raw_pop = rate(n * 6, raw_drain)

    def drain() -> None:
        while True:
            jobs = client.pop_from(["bench"], count=100)
            if not jobs:
                break
            client.complete_many([(j, None) for j in jobs])

    eng_pop = rate(n * 6, drain)
    return {"pop(100)+complete_many (one worker)": (eng_pop, raw_pop)}


def engine_round_trips(url: str, client: Client, m: int) -> float:
    """put -> a worker thread pops and completes -> client.wait returns: round trips/s."""
    stop = threading.Event()

    def worker() -> None:
        wc = Client.from_url(url, namespace="bench", worker_name="w")
        while not stop.is_set():
            jobs = wc.pop_from(["rt"], count=10)
            if not jobs:
                wc.wait_for_work(["rt"], 0.5)
                continue
            wc.complete_many([(j, 1) for j in jobs])

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    rq = client.queues["rt"]
    eng_rt = rate(m, lambda: [client.wait(rq.put("noop", {}, reply=True), timeout=10) for _ in range(m)])
    stop.set()
    t.join()
    return eng_rt


def raw_round_trips(url: str, r: redis.Redis, m: int) -> float:
    """LPUSH -> a thread's BRPOP and LPUSH of a reply -> BRPOP of the reply: round trips/s."""
    def raw_worker() -> None:
        rr = redis.Redis.from_url(url)
        while True:
            item = rr.brpop(["rawq"], timeout=1)
            if item is None or item[1] == b"stop":
                return
            rr.lpush(b"reply:" + item[1], b"1")

    t2 = threading.Thread(target=raw_worker, daemon=True)
    t2.start()

    def raw_rt() -> None:
        for i in range(m):
            r.lpush("rawq", str(i))
            r.brpop([f"reply:{i}"], timeout=10)

    raw_rtt = rate(m, raw_rt)
    r.lpush("rawq", "stop")
    t2.join()
    return raw_rtt


def run(url: str, n: int) -> dict[str, Rates]:
    """Every benchmark against the Redis at ``url`` (flushed)."""
    r = redis.Redis.from_url(url)
    r.flushdb()
    client = Client.from_url(url, namespace="bench", worker_name="bench")
    q = client.queues["bench"]
    q.put("noop", {})  # load the script
    job = q.pop()
    assert job is not None
    job.complete()
    results = put_rates(r, q, n)
    results.update(drain_rates(r, client, n))
    # round trip: put -> a worker thread pops and completes -> client.wait returns
    r.flushdb()  # start clean: completed-job retention would otherwise trim 10k old jobs first
    m = max(200, n // 20)
    eng_rt = engine_round_trips(url, client, m)
    results["put -> wait round trip"] = (eng_rt, raw_round_trips(url, r, m))
    r.flushdb()
    return results


def main() -> None:
    """Run the benchmarks (on a private server unless --url) and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("-n", type=int, default=20000)
    opts = ap.parse_args()
    server = None
    url = opts.url
    if url is None:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-"))
        url = server.start()
    try:
        results = run(url, opts.n)
        print(f"{'benchmark':40} {'engine/s':>10} {'raw/s':>10} {'ratio':>6}")
        for name, (e, b) in results.items():
            print(f"{name:40} {e:10.0f} {b:10.0f} {e / b:6.2f}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
