"""Cost of checking job data on the put path: the encoder alone, and put / put_many rates.

Usage: python bench/encode_micro.py [--url redis://...] [-n 5000] [--rounds 5]
Without --url a private redis-server is started. Prints the best of ``--rounds`` for each
figure (the machine is shared: the best round is the least disturbed one): nanoseconds per
``_args.dumps`` call for a few payload shapes, then put and put_many jobs/s and the client's
CPU time per job (less sensitive to a loaded machine than the wall-clock rate).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queueengine import Client, _args  # noqa: E402
from queueengine.devtools.embedded import EmbeddedRedis  # noqa: E402

PAYLOADS = {
    "small {i: 1}": {"i": 1},
    "10 keys, floats": {f"k{i}": i * 0.5 for i in range(10)},
    "with None": {"a": None, "b": [1, 2, None], "c": "x"},
    "nested 1 KiB": {"items": [{"id": i, "name": f"item-{i}", "price": i * 1.25} for i in range(20)]},
}


def best(rounds: int, fn: Callable[[], float]) -> float:
    return max(fn() for _ in range(rounds))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    for label, payload in PAYLOADS.items():
        ns = min(timeit.repeat(lambda p=payload: _args.dumps(p, "data"), number=20000, repeat=opts.rounds))
        print(f"dumps {label:24} {ns / 20000 * 1e9:8.0f} ns")
    server = None
    url = opts.url
    if url is None:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-"))
        url = server.start()
    n = opts.n
    try:
        r = redis.Redis.from_url(url)
        r.flushdb()
        client = Client.from_url(url, namespace="bench", worker_name="bench")
        q = client.queues["bench"]
        q.put("noop", {})

        cpu: dict[str, float] = {}

        def put_rate() -> float:
            r.flushdb()
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n):
                q.put("noop", {"i": 1})
            cpu["put"] = min(cpu.get("put", 1e9), (time.process_time() - c) / n * 1e6)
            return n / (time.perf_counter() - t)

        def many_rate() -> float:
            r.flushdb()
            jobs = [("noop", {"i": 1})] * (n * 5)
            t, c = time.perf_counter(), time.process_time()
            q.put_many(jobs)
            cpu["put_many"] = min(cpu.get("put_many", 1e9), (time.process_time() - c) / (n * 5) * 1e6)
            return n * 5 / (time.perf_counter() - t)

        print(f"put      {best(opts.rounds, put_rate):10.0f} jobs/s  client CPU {cpu['put']:6.2f} us/job")
        print(f"put_many {best(opts.rounds, many_rate):10.0f} jobs/s  client CPU {cpu['put_many']:6.2f} us/job")
        r.flushdb()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
