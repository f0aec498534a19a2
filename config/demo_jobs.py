"""Job handlers of the demo workload that ``make run`` seeds (see config/demo.py)."""

from __future__ import annotations

import random
import time
from typing import Any


def resize(job: Any) -> dict[str, int]:
    """Pretend to resize an image: a little work, then the new size as the result."""
    time.sleep(random.uniform(0.05, 0.4))
    width = int(job.data.get("w", 100))
    return {"w": width // 2, "h": int(job.data.get("h", width)) // 2}


def report(job: Any) -> str:
    """A recurring report: quick, returns a line of text."""
    time.sleep(0.1)
    return f"report for {job.data.get('team', 'everyone')} ready"


def slow(job: Any) -> str:
    """A long job, to see one running (with heartbeats) on the dashboard."""
    for _ in range(int(job.data.get("seconds", 20)) * 10):
        time.sleep(0.1)
    return "done slowly"


def broken(job: Any) -> None:
    """Always fails: the demo's failure groups come from here."""
    raise ValueError(f"cannot parse invoice {job.data.get('invoice')!r}: <b>bad</b> amount")
