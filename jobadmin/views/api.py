"""The JSON API under /jobs/api/ and Prometheus text at /jobs/metrics.

Readable by staff (session) or with ``Authorization: Bearer <QUEUEENGINE["METRICS_TOKEN"]>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobadmin import charts, conf, presenters, prometheus
from jobadmin.engine import client_of
from jobadmin.permissions import can_view
from queueengine import InvalidArgument


def _token_ok(request: HttpRequest) -> bool:
    token = conf.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), str(token).encode())


def readable(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff or the bearer token; otherwise 401 (no redirect: machines read this)."""

    @never_cache
    @require_GET
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (can_view(request.user) or _token_ok(request)):
            response = JsonResponse({"error": "staff login or a bearer token is required"}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="jobs"'
            return response
        try:
            return view(request, *args, **kwargs)
        except InvalidArgument as exc:
            return JsonResponse({"error": str(exc)}, status=400)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@readable
def queues(request: HttpRequest) -> HttpResponse:
    """Every queue with counts, oldest waiting job, today's totals and per-minute throughput."""
    return JsonResponse({"queues": client_of(request).views.queues()})


@readable
def queue(request: HttpRequest, name: str) -> HttpResponse:
    """One queue's counts and a page of one of its lists (``?state=waiting&page=2``)."""
    client = client_of(request)
    state = request.GET.get("state", "waiting")
    page = presenters.pager(request.GET)
    batch = client.views.batch()
    all_queues = batch.queues()
    jobs = batch.jobs(state, name, page.offset, page.size, conf.preview_bytes())
    batch.run()
    row = next((q for q in all_queues.value if q["name"] == name), None)
    if row is None:
        return JsonResponse({"error": f"no queue named {name!r}"}, status=404)
    return JsonResponse({"queue": row, "state": state, "jobs": jobs.value})


@readable
def job(request: HttpRequest, jid: str) -> HttpResponse:
    """One job (history included), or a recurring template."""
    view = client_of(request).views.job(jid)
    if view["job"] is None and view["recurring"] is None:
        return JsonResponse({"error": f"job {jid} does not exist"}, status=404)
    return JsonResponse(dict(view))


@readable
def failures(request: HttpRequest) -> HttpResponse:
    """Failure groups (``?page=``), or with ``?group=`` that group's jobs."""
    client = client_of(request)
    page = presenters.pager(request.GET)
    group = request.GET.get("group")
    if group:
        return JsonResponse({"group": group, "jobs": client.views.jobs("failed", group, page.offset, page.size)})
    return JsonResponse(dict(client.views.groups(page.offset, page.size)))


@readable
def workers(request: HttpRequest) -> HttpResponse:
    """Workers with their jobs and status."""
    context = presenters.workers(client_of(request), request.GET)
    return JsonResponse({"total": context["page"]["total"], "workers": context["workers"]})


@readable
def stats(request: HttpRequest, name: str) -> HttpResponse:
    """A queue's wait/run statistics for a day (``?date=YYYY-MM-DD``, default today), with
    p50/p95/p99 in seconds."""
    day = presenters._day_param(request.GET.get("date"))
    raw = client_of(request).views.batch()
    s = raw.stats(name, day.timestamp() if day else None)
    raw.run()
    out: dict[str, Any] = dict(s.value)
    for kind in ("wait", "run"):
        hist = out[kind]["histogram"]
        out[kind] = {**out[kind], **{f"p{int(q * 100)}": charts.percentile(hist, q) for q in (0.5, 0.95, 0.99)}}
    return JsonResponse({"queue": name, "stats": out})


def _labels(**pairs: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(str(v))}"' for k, v in pairs.items()) + "}"


QueueState = Literal["waiting", "running", "stalled", "scheduled", "depends", "throttled", "recurring"]
STATES: tuple[QueueState, ...] = ("waiting", "running", "stalled", "scheduled", "depends", "throttled", "recurring")
HISTOGRAMS: tuple[tuple[Literal["wait", "run"], str], ...] = (
    ("wait", "Seconds from put to pop, today (UTC)."), ("run", "Seconds from pop to completion, today (UTC)."))


@readable
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: jobs per queue and state, paused queues, today's wait/run histograms,
    failure groups, workers and their health; run/wait histograms and counters per queue and
    job class (``jobadmin.prometheus``)."""
    client = client_of(request)
    batch = client.views.batch()
    qs = batch.queues(minutes=5)
    groups = batch.groups(count=500)
    wk = batch.workers(count=500, jobs_each=0)
    config = batch.config()
    batch.run()
    stat_batch = client.views.batch()
    per_queue = [(q["name"], stat_batch.stats(q["name"])) for q in qs.value if q["name"]]  # '' (raw data) has no stats
    stat_batch.run()
    now = client.now()
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("queueengine_jobs", "gauge", "Jobs per queue and state.")
    for q in qs.value:
        for state in STATES:
            lines.append(f"queueengine_jobs{_labels(queue=q['name'], state=state)} {q[state]}")
    family("queueengine_queue_paused", "gauge", "1 when the queue is paused.")
    for q in qs.value:
        lines.append(f"queueengine_queue_paused{_labels(queue=q['name'])} {int(q['paused'])}")
    family("queueengine_oldest_waiting_seconds", "gauge", "Age of the longest-waiting job.")
    for q in qs.value:
        oldest = q.get("oldest")
        age = (now - oldest) if oldest else 0
        lines.append(f"queueengine_oldest_waiting_seconds{_labels(queue=q['name'])} {age:.3f}")
    family("queueengine_finished_last_5m", "gauge", "Jobs finished in the last five minutes.")
    for q in qs.value:
        lines.append(f"queueengine_finished_last_5m{_labels(queue=q['name'])} {sum(q['done'])}")
    for kind, help_text in HISTOGRAMS:
        name = f"queueengine_{kind}_seconds"
        family(name, "histogram", help_text)
        for qname, deferred in per_queue:
            s = deferred.value[kind]
            cumulative = 0
            for upper, n in zip(charts.BUCKET_UPPER, s["histogram"], strict=False):
                cumulative += n
                lines.append(f"{name}_bucket{_labels(queue=qname, le=f'{upper:g}')} {cumulative}")
            lines.append(f"{name}_bucket{_labels(queue=qname, le='+Inf')} {s['count']}")
            lines.append(f"{name}_sum{_labels(queue=qname)} {s['mean'] * s['count']:.6f}")
            lines.append(f"{name}_count{_labels(queue=qname)} {s['count']}")
    family("queueengine_failed_jobs", "gauge", "Failed jobs per failure group.")
    for g in groups.value["groups"]:
        lines.append(f"queueengine_failed_jobs{_labels(group=g['group'])} {g['count']}")
    lease = presenters.heartbeat_seconds(config.value)
    statuses = [presenters.worker_status(w, now, lease) for w in wk.value["workers"]]
    family("queueengine_workers", "gauge", "Registered workers by status.")
    for status in ("healthy", "late", "stalled", "gone"):
        lines.append(f"queueengine_workers{_labels(status=status)} {statuses.count(status)}")
    family("queueengine_workers_alive", "gauge", "Workers seen recently (healthy or late).")
    lines.append(f"queueengine_workers_alive {sum(1 for s in statuses if s in ('healthy', 'late'))}")
    lines.extend(prometheus.families(client, qs.value, now, _labels))   # metrics as time series (issue 15)
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8")
