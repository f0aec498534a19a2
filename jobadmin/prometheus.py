"""Prometheus families of the engine's metrics (issue 15), for ``/jobs/metrics``.

From ``client.metrics.totals()`` (monotonic per queue and job class):

- ``queueengine_job_run_seconds`` and ``queueengine_job_wait_seconds``: histograms with labels
  ``queue`` and ``klass``, buckets ``PROMETHEUS_BUCKETS`` (5 ms to 1 h, then ``+Inf``). The
  engine's own buckets are 20% wide; each counts under the first ``le`` at or above the value it
  stands for, so a duration within 10% of a boundary may land on either side of it. ``_sum`` is
  estimated the same way.
- ``queueengine_jobs_completed_total``, ``queueengine_jobs_failed_total``,
  ``queueengine_jobs_retried_total``: counters with the same labels.
- ``queueengine_queue_oldest_waiting_seconds``: a gauge per queue (age of the job waiting longest).

Cardinality: a namespace's first ``CLASS_LABELS`` job classes (in the order the engine first saw
them, which never changes) get their own ``klass`` label; later classes are summed per queue
under ``klass="_other"``. So each family has at most queues x (CLASS_LABELS + 1) series.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from queueengine import Client
from queueengine.operator import metrics as mt

PROMETHEUS_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
                                         300, 600, 1800, 3600)
"""The histograms' ``le`` bounds in seconds (then ``+Inf``)."""
CLASS_LABELS = 100
"""Job classes per namespace that get their own ``klass`` label (the rest: ``_other``)."""
OTHER = "_other"

_LE_OF_BUCKET: list[int] = [
    next((k for k, le in enumerate(PROMETHEUS_BUCKETS) if mt.representative(i) <= le), len(PROMETHEUS_BUCKETS))
    for i in range(mt.BUCKETS)
]
"""Engine bucket -> index of the first ``le`` it counts under (len = only ``+Inf``)."""

Labels = Callable[..., str]


def _fold(rows: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(queue, klass label) -> summed counters and bucket lists, classes past the cap as _other."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        label = row["klass"] if 0 < row["rank"] <= CLASS_LABELS else OTHER
        acc = out.setdefault((row["queue"], label), {"completed": 0, "failed": 0, "retried": 0,
                                                    "wait": [0] * mt.BUCKETS, "run": [0] * mt.BUCKETS})
        for name in ("completed", "failed", "retried"):
            acc[name] += row[name]
        for kind in ("wait", "run"):
            acc[kind] = [a + b for a, b in zip(acc[kind], row[kind], strict=True)]
    return out


def _histogram(lines: list[str], name: str, labels: Labels, queue: str, klass: str, buckets: Sequence[int]) -> None:
    per_le = [0] * (len(PROMETHEUS_BUCKETS) + 1)
    total = 0.0
    for i, n in enumerate(buckets):
        if n:
            per_le[_LE_OF_BUCKET[i]] += n
            total += n * mt.representative(i)
    cumulative = 0
    for le, n in zip(PROMETHEUS_BUCKETS, per_le, strict=False):
        cumulative += n
        lines.append(f"{name}_bucket{labels(queue=queue, klass=klass, le=f'{le:g}')} {cumulative}")
    count = cumulative + per_le[-1]
    lines.append(f"{name}_bucket{labels(queue=queue, klass=klass, le='+Inf')} {count}")
    lines.append(f"{name}_sum{labels(queue=queue, klass=klass)} {total:.6f}")
    lines.append(f"{name}_count{labels(queue=queue, klass=klass)} {count}")


def families(client: Client, queues: Sequence[Any], now: float, labels: Labels) -> list[str]:
    """The text lines of the metrics families above (``queues``: the queue views, for the oldest
    waiting job; ``labels(**pairs)`` formats a label set)."""
    series = _fold(client.metrics.totals())
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    for kind, help_text in (("run", "Seconds a job ran (popped to completed, failed or retried), "
                                    "per queue and job class."),
                            ("wait", "Seconds a job waited (put or retried to popped), per queue and job class.")):
        name = f"queueengine_job_{kind}_seconds"
        family(name, "histogram", help_text)
        for (queue, klass), acc in sorted(series.items()):
            _histogram(lines, name, labels, queue, klass, acc[kind])
    for outcome, help_text in (("completed", "Jobs completed"), ("failed", "Jobs failed for good"),
                               ("retried", "Job attempts handed back for another try (retry or stall)")):
        name = f"queueengine_jobs_{outcome}_total"
        family(name, "counter", f"{help_text}, per queue and job class.")
        for (queue, klass), acc in sorted(series.items()):
            lines.append(f"{name}{labels(queue=queue, klass=klass)} {acc[outcome]}")
    family("queueengine_queue_oldest_waiting_seconds", "gauge",
           "Age of the job waiting longest in the queue (0 when none waits).")
    for q in queues:
        oldest = q.get("oldest")
        age = max(0.0, now - float(oldest)) if oldest else 0.0
        lines.append(f"queueengine_queue_oldest_waiting_seconds{labels(queue=q['name'])} {age:.3f}")
    return lines
