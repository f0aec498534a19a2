"""Server-rendered SVG charts of the engine's metrics (issue 15), and the small context builders
the queue and failures pages use for them.

Drawings: a line chart of wait or run percentiles over time (log scale, millisecond labels), bars
of throughput over time, a histogram of the metrics' log buckets, sparklines. Every chart has a
title, labelled axes with units, and a ``<title>`` on each point or bar, which the browser shows
on hover. Colours come from CSS classes (light and dark themes); no inline style anywhere (the
dashboard's CSP). Every number is formatted here and every label escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from jobadmin.templatetags.jobadmin import human_duration
from queueengine import Client
from queueengine.operator import metrics as mt

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 10, 18, 30
SERIES = (("p50", "series-p50"), ("p95", "series-p95"), ("p99", "series-p99"))
"""Percentile series of a times chart and their CSS classes."""
LOG_TICKS: tuple[tuple[float, str], ...] = (
    (0.0001, "0.1 ms"), (0.001, "1 ms"), (0.01, "10 ms"), (0.1, "100 ms"), (1.0, "1 s"), (10.0, "10 s"),
    (60.0, "1 min"), (600.0, "10 min"), (3600.0, "1 h"), (21600.0, "6 h"), (86400.0, "1 d"), (604800.0, "7 d"))
"""Axis ticks of durations: (seconds, label)."""


def ms(seconds: float | None) -> str:
    """A duration with millisecond precision: ``0.42 ms``, ``4.2 ms``, ``53 ms``, ``2.5 s``, ``25 s``,
    ``3 m 20 s``; ``–`` for None."""
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 0.001:
        return f"{s * 1000:.2f} ms"
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    return human_duration(s)


def jobs(n: int) -> str:
    """``1 job``, ``12 jobs``."""
    return f"{n:,} job" + ("" if n == 1 else "s")


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def time_label(t: float, step: int) -> str:
    """A bucket start as the axis shows it (UTC): ``14:05`` within a day, ``03-12 14h`` beyond."""
    when = dt.datetime.fromtimestamp(t, tz=dt.UTC)
    return when.strftime("%H:%M") if step < 3600 else when.strftime("%m-%d %Hh")


def _open(title: str, kind: str) -> list[str]:
    return [f'<svg class="chart metrics-chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]


def _x_axis(parts: list[str], t: Sequence[int], step: int, x_of: Any) -> None:
    plot_bottom = HEIGHT - BOTTOM
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}"/>')
    if not t:
        return
    every = max(1, math.ceil(len(t) / 6))
    for k in range(0, len(t), every):
        x = x_of(k)
        parts.append(f'<line class="tick" x1="{_f(x)}" y1="{plot_bottom}" x2="{_f(x)}" y2="{plot_bottom + 4}"/>')
        parts.append(f'<text class="tick-label" x="{_f(x)}" y="{plot_bottom + 15}">{time_label(t[k], step)}</text>')
    parts.append(f'<text class="axis-label" x="{WIDTH - RIGHT}" y="{HEIGHT - 2}">time (UTC), '
                 f'{escape(step_words(step))} per point</text>')


def _axes(parts: list[str], t: Sequence[int], step: int, x_of: Any, y_label: str) -> None:
    """The time axis below the plot and the value axis on its left, with the value's unit."""
    _x_axis(parts, t, step, x_of)
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>')
    parts.append(f'<text class="axis-label axis-label-y" x="{LEFT + 4}" y="10">{escape(y_label)}</text>')


def _closed_empty(parts: list[str], text: str) -> SafeString:
    """The chart with nothing to draw: its axes and a line saying so."""
    parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}">{escape(text)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


def step_words(step: int) -> str:
    """``1 minute``, ``10 minutes``, ``1 hour``, ``12 hours``."""
    if step % 3600 == 0:
        n = step // 3600
        return f"{n} hour" + ("s" if n != 1 else "")
    n = step // 60
    return f"{n} minute" + ("s" if n != 1 else "")


def times_svg(series: dict[str, Any], kind: str, title: str) -> SafeString:
    """p50/p95/p99 of ``series[kind]`` (``wait`` or ``run``) over ``series["t"]`` on a log scale."""
    t, step = series["t"], series["step"]
    times = series[kind]
    values = [v for name, _ in SERIES for v in times[name] if v]
    parts = _open(title, "times-chart")
    plot_top, plot_bottom = TOP, HEIGHT - BOTTOM
    n = len(t)

    def x_of(k: int) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * ((k + 0.5) / max(n, 1))

    _axes(parts, t, step, x_of, "seconds, log scale")
    if not values:
        return _closed_empty(parts, "no jobs in this window")
    low, high = _log_range(values)

    def y_of(v: float) -> float:
        return plot_bottom - (plot_bottom - plot_top) * (math.log10(max(v, 1e-5)) - low) / (high - low)

    for tick, text in LOG_TICKS:
        if low <= math.log10(tick) <= high:
            y = y_of(tick)
            parts.append(f'<line class="grid" x1="{LEFT}" y1="{_f(y)}" x2="{WIDTH - RIGHT}" y2="{_f(y)}"/>')
            parts.append(f'<text class="tick-label tick-label-y" x="{LEFT - 4}" y="{_f(y + 3)}">{text}</text>')
    for name, css in SERIES:   # p99 last and dashed: where p95 equals it both stay visible
        points = times[name]
        for segment in _segments([None if v is None else (x_of(k), y_of(v)) for k, v in enumerate(points)]):
            parts.append(f'<polyline class="line {css}" points="{segment}"/>')
        for k, v in enumerate(points):
            if v is not None:
                label = f"{name} {kind} at {time_label(t[k], step)}: {ms(v)} ({jobs(times['count'][k])})"
                parts.append(f'<circle class="point {css}" cx="{_f(x_of(k))}" cy="{_f(y_of(v))}" r="2.6">'
                             f"<title>{escape(label)}</title></circle>")
    _legend(parts, [(name, css) for name, css in SERIES])
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


