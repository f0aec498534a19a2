"""The jobs explorer (``/jobs/search/``): one query bar (``jobadmin.explorer``), results from
``client.jobs.find`` streamed in page by page with a progress line, and the bar's suggestions.

A page shows up to ``PAGE_SIZE`` jobs. The first request runs one ``find()`` (a quarter of a
second of Redis work at most); when the scan is not done and the page not full, the page asks
for the rest itself (htmx, ``more=1``: rows appended, the progress line swapped out of band)
until it is full or the scan ends. The next page is a link carrying the cursor, so a query and
its position are a shareable URL. Without JavaScript the "more" row is a plain link.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from jobadmin import bulk, conf
from jobadmin.engine import client_of
from jobadmin.explorer import QUALIFIERS, STATES, USAGE, Query, QueryError, parse, quote
from jobadmin.permissions import allowed_actions
from jobadmin.views import matching
from jobadmin.views.pages import _render, page
from queueengine import Client, InvalidArgument, Job

LEGACY = ("queue", "state", "tag", "klass", "worker")
"""The old search form's parameters, still accepted (bookmarks): turned into a query."""
SUGGEST_KINDS = ("queue", "class", "tag", "worker", "state", "qualifier")
SUGGEST_MAX = 20


def query_text(params: Any) -> str:
    """The query of a request: ``?q=``, or the old search form's parameters written as one."""
    text = (params.get("q") or "").strip()
    if text or not any(params.get(k) for k in LEGACY):
        return text
    parts = []
    for key in LEGACY:
        value = (params.get(key) or "").strip()
        if value:
            parts.append(f"{'class' if key == 'klass' else key}:{quote(value)}")
    return " ".join(parts)


def row(job: Job, preview: int) -> dict[str, Any]:
    """What the results table shows of a job."""
    data = orjson.dumps(job.data).decode()
    changed = job.time
    if job.state.value == "failed" and job.failure and float(job.failure.get("when") or 0) > changed:
        changed = float(job.failure["when"])
    return {"jid": job.jid, "klass": job.klass, "state": job.state.value, "queue": job.queue_name,
            "priority": job.priority, "tags": job.tags, "worker": job.worker, "changed": changed,
            "due_at": job.due_at, "data": data[:preview], "data_size": len(data),
            "failure": job.failure}


def _links(request: HttpRequest, text: str, **extra: Any) -> str:
    params = {"q": text, **{k: v for k, v in extra.items() if v not in (None, "")}}
    ns = request.GET.get("ns")
    if ns:
        params["ns"] = ns
    return request.path + "?" + urlencode(params)


def _search(client: Client, query: Query, cursor: str | None, room: int) -> dict[str, Any]:
    result = client.jobs.find(**query.find_kwargs(), limit=room, cursor=cursor)
    preview = conf.preview_bytes()
    return {"rows": [row(j, preview) for j in result["jobs"]], "cursor": result["cursor"],
            "scanned": result["scanned"]}


def _int(params: Any, name: str) -> int:
    try:
        return max(0, int(params.get(name, 0)))
    except (TypeError, ValueError):
        return 0


@page()
def explorer(request: HttpRequest) -> HttpResponse:
    """Jobs matching the query bar, in any state, streamed in with the scan's progress."""
    params = request.GET
    client = client_of(request)
    if request.headers.get("X-Live-Render") == "1" or (
            request.headers.get("HX-Request") and request.headers.get("HX-Target") == "operations"):
        # the live bridge and the progress poll want only the "act on all matching" operations
        return _render(request, "jobadmin/explorer.html", matching.operations_context(client), ("operations",))
    text = query_text(params)
    size = conf.page_size()
    shown, scanned = _int(params, "shown"), _int(params, "scanned")
    page_no = max(1, _int(params, "page") or 1)
    context: dict[str, Any] = {"query": text, "error": "", "error_at": None, "usage": USAGE, "states": STATES,
                               "qualifiers": QUALIFIERS, "rows": [], "page_size": size, "page_no": page_no,
                               "now": client.now()}
    cursor = params.get("cursor") or None
    try:
        query = parse(text, context["now"])
        found = _search(client, query, cursor, size - shown) if text or cursor else None
    except QueryError as exc:
        context.update(error=exc.message, error_at=exc.position, error_pad=" " * exc.position)
        found = None
    except InvalidArgument as exc:
        context["error"] = str(exc)
        found = None
    if found is not None:
        shown += len(found["rows"])
        scanned += found["scanned"]
        more = found["cursor"] is not None and shown < size
        context.update(
            rows=found["rows"], searched=True, shown=shown, scanned=scanned, done=found["cursor"] is None,
            more_url=_links(request, text, cursor=found["cursor"], shown=shown, scanned=scanned, more=1,
                            page=page_no) if more else "",
            next_url=_links(request, text, cursor=found["cursor"], page=page_no + 1)
            if found["cursor"] is not None and not more else "",
            canonical=query.text_form() if text else "")
    if params.get("more") == "1" and request.headers.get("HX-Request"):
        return render(request, "jobadmin/partials/explorer_more.html", context)
    context.update(matching.operations_context(client), chunk=bulk.CHUNK,
                   match_actions=matching.match_actions(allowed_actions(request.user))
                   if found is not None else [])
    return _render(request, "jobadmin/explorer.html", context, ("explorer_results", "operations"))


@page()
def suggest(request: HttpRequest) -> HttpResponse:
    """Completions for the query bar: ``?kind=queue|class|tag|worker|state|qualifier&prefix=``
    -> ``{"items": [...]}`` (at most 20)."""
    kind = request.GET.get("kind", "")
    prefix = request.GET.get("prefix", "")
    if kind not in SUGGEST_KINDS:
        return JsonResponse({"error": f"kind must be one of {', '.join(SUGGEST_KINDS)}"}, status=400)
    client = client_of(request)
    items: list[str]
    if kind == "class":
        items = [c["klass"] for c in client.jobs.classes(prefix=prefix, limit=SUGGEST_MAX)]
    elif kind == "queue":
        items = [q["name"] for q in client.queues.counts]
    elif kind == "tag":
        items = client.tags(count=200)
    elif kind == "worker":
        items = [w["name"] for w in client.workers.counts]
    elif kind == "state":
        items = list(STATES)
    else:
        items = [q if q.endswith(".") else q + ":" for q in QUALIFIERS]
    matching = sorted(i for i in items if i.startswith(prefix))
    return JsonResponse({"items": matching[:SUGGEST_MAX]})
