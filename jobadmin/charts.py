"""Server-rendered SVG charts: wait/run histograms (Qless's 148 buckets) and sparklines.

Every number that reaches the SVG is formatted by us and every label is escaped, so a chart
can be swapped in over the websocket like any other fragment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BUCKET_UPPER: list[float] = (
    [float(s + 1) for s in range(60)]
    + [float((m + 1) * 60) for m in range(1, 60)]
    + [float((h + 1) * 3600) for h in range(1, 24)]
    + [float((d + 1) * 86400) for d in range(1, 7)]
)
"""Upper bound (seconds) of each of the 148 buckets: 0-1 s ... 59-60 s, 1-2 m ... 59-60 m,
1-2 h ... 23-24 h, 1-2 d ... 6-7 d."""

BUCKET_LOWER: list[float] = [0.0] + BUCKET_UPPER[:-1]


def bucket_label(i: int) -> str:
    """A bucket's range in words, e.g. ``3-4 s``, ``2-3 m``."""
    if i < 60:
        return f"{i}-{i + 1} s"
    if i < 119:
        m = i - 59
        return f"{m}-{m + 1} m"
    if i < 142:
        h = i - 118
        return f"{h}-{h + 1} h"
    d = i - 141
    return f"{d}-{d + 1} d"


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """An upper bound of the ``q`` quantile (0..1): the upper edge of the bucket it falls in.

    The buckets are a second wide at best, so anything finer would be made up; the page shows
    the value as "at most" (a p50 of 1.0 reads "under 1 s")."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if n and seen >= rank:
            return BUCKET_UPPER[i]
    return BUCKET_UPPER[len(histogram) - 1]


@dataclass(frozen=True)
class Bar:
    """One drawn bar."""

    x: float
    height: float
    count: int
    label: str


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def histogram_svg(histogram: Sequence[int], title: str, width: int = 600, height: int = 140) -> SafeString:
    """A bar chart of the 148 buckets on a log-like axis (seconds, minutes, hours, days),
    with a tooltip per bar and tick labels at 1 s, 10 s, 1 m, 10 m, 1 h, 6 h, 1 d."""
    n = len(histogram)
    top = max(histogram) if histogram else 0
    plot_h = height - 22
    bar_w = width / max(n, 1)
    parts = [
        f'<svg class="chart histogram" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="none" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="0" y1="{plot_h}" x2="{width}" y2="{plot_h}"/>',
    ]
    for i, count in enumerate(histogram):
        if not count:
            continue
        h = max(1.0, plot_h * count / top) if top else 0
        x = i * bar_w
        parts.append(
            f'<rect class="bar" x="{_fmt(x)}" y="{_fmt(plot_h - h)}" width="{_fmt(max(bar_w - 0.5, 0.5))}" '
            f'height="{_fmt(h)}"><title>{escape(bucket_label(i))}: {count:,}</title></rect>'
        )
    for idx, label in ((1, "1s"), (10, "10s"), (60, "1m"), (69, "10m"), (119, "1h"), (124, "6h"), (142, "1d")):
        if idx < n:
            x = idx * bar_w
            parts.append(f'<line class="tick" x1="{_fmt(x)}" y1="{plot_h}" x2="{_fmt(x)}" y2="{plot_h + 4}"/>')
            parts.append(f'<text class="tick-label" x="{_fmt(x)}" y="{height - 4}">{label}</text>')
    if not top:
        parts.append(f'<text class="empty" x="{width / 2}" y="{plot_h / 2}">no samples</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is a number or escaped


def sparkline_svg(points: Sequence[int], title: str, width: int = 120, height: int = 24) -> SafeString:
    """A small line of per-minute counts (oldest first)."""
    n = len(points)
    top = max(points) if points else 0
    if n < 2:
        return mark_safe("")
    step = width / (n - 1)
    coords = " ".join(
        f"{_fmt(i * step)},{_fmt(height - 2 - ((height - 4) * p / top if top else 0))}" for i, p in enumerate(points)
    )
    return mark_safe(  # noqa: S308 - numbers and an escaped title only
        f'<svg class="chart sparkline" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><polyline points=\"{coords}\"/></svg>"
    )