def _log_range(values: Sequence[float]) -> tuple[float, float]:
    """log10 bounds of a times chart: the values with a margin, at least one decade tall."""
    low = math.log10(max(min(values), 1e-5)) - 0.15
    high = math.log10(max(values)) + 0.15
    if high - low < 1:
        mid = (high + low) / 2
        low, high = mid - 0.5, mid + 0.5
    return low, high


def _segments(points: Sequence[tuple[float, float] | None]) -> list[str]:
    """Polyline point lists of the runs of consecutive points (None breaks a line)."""
    out: list[str] = []
    run: list[str] = []
    for p in [*points, None]:
        if p is None:
            if len(run) > 1:
                out.append(" ".join(run))
            run = []
        else:
            run.append(f"{_f(p[0])},{_f(p[1])}")
    return out


def _legend(parts: list[str], items: list[tuple[str, str]]) -> None:
    widths = [22 + 6 * len(name) for name, _ in items]
    x = WIDTH - RIGHT - sum(widths)
    for (name, css), w in zip(items, widths, strict=True):
        parts.append(f'<rect class="legend {css}" x="{x}" y="2" width="10" height="8"/>')
        parts.append(f'<text class="legend-label" x="{x + 13}" y="10">{escape(name)}</text>')
        x += w


def throughput_svg(series: dict[str, Any], title: str) -> SafeString:
    """Completed and failed jobs per bucket, as stacked bars."""
    t, step = series["t"], series["step"]
    done, failed = series["completed"], series["failed"]
    n = len(t)
    top = max((c + f for c, f in zip(done, failed, strict=True)), default=0)
    parts = _open(title, "throughput-chart")
    plot_top, plot_bottom = TOP, HEIGHT - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1)

    def x_of(k: int) -> float:
        return LEFT + slot * (k + 0.5)

    _axes(parts, t, step, x_of, "jobs per point")
    if not top:
        return _closed_empty(parts, "no jobs finished in this window")
    for value in (top, top / 2):
        y = plot_bottom - (plot_bottom - plot_top) * value / top
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{_f(y)}" x2="{WIDTH - RIGHT}" y2="{_f(y)}"/>')
        parts.append(f'<text class="tick-label tick-label-y" x="{LEFT - 4}" y="{_f(y + 3)}">{_f(value)}</text>')
    width = max(slot * 0.8, 0.8)
    for k in range(n):
        c, f = done[k], failed[k]
        if not c and not f:
            continue
        x = x_of(k) - width / 2
        hc = (plot_bottom - plot_top) * c / top
        hf = (plot_bottom - plot_top) * f / top
        label = escape(f"{time_label(t[k], step)}: {c:,} completed, {f:,} failed")
        parts.append(f'<g class="bar-group"><title>{label}</title>')
        if c:
            parts.append(f'<rect class="bar bar-ok" x="{_f(x)}" y="{_f(plot_bottom - hc)}" width="{_f(width)}" '
                         f'height="{_f(max(hc, 0.8))}"/>')
        if f:
            parts.append(f'<rect class="bar bar-bad" x="{_f(x)}" y="{_f(plot_bottom - hc - hf)}" width="{_f(width)}" '
                         f'height="{_f(max(hf, 0.8))}"/>')
        parts.append("</g>")
    _legend(parts, [("completed", "bar-ok"), ("failed", "bar-bad")])
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


