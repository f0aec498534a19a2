"""Seed a small demo workload: every kind of job the dashboard can show."""

from __future__ import annotations

from queueengine import Client


def seed(url: str, namespace: str = "default") -> str:
    """Put demo jobs of every kind into ``namespace``; return a one-line summary."""
    client = Client.from_url(url, namespace=namespace)
    try:
        high, default, low, reports = (client.queues[name] for name in ("high", "default", "low", "reports"))
        put = 0
        for i in range(12):
            default.put("config.demo_jobs.resize", {"w": 200 + i, "h": 100 + i},
                        priority=i % 3, tags=("images", "demo"))
            put += 1
        for i in range(3):
            high.put("config.demo_jobs.resize", {"w": 4000 + i}, priority=10, tags=("urgent",))
            put += 1
        for delay in (30, 120, 600, 3600):
            low.put("config.demo_jobs.resize", {"w": delay}, delay=delay, tags=("later",))
            put += 1
        first = default.put("config.demo_jobs.resize", {"w": 1, "step": "fetch"}, tags=("pipeline",))
        second = default.put("config.demo_jobs.resize", {"w": 2, "step": "transform"},
                             depends=(first,), tags=("pipeline",))
        low.put("config.demo_jobs.report", {"team": "pipeline", "step": "publish"},
                depends=(second,), tags=("pipeline",))
        put += 3
        tracked = low.put("config.demo_jobs.slow", {"seconds": 30}, tags=("tracked",))
        client.jobs[tracked].track()
        put += 1
        for invoice in ("INV-1001", "INV-1002", "INV-1003"):
            default.put("config.demo_jobs.broken", {"invoice": invoice}, retries=0, tags=("billing",))
            put += 1
        reports.recur("config.demo_jobs.report", {"team": "ops"}, interval=60)
        reports.recur("config.demo_jobs.report", {"team": "finance"}, cron="*/5 * * * *")
        return f"{put} jobs in queues high/default/low, 2 recurring in reports"
    finally:
        client.close()
