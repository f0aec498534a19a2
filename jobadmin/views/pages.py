"""Dashboard pages. Each renders its full template, or, for an htmx request whose target is
one of the page's fragments, just that fragment (same context, same partial)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobadmin import bulk, conf, facts, live, presenters
from jobadmin.engine import client_of, namespace_of
from jobadmin.permissions import allowed_actions, staff_required
from queueengine import InvalidArgument

PARTIALS = "jobadmin/partials/"


def _render(request: HttpRequest, template: str, context: dict[str, Any], fragments: tuple[str, ...]) -> HttpResponse:
    """The page, or the fragment an htmx request targets (fragment ids are partial names)."""
    context.setdefault("namespace", namespace_of(request))
    context["namespaces"] = conf.namespaces()
    context["can"] = allowed_actions(request.user)
    context["read_only"] = conf.read_only()
    context["environment"] = conf.get("ENVIRONMENT")
    match = request.resolver_match
    is_live = match is not None and match.url_name in live.PAGE_TOPICS and live.live_enabled()
    context["live_url"] = _live_url(request) if is_live else ""
    if request.headers.get("X-Live-Render") == "1":
        # the live consumer: every fragment of the page, to be swapped in by id
        html = "".join(render_to_string(PARTIALS + f + ".html", context, request) for f in fragments)
        return HttpResponse(html)
    target = request.headers.get("HX-Target", "")
    if request.headers.get("HX-Request") and target in fragments:
        return render(request, PARTIALS + target + ".html", context)
    return render(request, template, context)


def _live_url(request: HttpRequest) -> str:
    """The websocket URL of this page's live updates (relative to the dashboard's mount): the
    page's view, the name it shows (the decoded URL argument, carried as is) and its query."""
    match = request.resolver_match
    assert match is not None
    query = request.GET.copy()
    query.pop("ns", None)
    params = {"view": match.url_name or "", "ns": namespace_of(request), "query": query.urlencode()}
    params.update(live.page_params(match.url_name or "", match.kwargs))
    return reverse("jobadmin:overview") + "ws/live/?" + urlencode(params)


def page() -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """GET only, never cached, staff only."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        return never_cache(require_GET(staff_required(view)))

    return wrap


@page()
def overview(request: HttpRequest) -> HttpResponse:
    """Queues, failure groups, workers and tracked jobs at a glance."""
    context = presenters.overview(client_of(request))
    return _render(request, "jobadmin/overview.html", context,
                   ("overview_queues", "overview_failures", "overview_workers", "overview_tracked"))


@page()
def queue(request: HttpRequest, name: str) -> HttpResponse:
    """One queue: counts and a tab (stats, waiting, running, scheduled, stalled, depends, ...)."""
    tab = request.GET.get("tab", "stats")
    try:
        context = presenters.queue_page(client_of(request), name, tab, request.GET)
    except InvalidArgument as exc:
        raise Http404(str(exc)) from exc
    return _render(request, "jobadmin/queue.html", context, ("queue_counts", "queue_tab"))


@page()
def job(request: HttpRequest, jid: str) -> HttpResponse:
    """One job's story (or a recurring template)."""
    try:
        context = presenters.job_page(client_of(request), jid)
    except InvalidArgument as exc:
        raise Http404(str(exc)) from exc
    if context["job"] is None and context["recurring"] is None:
        if request.headers.get("X-Live-Render") == "1":
            return HttpResponse('<section id="job_state" class="panel"><p class="warning">This job no longer exists '
                                '(canceled, or expired by retention).</p></section>')
        response = _render(request, "jobadmin/job_missing.html", context, ())
        response.status_code = 404
        return response
    if context["job"] is not None:
        context.update(graph=facts.dependency_graph(client_of(request), context["job"]), depth=facts.GRAPH_DEPTH)
    return _render(request, "jobadmin/job.html", context, ("job_state", "job_timeline", "job_outcome", "dep_graph"))


