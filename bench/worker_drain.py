"""The engine worker's drain: how fast one ``Worker`` empties a queue of tiny jobs.

    python bench/worker_drain.py [-n 20000] [--repeat 3] [--metrics-ratio]

Two shapes on a private redis-server: ``backlog`` (n jobs put first, then one worker with
concurrency 4 drains them: the hot path of dispatch) and ``trickle`` (the worker idle, jobs
arriving through ``put_many`` in batches of 20 at 500 jobs/s: what issue 13 found stalling).
Prints jobs/s (backlog) and seconds from the last put to the last completion (trickle).
``--metrics-ratio``: the backlog drain only, with the engine's metrics (issue 15) on and off in
alternating runs, and the ratio of the medians (on / off).

Before and after issue 13's dispatch fix, on the shared 2-core box (median of 3, 20,000 jobs):
backlog 4,554 -> 4,563 jobs/s (the same, within noise); trickle 24.0 s -> 0.00 s.

Before and after issue 14's worker restructure (the runner a composed object), alternating six
times in one sitting on the shared box (load about 3), ``-n 20000 --repeat 3``: backlog median of
18 runs 12,947 -> 12,292 jobs/s (runs spread 6,363-18,699 and 8,211-15,157: the same within
noise); trickle 0.00 s -> 0.00 s. Counted under valgrind (load-independent), the whole process
(put_many then drain) spends 115k -> 105k instructions per job.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queueengine import Client  # noqa: E402
from queueengine.devtools.embedded import EmbeddedRedis  # noqa: E402
from queueengine.worker import Worker  # noqa: E402

KLASS = "bench.worker_drain.noop"


def noop(job: object) -> None:
    """The benchmark's job: nothing."""


def done(client: Client) -> int:
    """Completed jobs of the namespace."""
    return int(client.redis.zcard(client.keys.key("completed")))


def drain(client: Client, n: int, *, trickle: bool, metrics: bool = True) -> float:
    """One run: jobs/s of the backlog drain, or seconds from the last put to the last completion."""
    client.redis.flushdb()
    if not metrics:
        client.config["metrics"] = 0
    q = client.queues["q"]
    if not trickle:
        for start in range(0, n, 1000):
            q.put_many([(KLASS, {}) for _ in range(min(1000, n - start))])
    worker = Worker(client, ["q"], concurrency=4, install_signals=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    began = time.perf_counter()
    thread.start()
    if trickle:
        while not client.workers.counts:
            time.sleep(0.01)
        time.sleep(0.2)   # the worker is idle, blocked on its wait
        for _ in range(0, n, 20):
            q.put_many([(KLASS, {}) for _ in range(20)])
            time.sleep(20 / 500)
        began = time.perf_counter()
    while done(client) < n and time.perf_counter() - began < 120:
        time.sleep(0.002)
    took = time.perf_counter() - began
    worker.stop()
    thread.join(30)
    return took if trickle else n / took


def main() -> None:
    """Run both shapes ``--repeat`` times and print the medians."""
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--metrics-ratio", action="store_true", help="backlog drain with metrics on vs off")
    args = ap.parse_args()
    server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-drain-"))
    url = server.start()
    client = Client.from_url(url, namespace="drain")
    try:
        if args.metrics_ratio:
            rates: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.repeat):
                for on in (False, True):
                    rates[on].append(drain(client, args.n, trickle=False, metrics=on))
            on, off = statistics.median(rates[True]), statistics.median(rates[False])
            print(f"backlog drain, {args.n} jobs: metrics off {off:,.0f} jobs/s, on {on:,.0f} jobs/s, "
                  f"ratio {on / off:.3f} (off: {', '.join(f'{r:,.0f}' for r in rates[False])}; "
                  f"on: {', '.join(f'{r:,.0f}' for r in rates[True])})")
            return
        backlog = [drain(client, args.n, trickle=False) for _ in range(args.repeat)]
        trickle = [drain(client, 1000, trickle=True) for _ in range(args.repeat)]
        print(f"backlog drain, {args.n} jobs, concurrency 4: median {statistics.median(backlog):,.0f} jobs/s "
              f"({', '.join(f'{r:,.0f}' for r in backlog)})")
        print(f"trickle (put_many 20 at 500/s into an idle worker, 1000 jobs): last put -> last done "
              f"median {statistics.median(trickle):.2f} s ({', '.join(f'{t:.2f}' for t in trickle)})")
    finally:
        client.close()
        server.stop()


if __name__ == "__main__":
    main()
