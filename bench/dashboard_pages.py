"""Dashboard page render times with a big queue (a benchmark, not a test).

    python bench/dashboard_pages.py                      # seeds 1,000,000 jobs in a private Redis
    python bench/dashboard_pages.py --jobs 100000        # smaller
    python bench/dashboard_pages.py --url URL --namespace NS --queue Q --json   # an existing queue
                                                         # (bench/growth.py calls it like this)

Each page is requested REQUESTS times through Django's test client as a staff user (the full
Django stack: middleware, view, one pipelined engine round trip, templates); the time of each
request is measured around the call. Prints p50/p95/max per page, or with --json one line
``{"overview": p95_ms, "queue": ..., "queue_waiting": ..., "job": ..., "failures": ...}``.
Target (issue 5): p95 under 50 ms for the overview, a queue page and a job page at 1M jobs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webclient import staff_web_client  # noqa: E402

REQUESTS = 60


def seed(url: str, namespace: str, queue: str, jobs: int) -> str:
    """Fill ``queue`` with ``jobs`` waiting jobs (batches of 10,000), fail a few, return one jid."""
    from queueengine import Client

    client = Client.from_url(url, namespace=namespace, worker_name="bench-seeder")
    q = client.queues[queue]
    started = time.perf_counter()
    first = ""
    for start in range(0, jobs, 10_000):
        n = min(10_000, jobs - start)
        jids = q.put_many([{"klass": "bench.jobs.Work", "data": {"i": start + i, "payload": "x" * 64},
                            "priority": (start + i) % 5, "tags": ["bench"]} for i in range(n)])
        first = first or jids[0]
    f = client.queues[queue + "-f"]
    f.put_many([("bench.jobs.Broken", {"i": i}) for i in range(200)])
    for job in f.pop(200):
        job.fail(f"{queue}-f-ValueError", "bad input")
    print(f"seeded {jobs:,} jobs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    client.close()
    return first


def measure(url: str, namespace: str, queue: str, jid: str) -> dict[str, list[float]]:
    """Milliseconds per request for each page."""
    web = staff_web_client(url, namespace, "qe-bench-dash-")
    pages = {"overview": "/jobs/", "queue": f"/jobs/queue/{queue}/", "queue_waiting": f"/jobs/queue/{queue}/?tab=waiting",
             "queue_waiting_deep": f"/jobs/queue/{queue}/?tab=waiting&page=20000",
             "job": f"/jobs/job/{jid}/", "failures": "/jobs/failed/", "workers": "/jobs/workers/"}
    times: dict[str, list[float]] = {}
    for name, path in pages.items():
        web.get(path)  # warm up (templates, Lua library)
        samples = []
        for _ in range(REQUESTS):
            t = time.perf_counter()
            response = web.get(path)
            samples.append((time.perf_counter() - t) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")
        times[name] = samples
    return times


def main() -> int:
    """Seed (unless --url names an existing queue), measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="Redis URL of an existing engine (else a private server is started)")
    parser.add_argument("--namespace", default="bench-dash")
    parser.add_argument("--queue", default="big")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line of p95 ms per page")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        from queueengine.devtools.embedded import EmbeddedRedis

        server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-redis-"))
        url = server.start()
    try:
        from queueengine import Client

        if args.url is None:
            jid = seed(url, args.namespace, args.queue, args.jobs)
        else:
            peek = Client.from_url(url, namespace=args.namespace).queues[args.queue].peek()
            if peek is None:
                raise SystemExit(f"queue {args.queue!r} of namespace {args.namespace!r} has no waiting job")
            jid = peek.jid
        times = measure(url, args.namespace, args.queue, jid)
    finally:
        if server is not None:
            server.stop()
    p95 = {name: round(sorted(s)[int(len(s) * 0.95) - 1], 2) for name, s in times.items()}
    if args.json:
        print(json.dumps(p95))
        return 0
    print(f"{'page':<20} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, samples in times.items():
        print(f"{name:<20} {statistics.median(samples):8.2f} {p95[name]:8.2f} {max(samples):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
