"""Search at scale: ``client.jobs.find`` and the explorer page with 1,000,000 jobs (a benchmark,
not a test; issue 16's figures).

    python bench/search_scale.py                 # seeds 1,000,000 jobs in a private Redis (a few minutes)
    python bench/search_scale.py --jobs 100000   # smaller
    python bench/search_scale.py --json          # one JSON line of the figures

The namespace holds ``--jobs`` jobs over 4 queues and 10 classes (100,000 per class at 1M), in
every state (mostly waiting; 2% failed, 2% complete, 1% scheduled), data ``{"user": {"id": 0..999},
"order": n, "note": "..."}``, a tag on one job in ten. Measured:

* class + data, first page: ``find(klass=C, data={"user.id": U})`` paged until 25 jobs are found
  (about 100 match in each class), for 40 random (C, U); p50/p95 in ms. Target: p95 < 500 ms.
  The same query through the explorer page (Django test client, full stack): p50/p95 in ms.
* full data scan: ``find(data={"user.id": -1})`` (nothing matches, so every job is read and its
  data decoded) paged to the end: seconds, Redis calls, and the slowest call (SLOWLOG, the
  server's own timing). Target: < 15 s, no call over 5 ms.
* memory: Redis ``used_memory`` per job, and what the class index takes per job.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webclient import staff_web_client  # noqa: E402

NAMESPACE = "bench-search"
QUEUES = ["emails", "reports", "images", "billing"]
CLASSES = [f"bench.jobs.Task{n}" for n in range(10)]
USERS = 1000
SAMPLES = 40


def seed(client: Any, jobs: int) -> None:
    """``jobs`` jobs in every state (see the module docstring), 10,000 per put_many."""
    started = time.perf_counter()
    rnd = random.Random(1)
    done = 0
    while done < jobs:
        n = min(10_000, jobs - done)
        by_queue: dict[str, list[dict[str, Any]]] = {q: [] for q in QUEUES}
        for i in range(done, done + n):
            by_queue[QUEUES[i % 4]].append({
                "klass": CLASSES[(i // 4) % 10], "data": {"user": {"id": rnd.randrange(USERS)}, "order": i,
                                                          "note": "customer order awaiting fulfilment"},
                "tags": ["sampled"] if i % 10 == 0 else [], "delay": 3600 if i % 100 == 5 else 0})
        for queue, items in by_queue.items():
            client.queues[queue].put_many(items)
        done += n
    for queue in QUEUES:   # 2% failed, 2% complete: popped from the front of each queue
        share = jobs // 4 // 50
        for start in range(0, share * 2, 1000):
            for k, job in enumerate(client.queues[queue].pop(min(1000, share * 2 - start))):
                if (start + k) % 2:
                    job.fail(f"{queue}-Error", "upstream said no")
                else:
                    job.complete({"ok": True})
    print(f"seeded {jobs:,} jobs in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def first_page(client: Any, rnd: random.Random) -> list[float]:
    """Milliseconds until find(klass, data) has 25 jobs (or ends), per sample."""
    out = []
    for _ in range(SAMPLES):
        klass, user = rnd.choice(CLASSES), rnd.randrange(USERS)
        t = time.perf_counter()
        found: list[Any] = []
        cursor = None
        while True:
            page = client.jobs.find(klass=klass, data={"user.id": user}, limit=25 - len(found), cursor=cursor)
            found.extend(page["jobs"])
            cursor = page["cursor"]
            if cursor is None or len(found) >= 25:
                break
        out.append((time.perf_counter() - t) * 1000)
        assert all(j.klass == klass and j.data["user"]["id"] == user for j in found)
    return out


def explorer_page(url: str, rnd: random.Random) -> list[float]:
    """Milliseconds per request of the explorer page for a class + data query (full Django stack)."""
    web = staff_web_client(url, NAMESPACE, "qe-bench-search-")
    web.get("/jobs/search/?q=state:failed")
    out = []
    for _ in range(SAMPLES):
        query = f"class:{rnd.choice(CLASSES)} data.user.id:{rnd.randrange(USERS)}"
        t = time.perf_counter()
        response = web.get("/jobs/search/", {"q": query})
        out.append((time.perf_counter() - t) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"explorer: HTTP {response.status_code}")
    return out


def full_scan(client: Any) -> dict[str, float]:
    """Seconds and calls to page find(data=...) through every job. The server's own timing:
    INFO commandstats for the calls' mean, SLOWLOG (every call over 1 ms: the commands a script
    runs are logged too, and are far faster) for the slowest ones."""
    conn = client.redis
    conn.config_set("slowlog-log-slower-than", 1000)
    conn.config_set("slowlog-max-len", 100_000)
    conn.slowlog_reset()
    conn.config_resetstat()
    t = time.perf_counter()
    scanned = finds = 0
    cursor = None
    while True:
        page = client.jobs.find(data={"user.id": -1}, limit=500, cursor=cursor)
        finds += 1
        scanned += page["scanned"]
        assert not page["jobs"]
        cursor = page["cursor"]
        if cursor is None:
            break
    seconds = time.perf_counter() - t
    stats = conn.info("commandstats")
    calls = stats.get("cmdstat_fcall") or stats.get("cmdstat_evalsha") or {"calls": 0, "usec_per_call": 0}
    slow = [e["duration"] for e in conn.slowlog_get(100_000)
            if e["command"].split(b" ")[0].upper() in (b"FCALL", b"EVALSHA")]
    conn.config_set("slowlog-log-slower-than", 10_000)
    return {"seconds": round(seconds, 2), "scanned": scanned, "find_calls": finds, "redis_calls": calls["calls"],
            "mean_call_ms": round(calls["usec_per_call"] / 1000, 2),
            "max_call_ms": round(max(slow, default=0) / 1000, 2), "calls_over_2ms": sum(1 for c in slow if c > 2000),
            "calls_over_5ms": sum(1 for c in slow if c > 5000)}


def memory(client: Any, jobs: int) -> dict[str, float]:
    """Bytes per job: all of Redis, and the class index alone."""
    conn = client.redis
    index = sum(conn.memory_usage(client.keys.key(f"q:{q}:byclass"), samples=0) or 0 for q in QUEUES)
    return {"used_per_job": round(conn.info("memory")["used_memory"] / jobs), "index_per_job": round(index / jobs)}


def main() -> int:
    """Seed a private server, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from queueengine import Client
    from queueengine.devtools.embedded import EmbeddedRedis

    server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-redis-"))
    url = server.start()
    try:
        client = Client.from_url(url, namespace=NAMESPACE, worker_name="bench")
        seed(client, args.jobs)
        rnd = random.Random(16)
        first = first_page(client, rnd)
        page = explorer_page(url, rnd)
        scan = full_scan(client)
        mem = memory(client, args.jobs)
        info = client.redis.info("server")
    finally:
        server.stop()
    figures = {
        "jobs": args.jobs, "redis": info.get("redis_version"),
        "first_page_p50_ms": round(statistics.median(first), 1),
        "first_page_p95_ms": round(sorted(first)[int(len(first) * .95) - 1], 1),
        "explorer_p50_ms": round(statistics.median(page), 1),
        "explorer_p95_ms": round(sorted(page)[int(len(page) * .95) - 1], 1),
        **{f"scan_{k}": v for k, v in scan.items()}, **mem,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
