"""The Charts page (``<mount>/charts/``): throughput and wait/run percentiles over time, per queue
and job class, from the engine's metrics (``client.metrics``); updated live.

The window (1 h, 8 h, 24 h, 7 d, 30 d), the queue and the class are in the URL
(``?window=24h&queue=emails&klass=app.Send``), so a view can be bookmarked and shared.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from jobadmin import metrics_charts as mc
from jobadmin.engine import client_of
from jobadmin.views.pages import _render, page
from queueengine import Client, InvalidArgument

WINDOWS: dict[str, tuple[int, int, str]] = {
    "1h": (3600, 60, "1 hour"),
    "8h": (8 * 3600, 600, "8 hours"),
    "24h": (86400, 3600, "24 hours"),
    "7d": (7 * 86400, 3 * 3600, "7 days"),
    "30d": (30 * 86400, 12 * 3600, "30 days"),
}
"""Window -> (seconds, step, words). Steps of whole hours read the hourly roll-up (cheap)."""
DEFAULT_WINDOW = "1h"
CLASS_ROWS = 50
"""Most classes the per-class table lists (the busiest by run time)."""


def _filters(params: Any) -> tuple[str, str, str]:
    window = params.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    return window, (params.get("queue") or "").strip(), (params.get("klass") or "").strip()


def class_rows(by_class: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-class table: count, failure rate, run p50/p95/p99 and share of the run time."""
    total_run = sum(c["run_seconds"] for c in by_class.values()) or 0.0
    rows = []
    for klass, c in by_class.items():
        finished = c["completed"] + c["failed"]
        rows.append({"klass": klass, "completed": c["completed"], "failed": c["failed"], "retried": c["retried"],
                     "failure_rate": (c["failed"] / finished) if finished else None,
                     "p50": mc.ms(c["run"]["p50"]), "p95": mc.ms(c["run"]["p95"]), "p99": mc.ms(c["run"]["p99"]),
                     "wait_p95": mc.ms(c["wait"]["p95"]), "run_seconds": c["run_seconds"],
                     "share": (c["run_seconds"] / total_run) if total_run else None})
        rows[-1]["failure_rate_text"] = _percent(rows[-1]["failure_rate"])
        rows[-1]["share_text"] = _percent(rows[-1]["share"])
    rows.sort(key=lambda r: (-r["run_seconds"], -(r["completed"] + r["failed"]), r["klass"]))
    return rows[:CLASS_ROWS]


def _percent(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 100:.1f}%" if x < 0.995 else f"{x * 100:.0f}%"


def charts_context(client: Client, params: Any) -> dict[str, Any]:
    """Everything the Charts page shows for its window and filters."""
    window, queue, klass = _filters(params)
    span, step, words = WINDOWS[window]
    now = client.now()
    since = now - span
    context: dict[str, Any] = {"now": now, "window": window, "window_words": words, "queue": queue, "klass": klass,
                               "step_words": mc.step_words(step), "error": ""}
    context["windows"] = [{"key": key, "words": w, "current": key == window,
                           "url": "?" + urlencode({k: v for k, v in
                                                   (("window", key), ("queue", queue), ("klass", klass)) if v})}
                          for key, (_, _, w) in WINDOWS.items()]
    context["queue_names"] = sorted(c["name"] for c in client.queues.counts)
    try:
        series = client.metrics(queue=queue or None, klass=klass or None, since=since, until=now, step=step)
        by_class = client.metrics.by_class(queue=queue or None, since=since, until=now)
    except InvalidArgument as exc:
        context["error"] = str(exc)
        return context
    context["class_names"] = sorted(set(by_class) | ({klass} if klass else set()))
    totals = series["totals"]
    scope = " · ".join(x for x in (f"queue {queue}" if queue else "every queue",
                                   f"class {klass}" if klass else "every class") if x)
    context.update({
        "series": series, "totals": totals, "scope": scope,
        "per_minute": (totals["completed"] + totals["failed"]) / (span / 60),
        "wait": {k: mc.ms(totals["wait"][k]) for k in ("p50", "p95", "p99", "max")},
        "run": {k: mc.ms(totals["run"][k]) for k in ("p50", "p95", "p99", "max")},
        "throughput_chart": mc.throughput_svg(dict(series), f"Jobs finished per {mc.step_words(step)}, "
                                                            f"last {words} ({scope})"),
        "wait_chart": mc.times_svg(dict(series), "wait", f"Wait time p50/p95/p99, last {words} ({scope})"),
        "run_chart": mc.times_svg(dict(series), "run", f"Run time p50/p95/p99, last {words} ({scope})"),
        "classes": class_rows(dict(by_class)),
    })
    return context


@page()
def charts(request: HttpRequest) -> HttpResponse:
    """Throughput and wait/run percentiles over a window, per queue and class; updated live."""
    context = charts_context(client_of(request), request.GET)
    return _render(request, "jobadmin/charts.html", context, ("charts_body",))
