"""Metrics as time series: ``client.metrics(...)``, ``q.metrics(...)`` and ``client.metrics.*``.

Every completion, failure and retry (and every pop, for the wait) is recorded by the engine's
own Lua calls (``store/lua/metrics.lua``) in per-minute and per-hour hashes, per queue and job
class: counts and wait/run histograms on one fixed log-bucket layout. This module reads them::

    client.metrics()                                   # the whole namespace, the last hour, per minute
    client.metrics(queue="emails", klass="app.Send", since=t0, until=t1, step=300)
    q.metrics(klass="app.Send")                        # the same for one queue
    client.metrics.by_class(queue="emails")            # {klass: totals} over a window
    client.metrics.histogram(queue="emails")           # wait/run bucket counts over a window
    client.metrics.failures(["emails-IOError"])        # failures per group per bucket
    client.metrics.backlog("emails")                   # waiting jobs by class
    client.metrics.totals()                            # monotonic counters (Prometheus)

The buckets (``BUCKETS`` of them): bucket 0 holds durations under 0.1 ms, bucket ``i >= 1``
holds ``[0.1 ms * 1.2**(i-1), 0.1 ms * 1.2**i)`` and the last one everything longer. A bucket
reads as the harmonic mean of its edges, within 1/11 (9.1%) of any duration it holds; buckets
add up across minutes, queues and classes, so every merge keeps that precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from queueengine.exceptions import InvalidArgument
from queueengine.store import args as _args
from queueengine.types import (
    Backlog,
    ClassMetrics,
    GroupSeries,
    Histograms,
    MetricsCounter,
    MetricsSeries,
    MetricsTotals,
    Percentiles,
    SeriesTimes,
)

if TYPE_CHECKING:
    from queueengine.client import Client

BUCKET_BASE = 0.0001
"""Seconds: the lower edge of bucket 1 (bucket 0 holds everything shorter)."""
BUCKET_RATIO = 1.2
"""Each bucket is this many times as wide as the one before."""
LAST_BUCKET = 130
"""The last bucket: 0.1 ms * 1.2**129 (about 19.6 days) and longer."""
BUCKETS = LAST_BUCKET + 1
LN_RATIO = 0.1823215567939546
"""ln 1.2, written out as metrics.lua writes it (the same double)."""
MAX_POINTS = 1500
"""Most buckets one series may have (as ``MAX_POINTS`` in metrics.lua)."""

_FIELDS = {"f": "failed", "r": "retried"}
"""Count fields; ``completed`` is the sum of the ``x<i>`` (completed runs) buckets."""


def bucket_of(seconds: float) -> int:
    """The bucket a duration falls in (the same formula as ``QE.mt_bucket`` in Lua)."""
    if not seconds >= BUCKET_BASE:
        return 0
    return min(LAST_BUCKET, math.floor(math.log(seconds / BUCKET_BASE) / LN_RATIO) + 1)


def bucket_edges(i: int) -> tuple[float, float]:
    """The ``[low, high)`` seconds bucket ``i`` holds (``high`` is infinite for the last)."""
    if i <= 0:
        return 0.0, BUCKET_BASE
    low = BUCKET_BASE * BUCKET_RATIO ** (i - 1)
    return low, (math.inf if i >= LAST_BUCKET else low * BUCKET_RATIO)


def representative(i: int) -> float:
    """The value bucket ``i`` stands for: the harmonic mean of its edges (the lower edge for the
    last bucket, half the first bucket's width for bucket 0)."""
    low, high = bucket_edges(i)
    if i <= 0:
        return BUCKET_BASE / 2
    if math.isinf(high):
        return low
    return 2 * low * high / (low + high)


def percentile(histogram: Mapping[int, int] | Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram (bucket -> count, or a list by bucket), as the
    representative of the bucket it falls in; None when the histogram is empty."""
    items = sorted(histogram.items()) if isinstance(histogram, Mapping) else list(enumerate(histogram))
    total = sum(n for _, n in items)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for i, n in items:
        seen += n
        if n and seen >= rank:
            return representative(i)
    return representative(items[-1][0])


def summarize(histogram: Mapping[int, int]) -> Percentiles:
    """Count, p50, p95, p99 and max of a histogram (bucket -> count)."""
    count = sum(histogram.values())
    top = max((i for i, n in histogram.items() if n), default=None)
    return {"count": count, "p50": percentile(histogram, 0.5), "p95": percentile(histogram, 0.95),
            "p99": percentile(histogram, 0.99), "max": representative(top) if top is not None else None}


def _split(fields: Mapping[str, int]) -> tuple[dict[str, int], dict[int, int], dict[int, int]]:
    """Raw bucket fields -> (counts, waits, runs): ``w<i>`` waits, ``x<i>`` runs of completed jobs
    (their sum is the completed count), ``y<i>`` runs of attempts that failed or were retried,
    ``f`` failed, ``r`` retried."""
    counts = {"completed": 0, "failed": 0, "retried": 0}
    waits: dict[int, int] = {}
    runs: dict[int, int] = {}
    for name, n in fields.items():
        kind, index = name[:1], name[1:]
        if name in _FIELDS:
            counts[_FIELDS[name]] += int(n)
        elif index.isdigit() and kind in ("w", "x", "y"):
            into = waits if kind == "w" else runs
            into[int(index)] = into.get(int(index), 0) + int(n)
            if kind == "x":
                counts["completed"] += int(n)
    return counts, waits, runs


def _merge(into: dict[int, int], more: Mapping[int, int]) -> None:
    for i, n in more.items():
        into[i] = into.get(i, 0) + n


def _totals(counts: Mapping[str, int], waits: Mapping[int, int], runs: Mapping[int, int]) -> MetricsTotals:
    return {"completed": counts["completed"], "failed": counts["failed"], "retried": counts["retried"],
            "wait": summarize(waits), "run": summarize(runs)}


TIME_LIMIT = 100_000_000_000
"""The latest epoch second a window may name (as metrics.lua)."""


def _time(value: Any, arg: str) -> str:
    """A window bound for Lua: '' (its default) or the number (epoch seconds >= 0) as text."""
    if value is None:
        return ""
    number = _args.number(value, arg, 0)
    if number > TIME_LIMIT:
        raise InvalidArgument(f"{arg} must be at most {TIME_LIMIT} (epoch seconds), got {value!r}")
    return repr(number)


def _window(since: Any, until: Any) -> tuple[str, str]:
    s, u = _time(since, "since"), _time(until, "until")
    if s and u and float(u) < float(s):
        raise InvalidArgument(f"until must not be before since, got since={since!r} until={until!r}")
    return s, u


def _step(step: Any) -> str:
    if step is None:
        return ""
    _args.integer(step, "step", 60)
    if step % 60:
        raise InvalidArgument(f"step must be a multiple of 60 seconds, got {step!r}")
    return str(step)


def _queue(queue: Any) -> str:
    return "" if queue is None else _args.existing_name(queue, "queue")


def _klass(klass: Any) -> str:
    if klass is None:
        return ""
    if not isinstance(klass, str) or not klass:
        raise InvalidArgument(f"klass must be a non-empty string or None, got {klass!r}")
    return klass


def _series_times() -> SeriesTimes:
    return {"count": [], "p50": [], "p95": [], "p99": [], "max": []}


def _append(times: SeriesTimes, p: Percentiles) -> None:
    times["count"].append(p["count"])
    times["p50"].append(p["p50"])
    times["p95"].append(p["p95"])
    times["p99"].append(p["p99"])
    times["max"].append(p["max"])


class Metrics:
    """``client.metrics``: call it for a series (``client.metrics(queue=..., ...)``); its methods
    give the same data cut other ways."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __call__(self, queue: str | None = None, klass: str | None = None, since: float | None = None,
                 until: float | None = None, step: int | None = None) -> MetricsSeries:
        """Counts and wait/run percentiles per bucket of ``step`` seconds over ``[since, until)``
        (epoch seconds; default the last hour), for one queue (default every queue) and one job
        class (default every class). ``step``: a multiple of 60; None picks 60 up to a 24 h
        window, else 3600. Lists are aligned with ``t`` (bucket starts, multiples of ``step``);
        times are seconds, None where a bucket has no job."""
        args = (_queue(queue), _klass(klass), *_window(since, until), _step(step))
        raw = _args.loads(self.client._call("metrics.series", *args))
        step_s, t0 = int(raw["step"]), int(raw["t0"])
        out: MetricsSeries = {"step": step_s, "t": [], "completed": [], "failed": [], "retried": [],
                              "wait": _series_times(), "run": _series_times(),
                              "totals": _totals({"completed": 0, "failed": 0, "retried": 0}, {}, {})}
        all_counts = {"completed": 0, "failed": 0, "retried": 0}
        all_waits: dict[int, int] = {}
        all_runs: dict[int, int] = {}
        for k, fields in enumerate(raw["b"]):
            counts, waits, runs = _split(fields)
            out["t"].append(t0 + k * step_s)
            for name in ("completed", "failed", "retried"):
                out[name].append(counts[name])  # type: ignore[literal-required]
                all_counts[name] += counts[name]
            _append(out["wait"], summarize(waits))
            _append(out["run"], summarize(runs))
            _merge(all_waits, waits)
            _merge(all_runs, runs)
        out["totals"] = _totals(all_counts, all_waits, all_runs)
        return out

    def _classes(self, queue: str | None, since: float | None, until: float | None) -> dict[str, dict[str, int]]:
        raw: dict[str, dict[str, int]] = _args.loads(
            self.client._call("metrics.classes", _queue(queue), *_window(since, until)))
        return raw

    def by_class(self, queue: str | None = None, since: float | None = None,
                 until: float | None = None) -> dict[str, ClassMetrics]:
        """Every job class seen over ``[since, until)`` (default the last hour) in one queue
        (default every queue): its counts, wait/run percentiles and estimated total run time."""
        out: dict[str, ClassMetrics] = {}
        for klass, fields in self._classes(queue, since, until).items():
            counts, waits, runs = _split(fields)
            totals = _totals(counts, waits, runs)
            run_seconds = sum(representative(i) * n for i, n in runs.items())
            out[klass] = cast(ClassMetrics, {**totals, "run_seconds": run_seconds})
        return out

    def histogram(self, queue: str | None = None, klass: str | None = None, since: float | None = None,
                  until: float | None = None) -> Histograms:
        """Wait and run counts per bucket (``BUCKETS`` entries) over ``[since, until)`` (default
        the last hour), for one queue and class (default all)."""
        wanted = _klass(klass)
        wait = [0] * BUCKETS
        run = [0] * BUCKETS
        for name, fields in self._classes(queue, since, until).items():
            if wanted and name != wanted:
                continue
            _, waits, runs = _split(fields)
            for i, n in waits.items():
                wait[min(max(i, 0), LAST_BUCKET)] += n
            for i, n in runs.items():
                run[min(max(i, 0), LAST_BUCKET)] += n
        return {"wait": wait, "run": run}

    def failures(self, groups: Iterable[str], since: float | None = None, until: float | None = None,
                 step: int | None = None) -> GroupSeries:
        """Failures per bucket of each failure group (at most 500 groups) over ``[since, until)``
        (default the last hour); ``step`` as for a series."""
        names = _args.names(groups, "groups", _args.existing_name)
        if len(names) > 500:
            raise InvalidArgument(f"groups: at most 500 at once, got {len(names)}")
        raw = _args.loads(self.client._call("metrics.groups", *_window(since, until), _step(step), *names))
        step_s, t0 = int(raw["step"]), int(raw["t0"])
        series: dict[str, list[int]] = raw["groups"] if isinstance(raw["groups"], dict) else {}
        points = len(next(iter(series.values()))) if series else 0
        return {"step": step_s, "t": [t0 + k * step_s for k in range(points)], "groups": series}

    def backlog(self, queue: str, limit: int = 1000) -> Backlog:
        """A queue's waiting jobs by class: the classes of the first ``limit`` (at most 10,000)
        in pop order, and how many wait in all."""
        raw = _args.loads(self.client._call("metrics.backlog", _args.existing_name(queue, "queue"),
                                            _args.integer(limit, "limit", 1, 10_000)))
        classes = raw["classes"] if isinstance(raw["classes"], dict) else {}
        return {"total": int(raw["total"]), "scanned": int(raw["scanned"]), "classes": classes}

    def totals(self) -> list[MetricsCounter]:
        """Per (queue, class): everything recorded since the oldest retained hour, never
        decreasing while the namespace is read at least once per ``metrics-hours`` (finished
        hours are folded into a running total in Redis on each call): what Prometheus counters
        need. Wait and run are bucket counts (``BUCKETS`` entries)."""
        raw = _args.loads(self.client._call("metrics.totals"))
        names: dict[str, str] = raw["classes"] if isinstance(raw["classes"], dict) else {}
        rows: list[MetricsCounter] = []
        queues: dict[str, dict[str, int]] = raw["queues"] if isinstance(raw["queues"], dict) else {}
        for queue, fields in sorted(queues.items()):
            per_class: dict[str, dict[str, int]] = {}
            for field, n in fields.items():
                name, _, cid = field.partition(":")
                per_class.setdefault(cid, {})[name] = int(n)
            for cid, values in sorted(per_class.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
                counts, waits, runs = _split(values)
                rows.append({"queue": queue, "klass": names.get(cid, f"#{cid}"),
                             "rank": int(cid) if cid.isdigit() else 0, **counts,  # type: ignore[typeddict-item]
                             "wait": _dense(waits), "run": _dense(runs)})
        return rows


def _dense(hist: Mapping[int, int]) -> list[int]:
    out = [0] * BUCKETS
    for i, n in hist.items():
        out[min(max(i, 0), LAST_BUCKET)] += n
    return out


__all__ = ["BUCKETS", "BUCKET_BASE", "BUCKET_RATIO", "LAST_BUCKET", "Metrics", "bucket_edges", "bucket_of",
           "percentile", "representative", "summarize"]
