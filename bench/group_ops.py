"""Retry-all of a big failure group through the dashboard's group operation (a benchmark).

    python bench/group_ops.py              # 100,000 failed jobs in a private Redis
    python bench/group_ops.py --jobs 20000

Fails N jobs into one group, then runs ``jobadmin.bulk`` retry-all as the dashboard does and
reports how long it took and the slowest single Redis command meanwhile (SLOWLOG), which says
whether the operation ever held Redis up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    """Seed, fail, retry all, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("QE_DATA_DIR", tempfile.mkdtemp(prefix="qe-bench-ops-"))
    import django

    django.setup()
    from jobadmin import bulk
    from queueengine import Client
    from queueengine.devtools.embedded import EmbeddedRedis

    server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-bench-redis-"))
    client = Client.from_url(server.start(), namespace="ops")
    try:
        q = client.queues["big"]
        for start in range(0, args.jobs, 10_000):
            n = min(10_000, args.jobs - start)
            q.put_many([{"klass": "bench.jobs.Broken", "data": {"i": start + i}, "retries": 0} for i in range(n)])
            q.pop(n)
        while True:
            page = client.views.jobs("worker", client.worker_name, 0, 500, trunc=0)
            if not page["jobs"]:
                break
            client._pipeline_calls([("fail", (j["jid"], client.worker_name, "big-ValueError", "boom", "", ""))
                                    for j in page["jobs"]], raise_errors=True)
        r = client.redis
        r.config_set("slowlog-log-slower-than", 500)
        r.config_set("slowlog-max-len", 10_000)
        r.slowlog_reset()
        started = time.perf_counter()
        op = bulk.start(client, "retry", "big-ValueError", None, "bench")
        bulk.wait(op["id"], 3600)
        elapsed = time.perf_counter() - started
        rec = bulk.get(client, op["id"]) or {}
        slow = r.slowlog_get(10_000)
        worst = max((entry["duration"] for entry in slow), default=0)
        print(f"retry-all of {rec.get('total', 0):,} jobs: {elapsed:.1f} s ({rec.get('total', 0) / elapsed:,.0f} jobs/s), "
              f"{rec.get('done', 0):,} done, {rec.get('skipped', 0):,} skipped; slowest Redis command "
              f"{worst / 1000:.1f} ms ({len(slow)} over 0.5 ms)")
    finally:
        client.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