@page()
def find(request: HttpRequest) -> HttpResponse:
    """The jid box: go to the job, or say it was not found."""
    jid = (request.GET.get("jid") or "").strip()
    if not jid:
        return redirect("jobadmin:overview")
    return redirect(reverse("jobadmin:job", args=[jid]) + _ns_suffix(request))


def _ns_suffix(request: HttpRequest) -> str:
    ns = namespace_of(request)
    return "?" + urlencode({"ns": ns}) if ns != conf.default_namespace() else ""


@page()
def failures(request: HttpRequest) -> HttpResponse:
    """Failure groups with counts, first and last seen and a sample message."""
    client = client_of(request)
    context = presenters.failures(client, request.GET)
    context["operations"] = bulk.recent(client, scope="group")
    context["operations_running"] = any(op["running"] for op in context["operations"])
    return _render(request, "jobadmin/failures.html", context, ("failure_groups", "operations"))


@page()
def failure_group(request: HttpRequest, group: str) -> HttpResponse:
    """The jobs of one failure group, newest first, with group-wide actions."""
    client = client_of(request)
    try:
        context = presenters.listing(client, "failed", group, request.GET, extra_queues=True)
    except InvalidArgument as exc:
        raise Http404(str(exc)) from exc
    ops = bulk.recent(client, group)
    context.update(group=group, operations=ops, group_ref={"group": group, "count": context["page"]["total"]},
                   operations_running=any(op["running"] for op in ops))
    return _render(request, "jobadmin/failure_group.html", context, ("job_table", "operations"))


@page()
def operation(request: HttpRequest, op_id: str) -> HttpResponse:
    """An operation's progress (a group's or "act on all matching"; the fragment polls itself
    while it runs)."""
    rec = bulk.get(client_of(request), op_id)
    if rec is None:
        raise Http404("no such operation")
    context = {"op": rec, "operations": [rec], "operations_running": rec["running"]}
    return _render(request, "jobadmin/operation.html", context, ("operations",))


@page()
def workers(request: HttpRequest) -> HttpResponse:
    """Workers with their current jobs, last-seen age and status."""
    context = presenters.workers(client_of(request), request.GET)
    return _render(request, "jobadmin/workers.html", context, ("workers_table",))


@page()
def worker(request: HttpRequest, name: str) -> HttpResponse:
    """The jobs one worker holds."""
    try:
        context = presenters.listing(client_of(request), "worker", name, request.GET)
    except InvalidArgument as exc:
        raise Http404(str(exc)) from exc
    context["worker_name"] = name
    context["worker"] = facts.worker_facts(client_of(request), name)
    return _render(request, "jobadmin/worker.html", context, ("worker_facts", "job_table"))


@page()
def tracked(request: HttpRequest) -> HttpResponse:
    """Tracked jobs, most recently tracked first."""
    context = presenters.listing(client_of(request), "tracked", "", request.GET)
    return _render(request, "jobadmin/list.html", {**context, "title": "Tracked jobs"}, ("job_table",))


@page()
def completed(request: HttpRequest) -> HttpResponse:
    """Completed jobs still kept (jobs-history), newest first."""
    context = presenters.listing(client_of(request), "complete", "", request.GET)
    return _render(request, "jobadmin/list.html", {**context, "title": "Completed jobs"}, ("job_table",))


@page()
def recurring(request: HttpRequest) -> HttpResponse:
    """Recurring templates with schedules in words and next runs."""
    context = presenters.recurring(client_of(request), request.GET)
    return _render(request, "jobadmin/recurring.html", context, ("recurring_table",))


@page()
def tags(request: HttpRequest) -> HttpResponse:
    """Tag search: the tags in use, and the jobs of one tag."""
    try:
        context = presenters.tags(client_of(request), request.GET)
    except InvalidArgument as exc:
        context = {"tag": request.GET.get("tag", ""), "top": [], "error": str(exc)}
    return _render(request, "jobadmin/tags.html", context, ("job_table",))


@page()
def config(request: HttpRequest) -> HttpResponse:
    """The engine's options; editable with the edit_config permission."""
    context = presenters.config_page(client_of(request))
    return _render(request, "jobadmin/config.html", context, ("config_table",))
