"""Job handlers for the topology and fault tests (the engine's worker imports them by path).

Every run is counted in :data:`RUNS` (this process) so a test can tell "done exactly once".
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

RUNS: Counter[str] = Counter()
_LOCK = threading.Lock()


def record(job: Any) -> Any:
    """Count the run; sleep ``data["sleep"]`` seconds first (default none); return ``data["n"]``."""
    pause = float(job.data.get("sleep", 0))
    if pause:
        time.sleep(pause)
    with _LOCK:
        RUNS[job.jid] += 1
    return job.data.get("n")


def reset() -> None:
    """Forget every recorded run."""
    with _LOCK:
        RUNS.clear()