def histogram_svg(histogram: Sequence[int], title: str) -> SafeString:
    """The metrics' log buckets as bars (from 1 ms, or the first used bucket, to the last used
    one), ticks at 1 ms, 10 ms, 100 ms, 1 s, 10 s, 1 m, 10 m, 1 h, 6 h, 1 d; a bar's title gives
    its range and count."""
    used = [i for i, n in enumerate(histogram) if n]
    parts = _open(title, "histogram")
    plot_top, plot_bottom = TOP, HEIGHT - BOTTOM
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}"/>')
    parts.append(f'<text class="axis-label" x="{WIDTH - RIGHT}" y="{HEIGHT - 2}">duration (log scale)</text>')
    parts.append(f'<text class="axis-label axis-label-y" x="{LEFT + 4}" y="10">jobs per bucket</text>')
    if not used:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}">no samples</text>')
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
    first = min(used[0], mt.bucket_of(0.001))
    last = max(used[-1], mt.bucket_of(1.0))
    span = last - first + 1
    slot = (WIDTH - LEFT - RIGHT) / span
    top = max(histogram)
    for i in range(first, last + 1):
        n = histogram[i]
        if not n:
            continue
        h = max(1.0, (plot_bottom - plot_top) * n / top)
        low, high = mt.bucket_edges(i)
        rng = f"{ms(low)}–{ms(high)}" if not math.isinf(high) else f"{ms(low)} and longer"
        parts.append(f'<rect class="bar" x="{_f(LEFT + (i - first) * slot)}" y="{_f(plot_bottom - h)}" '
                     f'width="{_f(max(slot - 0.6, 0.6))}" height="{_f(h)}"><title>{escape(rng)}: {jobs(n)}</title></rect>')
    for tick, text in LOG_TICKS:
        i = mt.bucket_of(tick)
        if first <= i <= last:
            x = LEFT + (i - first) * slot
            parts.append(f'<line class="tick" x1="{_f(x)}" y1="{plot_bottom}" x2="{_f(x)}" y2="{plot_bottom + 4}"/>')
            parts.append(f'<text class="tick-label" x="{_f(x)}" y="{plot_bottom + 15}">{text}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only


# ---------------------------------------------------------------------- the queue and failures pages
def stat_cards(client: Client, queue: str, day_start: float, qless: dict[str, Any]) -> dict[str, Any]:
    """The stats tab of a queue for one UTC day: wait and run histograms on the metrics' buckets
    with percentiles in milliseconds (mean and std from the day's Qless stats)."""
    hist = client.metrics.histogram(queue=queue, since=day_start, until=day_start + 86400)
    out: dict[str, Any] = {}
    for kind, title in (("wait", "Wait time (put to popped)"), ("run", "Run time (popped to done)")):
        counts = hist[kind]  # type: ignore[literal-required]
        summary = mt.summarize(dict(enumerate(counts)))
        q = qless.get(kind) or {}
        out[kind] = {**summary, "title": title, "mean": q.get("mean", 0), "std": q.get("std", 0),
                     "p50_text": ms(summary["p50"]), "p95_text": ms(summary["p95"]),
                     "p99_text": ms(summary["p99"]), "max_text": ms(summary["max"]),
                     "chart": histogram_svg(counts, f"{title}: {jobs(summary['count'])}")}
    return out


def backlog(client: Client, queue: str, row: dict[str, Any] | None) -> dict[str, Any]:
    """Backlog by class (the first 1,000 waiting jobs), the oldest waiting job's age and the time
    to drain the waiting jobs at the last five minutes' rate (None when nothing drains)."""
    data = client.metrics.backlog(queue, limit=1000)
    classes = sorted(data["classes"].items(), key=lambda kv: (-kv[1], kv[0]))
    done = list((row or {}).get("done") or [])[-5:]
    failed = list((row or {}).get("failed_per_minute") or [])[-5:]
    rate = (sum(done) + sum(failed)) / 300.0
    waiting = data["total"]
    eta = waiting / rate if rate > 0 and waiting else (0.0 if not waiting else None)
    return {"total": waiting, "scanned": data["scanned"], "classes": classes[:10],
            "more_classes": max(0, len(classes) - 10), "rate": rate, "eta": eta,
            "oldest_age": (row or {}).get("oldest_age")}


def failure_trends(client: Client, groups: list[dict[str, Any]], now: float, hours: int = 24) -> None:
    """Add to each failure group row ``trend`` (a sparkline of its failures per hour over the last
    ``hours``) and ``recent`` (how many that is)."""
    names = [g["group"] for g in groups if g.get("group")]
    if not names:
        return
    since = now - hours * 3600
    data = client.metrics.failures(names, since=since, until=now, step=3600)
    for g in groups:
        points = data["groups"].get(g["group"], [])
        g["recent"] = sum(points)
        g["trend"] = trend_svg(points, data["t"], data["step"],
                               f"failures of {g['group']} per hour, last {hours} hours: {sum(points):,}")


def trend_svg(points: Sequence[int], t: Sequence[int], step: int, title: str, width: int = 120,
              height: int = 26) -> SafeString:
    """A sparkline of counts over time; each point's title gives its time and count."""
    n = len(points)
    if n < 2:
        return mark_safe("")
    top = max(points) or 1
    dx = width / (n - 1)

    def y_of(v: int) -> float:
        return height - 3 - (height - 6) * v / top

    coords = " ".join(f"{_f(k * dx)},{_f(y_of(v))}" for k, v in enumerate(points))
    parts = [f'<svg class="chart sparkline trend" viewBox="-2 0 {width + 4} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title><polyline points="{coords}"/>']
    for k, v in enumerate(points):
        if v:
            parts.append(f'<circle class="point" cx="{_f(k * dx)}" cy="{_f(y_of(v))}" r="1.8">'
                         f"<title>{escape(time_label(t[k], step))}: {v:,}</title></circle>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
