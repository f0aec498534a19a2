"""Context builders: the one place the dashboard reads the engine.

Each builder makes one pipelined round trip (``client.views.batch()``) and returns the context
of a page and of every fragment on it, so the full page, an htmx refresh and a websocket push
render the same partials from the same data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobadmin import charts, conf, metrics_charts, schedules
from queueengine import Client
from queueengine.operator.views import LIST_KINDS, JobPage, QueueView, WorkerView
from queueengine.types import HistoryEntry

Params = Mapping[str, str]
"""A page's query parameters (``request.GET``)."""

QUEUE_TABS = ("stats", "waiting", "running", "scheduled", "stalled", "depends", "throttled", "recurring")
JOB_DATA_LIMIT = 512 * 1024
"""Job data and results above this size (bytes of JSON) are shown cut, with a notice."""


@dataclass(frozen=True)
class Pager:
    """Page ``number`` (1-based) of ``size`` rows."""

    number: int
    size: int

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * self.size

    def context(self, total: int) -> dict[str, Any]:
        """Links for the pagination partial."""
        pages = max(1, -(-total // self.size))
        return {"number": self.number, "pages": pages, "total": total, "size": self.size,
                "has_prev": self.number > 1, "has_next": self.number < pages,
                "prev": self.number - 1, "next": self.number + 1,
                "first_row": self.offset + 1 if total else 0,
                "last_row": min(total, self.offset + self.size)}


def pager(params: Params) -> Pager:
    """The page asked for by ``?page=`` (bad values give page 1)."""
    try:
        number = max(1, int(params.get("page", 1)))
    except (TypeError, ValueError):
        number = 1
    return Pager(number=min(number, 1_000_000), size=conf.page_size())


# ---------------------------------------------------------------------- derived values
def heartbeat_seconds(config: dict[str, Any]) -> float:
    """The lease length in seconds (config ``heartbeat``)."""
    try:
        return float(config.get("heartbeat", 60))
    except (TypeError, ValueError):
        return 60.0


def worker_status(worker: WorkerView, now: float, lease: float) -> str:
    """healthy / late / stalled / gone, from the last-seen age, the worker's own beat interval
    (info ``beat_interval``, default 10 s) and the lease length."""
    age = now - float(worker.get("last_seen") or 0)
    beat = float((worker.get("info") or {}).get("beat_interval") or 10)
    if worker.get("stalled"):
        return "stalled"
    if age <= 3 * beat:
        return "healthy"
    if age <= max(lease, 3 * beat) * 2:
        return "late"
    return "gone"


def decorate_queue(q: QueueView, now: float) -> dict[str, Any]:
    """A queue row with throughput rates, the oldest waiting age and a sparkline."""
    done = list(q.get("done") or [])
    failed = list(q.get("failed_per_minute") or [])
    oldest = q.get("oldest")
    return {
        **q,
        "oldest_age": (now - float(oldest)) if oldest else None,
        "done_1m": done[-1] if done else 0,
        "done_5m": sum(done[-5:]),
        "done_60m": sum(done),
        "failed_60m": sum(failed),
        "per_second": round(sum(done[-5:]) / 300, 2) if done else 0,
        "spark": charts.sparkline_svg(done, f"jobs finished per minute in {q['name']}, last hour"),
        "total": q["waiting"] + q["running"] + q["stalled"] + q["scheduled"] + q["depends"] + q["throttled"],
    }


def totals(queues: list[dict[str, Any]]) -> dict[str, int]:
    """Sum of every count over the queues."""
    keys = ("waiting", "running", "stalled", "scheduled", "depends", "throttled", "recurring", "done_1m",
            "done_60m", "failed_60m")
    return {k: sum(int(q.get(k) or 0) for q in queues) for k in keys}


def summarize_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """Wait and run summaries with p50/p95/p99 read off the histograms, and their SVG charts."""
    out: dict[str, Any] = {"failed": stats.get("failed", 0), "failures": stats.get("failures", 0),
                           "retries": stats.get("retries", 0)}
    for kind, title in (("wait", "Wait time (put to popped)"), ("run", "Run time (popped to done)")):
        s = stats.get(kind) or {"count": 0, "mean": 0, "std": 0, "histogram": []}
        hist = list(s.get("histogram") or [])
        out[kind] = {
            "count": s.get("count", 0), "mean": s.get("mean", 0), "std": s.get("std", 0),
            "p50": charts.percentile(hist, 0.5), "p95": charts.percentile(hist, 0.95),
            "p99": charts.percentile(hist, 0.99),
            "chart": charts.histogram_svg(hist, f"{title}: {s.get('count', 0)} jobs"),
            "title": title,
        }
    return out


def timeline(history: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    """History entries with the time since the previous step, and for pops and finishes the
    wait ("waited 2 s") and run ("ran 350 ms") they end."""
    out: list[dict[str, Any]] = []
    enqueued: float | None = None
    popped: float | None = None
    prev: float | None = None
    for entry in history:
        when = float(entry.get("when") or 0)
        what = str(entry.get("what") or "?")
        row: dict[str, Any] = {"entry": entry, "what": what, "when": when,
                               "since_prev": when - prev if prev is not None else None,
                               "waited": None, "ran": None,
                               "extra": {k: v for k, v in entry.items() if k not in ("when", "what")}}
        if what == "popped":
            if enqueued is not None:
                row["waited"] = when - enqueued
            popped = when
        elif what in ("done", "failed", "retried", "timed-out", "released"):
            if popped is not None:
                row["ran"] = when - popped
            popped = None
        if what in ("put", "retried", "released", "timed-out", "scheduled"):
            enqueued = when
        out.append(row)
        prev = when
    return out


def shown_json(value: Any) -> dict[str, Any]:
    """A JSON value for the job page: pretty text, cut above JOB_DATA_LIMIT with a notice."""
    from jobadmin.templatetags.jobadmin import pretty_json

    return stored_text(pretty_json(value), empty=value is None)


def stored_text(text: str, empty: bool = False) -> dict[str, Any]:
    """Text for the job page's data or result box, cut above JOB_DATA_LIMIT with a notice (also
    data as stored when it is not JSON that can be read back)."""
    cut = len(text) > JOB_DATA_LIMIT
    return {"text": text[:JOB_DATA_LIMIT] if cut else text, "cut": cut, "size": len(text), "empty": empty}


# ---------------------------------------------------------------------- pages
def overview(client: Client) -> dict[str, Any]:
    """Queues with counts, throughput and oldest age; failure groups; workers; tracked jobs."""
    batch = client.views.batch()
    queues = batch.queues()
    groups = batch.groups(count=10)
    workers = batch.workers(count=10, jobs_each=3)
    tracked = batch.tracked_states()
    config = batch.config()
    batch.run()
    now = client.now()
    lease = heartbeat_seconds(config.value)
    rows = [decorate_queue(q, now) for q in queues.value]
    wpage = workers.value
    wrows = [{**w, "status": worker_status(w, now, lease)} for w in wpage["workers"]]
    idle_with_work = [q["name"] for q in rows if q["waiting"] and not q["paused"]] if not wpage["total"] else []
    return {
        "now": now, "queues": rows, "totals": totals(rows),
        "groups": groups.value["groups"], "groups_total": groups.value["total"],
        "failed_total": sum(g["count"] for g in groups.value["groups"]),
        "workers": wrows, "workers_total": wpage["total"],
        "workers_healthy": sum(1 for w in wrows if w["status"] == "healthy"),
        "tracked": tracked.value, "no_workers_for": idle_with_work,
    }


def queue_page(client: Client, name: str, tab: str, params: Params) -> dict[str, Any]:
    """One queue: its counts and one tab (stats with charts, or a paginated job list)."""
    if tab not in QUEUE_TABS:
        tab = "stats"
    page = pager(params)
    batch = client.views.batch()
    queues = batch.queues()
    config = batch.config()
    day = _day_param(params.get("date"))
    listing = stats = None
    if tab == "stats":
        stats = batch.stats(name, day.timestamp() if day else None)
    else:
        listing = batch.jobs(tab, name, page.offset, page.size, conf.preview_bytes())
    batch.run()
    now = client.now()
    row = next((q for q in queues.value if q["name"] == name), None)
    context: dict[str, Any] = {
        "now": now, "name": name, "tab": tab, "tabs": QUEUE_TABS, "known": row is not None,
        "queue": decorate_queue(row, now) if row else None,
        "config": {k: v for k, v in config.value.items() if k.startswith(name + "-")},
        "date": (day or dt.datetime.fromtimestamp(now, tz=dt.UTC)).strftime("%Y-%m-%d"),
    }
    if stats is not None:
        context["stats"] = summarize_stats(dict(stats.value))
        # the wait/run histograms and percentiles come from the engine's metrics (log buckets, ms)
        day_start = (day.timestamp() if day else now) // 86400 * 86400
        context["stats"].update(metrics_charts.stat_cards(client, name, day_start, dict(stats.value)))
    context["backlog"] = metrics_charts.backlog(client, name, context["queue"])
    if listing is not None:
        context.update(job_list(listing.value, page, now, kind=tab))
    return context


def _day_param(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=dt.UTC, hour=12)
    except ValueError:
        return None


def job_list(page_data: JobPage, page: Pager, now: float, kind: str) -> dict[str, Any]:
    """Context of the ``job_table`` partial."""
    jobs: list[Mapping[str, object]] = list(page_data["jobs"])
    if kind == "recurring":
        jobs = [{**j, "schedule": schedules.describe(j.get("interval"), j.get("cron"))} for j in page_data["jobs"]]
    return {"jobs": jobs, "kind": kind, "page": page.context(page_data["total"]),
            "filtered": page_data.get("filtered", False), "scanned": page_data.get("scanned", 0),
            "next_offset": page_data.get("next"), "now": now}


def job_page(client: Client, jid: str) -> dict[str, Any]:
    """One job's story: state, timeline, data, result, failure, dependencies both ways."""
    batch = client.views.batch()
    view = batch.job(jid)
    queues = batch.queues(minutes=1)
    batch.run()
    v = view.value
    now = client.now()
    context: dict[str, Any] = {"now": now, "jid": jid, "job": v["job"], "recurring": v["recurring"],
                               "dependencies": v["dependencies"], "dependents": v["dependents"],
                               "queue_names": [q["name"] for q in queues.value]}
    job = v["job"]
    if job is not None:
        context["timeline"] = timeline(job.get("history") or [])
        unreadable = job.get("data_unreadable")
        context["data"] = shown_json(job.get("data")) if unreadable is None else stored_text(str(unreadable))
        context["data_problem"] = unreadable is not None
        context["result"] = shown_json(job.get("result"))
        failure = job.get("failure") or None
        context["failure"] = failure
        context["exhausted"] = job.get("exhausted") or None
    elif v["recurring"] is not None:
        r = v["recurring"]
        context["schedule"] = schedules.describe(r.get("interval"), r.get("cron"))
        context["next_runs"] = schedules.next_runs(r.get("interval"), r.get("cron"), r.get("next"), 5)
    return context


def failures(client: Client, params: Params) -> dict[str, Any]:
    """Failure groups, largest first."""
    page = pager(params)
    batch = client.views.batch()
    groups = batch.groups(page.offset, page.size)
    queues = batch.queues(minutes=1)
    batch.run()
    g = groups.value
    now = client.now()
    rows = [dict(row) for row in g["groups"]]
    metrics_charts.failure_trends(client, rows, now)   # each group's failures per hour, last 24 h
    return {"now": now, "groups": rows, "page": page.context(g["total"]),
            "queue_names": [q["name"] for q in queues.value]}


def listing(client: Client, kind: str, name: str, params: Params, filters: dict[str, str] | None = None,
            extra_queues: bool = False) -> dict[str, Any]:
    """A paginated job list of any kind (see ``queueengine.operator.views.LIST_KINDS``)."""
    if kind not in LIST_KINDS:
        raise ValueError(f"unknown list {kind!r}")
    page = pager(params)
    offset = page.offset
    if filters:
        try:
            offset = max(0, int(params.get("offset", 0)))
        except (TypeError, ValueError):
            offset = 0
    batch = client.views.batch()
    jobs = batch.jobs(kind, name, offset, page.size, conf.preview_bytes(), filters=filters or None)
    queues = batch.queues(minutes=1) if extra_queues else None
    batch.run()
    context = job_list(jobs.value, page, client.now(), kind)
    context["offset"] = offset
    if queues is not None:
        context["queue_names"] = [q["name"] for q in queues.value]
    return context


def workers(client: Client, params: Params) -> dict[str, Any]:
    """Every worker with its current jobs, last-seen age and status."""
    page = pager(params)
    batch = client.views.batch()
    wpage = batch.workers(page.offset, page.size, jobs_each=10)
    config = batch.config()
    batch.run()
    now = client.now()
    lease = heartbeat_seconds(config.value)
    rows = [{**w, "status": worker_status(w, now, lease)} for w in wpage.value["workers"]]
    return {"now": now, "workers": rows, "page": page.context(wpage.value["total"]), "lease": lease}


def recurring(client: Client, params: Params) -> dict[str, Any]:
    """Every recurring template with its schedule in words and next runs."""
    page = pager(params)
    data = client.views.recurring(page.offset, page.size)
    now = client.now()
    rows = []
    for r in data["jobs"]:
        rows.append({**r, "schedule": schedules.describe(r.get("interval"), r.get("cron")),
                     "next_runs": schedules.next_runs(r.get("interval"), r.get("cron"), r.get("next"), 3)})
    return {"now": now, "jobs": rows, "page": page.context(data["total"])}


def tags(client: Client, params: Params) -> dict[str, Any]:
    """Tags in use (most used first) and, with ``?tag=``, the jobs carrying one."""
    tag = (params.get("tag") or "").strip()
    context: dict[str, Any] = {"tag": tag, "top": client.views.tags(0, 100), "now": client.now()}
    if tag:
        context.update(listing(client, "tagged", tag, params))
    return context


def config_page(client: Client, error: tuple[str, str] | None = None, submitted: str | None = None,
                notice: str = "") -> dict[str, Any]:
    """Every option with its value, whether it is stored, and what it is (meaning, type,
    range, default; None for a free-form option). ``error`` = (option, message) of a refused
    change, shown inline at that option with the ``submitted`` value kept in the input."""
    entries = client.config.options()   # one round trip
    failed, message = error if error is not None else ("", "")
    rows = [{
        "name": e.name, "value": submitted if e.name == failed and submitted is not None else e.value,
        "stored": e.stored, "option": e.option, "error": message if e.name == failed else "",
    } for e in entries]
    new_error = message if error is not None and failed not in {e.name for e in entries} else ""
    return {"options": rows, "per_queue": client.config.per_queue_options(), "now": client.now(),
            "new_error": new_error, "new_option": failed if new_error else "",
            "new_value": (submitted or "") if new_error else "", "notice": notice}
