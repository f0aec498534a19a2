"""Act on every job matching the explorer's query (``/jobs/search/act/``).

Two steps. ``review`` (GET, changes nothing) says what will happen ("Retry every job matching
``state:failed queue:emails``") and how many jobs match now; it is a panel of the explorer page
(htmx) or a page of its own. ``start`` (POST, CSRF) starts the operation (``jobadmin.bulk``): it
runs in the background, in chunks, and the explorer shows its progress live. Both need the
action's permission (403 otherwise, and always in READ_ONLY). A query without any filter matches
every job of the namespace: it starts only when the form carries the namespace's name, typed by
the operator on the review step.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from jobadmin import actions, audit, bulk
from jobadmin.engine import client_of, namespace_of
from jobadmin.explorer import Query, QueryError, parse
from jobadmin.permissions import allowed_actions, check_action, staff_required
from jobadmin.views.pages import _render, page
from queueengine import Client, InvalidArgument

LABELS = {"retry": "Retry", "cancel": "Cancel (delete)", "move": "Move to a queue", "priority": "Set priority",
          "tag": "Add tags", "untag": "Remove tags"}
"""The actions of the "act on all matching" form, as it names them."""
ESTIMATE = 500
"""The review counts the matches with one ``find`` of this many (a quarter of a second at most)."""


def match_actions(can: dict[str, bool]) -> list[tuple[str, str]]:
    """(kind, label) of the actions this user may apply to every match (none in READ_ONLY)."""
    return [(kind, LABELS[kind]) for kind in bulk.MATCH_KINDS if can.get(kind)]


def operations_context(client: Client) -> dict[str, Any]:
    """The explorer's list of "act on all matching" operations (newest first)."""
    ops = bulk.recent(client, scope="match", limit=5)
    return {"operations": ops, "operations_running": any(op["running"] for op in ops),
            "ops_url": reverse("jobadmin:search")}


def _kind(params: QueryDict) -> str:
    kind = params.get("action", "")
    if kind not in bulk.MATCH_KINDS:
        raise InvalidArgument(f"action must be one of {', '.join(bulk.MATCH_KINDS)}, got {kind!r}")
    return kind


def _plan(client: Client, params: QueryDict, kind: str) -> tuple[str, Query, bulk.Action]:
    """The query and the action a form asks for (QueryError / InvalidArgument say what is wrong)."""
    text = (params.get("q") or "").strip()
    query = parse(text, client.now())
    tags = actions.parse_tags(params.get("tags", ""), params.getlist("tag")) if kind in ("tag", "untag") else ()
    action = bulk.Action.make(kind, queue=(params.get("queue") or "").strip() or None,
                              priority=params.get("priority", ""), tags=tags)
    return text, query, action


def _explorer_url(request: HttpRequest, text: str) -> str:
    params = {"q": text}
    ns = namespace_of(request)
    if request.GET.get("ns") or request.POST.get("ns"):
        params["ns"] = ns
    return reverse("jobadmin:search") + "?" + urlencode(params)


def _review_context(request: HttpRequest, kind: str, error: str = "") -> dict[str, Any]:
    client = client_of(request)
    params = request.POST if request.method == "POST" else request.GET
    context: dict[str, Any] = {"kind": kind, "label": LABELS[kind], "query": (params.get("q") or "").strip(),
                               "queue": params.get("queue", ""), "priority": params.get("priority", ""),
                               "tags": params.get("tags", ""), "error": error, "namespace": namespace_of(request)}
    try:
        text, query, action = _plan(client, params, kind)
    except (QueryError, InvalidArgument) as exc:
        context["error"] = context["error"] or getattr(exc, "message", None) or str(exc)
        return context
    found = client.jobs.find(**query.find_kwargs(), limit=ESTIMATE)
    before, _, after = action.sentence("every job matching \0").partition("\0")
    context.update(ready=True, sentence_before=before, sentence_after=after, everything=query.empty,
                   count=len(found["jobs"]), complete=found["cursor"] is None,
                   back_url=_explorer_url(request, text))
    return context


@page()
def review(request: HttpRequest) -> HttpResponse:
    """What "act on all matching" will do, and a button to start it (changes nothing)."""
    try:
        kind = _kind(request.GET)
    except InvalidArgument as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    check_action(request, kind)
    context = _review_context(request, kind)
    if request.headers.get("HX-Request"):
        context["inline"] = True
        return render(request, "jobadmin/partials/match_review.html", context)
    return _render(request, "jobadmin/match_review.html", context, ())


@require_POST
@staff_required
def start(request: HttpRequest) -> HttpResponse:
    """Start acting on every job matching the query; to the explorer, where its progress shows."""
    try:
        kind = _kind(request.POST)
    except InvalidArgument as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    check_action(request, kind)
    client = client_of(request)
    namespace = namespace_of(request)
    try:
        text, query, action = _plan(client, request.POST, kind)
        everything = request.POST.get("everything", "") == namespace
        if query.empty and not everything:
            raise InvalidArgument(f"the query has no filter, so it matches every job in namespace {namespace}: "
                                  f"type the namespace's name to confirm")
        rec = bulk.start_matching(client, action, text, query.find_kwargs(), request.user.get_username(),
                                  actor=audit.Actor.of(request, namespace), everything=everything)
    except (QueryError, InvalidArgument) as exc:
        return _refused(request, kind, getattr(exc, "message", None) or str(exc))
    if request.headers.get("HX-Request"):
        # the operation as it started: later states reach the page live (or by its own polling)
        context = operations_context(client)
        context["operations"] = [bulk.get_started(rec), *[op for op in context["operations"] if op["id"] != rec["id"]]]
        context.update(operations_running=True, can=allowed_actions(request.user))
        return render(request, "jobadmin/partials/match_started.html", context)
    messages.success(request, f"Started: {action.sentence('every job matching ' + (text or '(every job)'))}, "
                              f"in chunks of {bulk.CHUNK}; progress below")
    return HttpResponseRedirect(_explorer_url(request, text), status=303)


def _refused(request: HttpRequest, kind: str, error: str) -> HttpResponse:
    """The review again, with why nothing was started (htmx: into the review panel)."""
    context = _review_context(request, kind, error)
    if request.headers.get("HX-Request"):
        context["inline"] = True
        response = render(request, "jobadmin/partials/match_review.html", context)
        response["HX-Retarget"] = "#match-review"
        response["HX-Reswap"] = "innerHTML"
        return response
    response = _render(request, "jobadmin/match_review.html", context, ())
    response.status_code = 400
    return response
