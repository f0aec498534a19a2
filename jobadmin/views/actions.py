"""Dashboard actions: POST only, CSRF-protected, permission-checked, audited.

Each action redirects back (``next``, same host only) with a message that says what it did
("Retried 3 jobs; 1 skipped (not failed)"). A bad request changes nothing and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from jobadmin import actions, audit, bulk, conf, presenters
from jobadmin.engine import client_of, namespace_of
from jobadmin.permissions import allowed_actions, check_action, staff_required
from queueengine import Client, InvalidArgument, QueueEngineError

JobAction = Callable[[Client, str, list[str], QueryDict], actions.Outcome]
"""One job action: (client, the job's jid, [that jid, checked], the POST data) -> its outcome."""

_JOB_ACTIONS: dict[str, JobAction] = {
    "retry": lambda client, jid, jids, post: actions.retry(client, jids),
    "cancel": lambda client, jid, jids, post: actions.cancel(client, jids),
    "move": lambda client, jid, jids, post: actions.move(client, jids, (post.get("queue") or "").strip()),
    "priority": lambda client, jid, jids, post: actions.set_priority(client, jid, post.get("priority", "")),
    "timeout": lambda client, jid, jids, post: actions.timeout(client, jids),
    "track": lambda client, jid, jids, post: actions.track(client, jid, True),
    "untrack": lambda client, jid, jids, post: actions.track(client, jid, False),
    "tag": lambda client, jid, jids, post: actions.tag(client, jid, post.get("tags", ""), True, post.getlist("tag")),
    "untag": lambda client, jid, jids, post: actions.tag(client, jid, post.get("tags", ""), False,
                                                         post.getlist("tag")),
    "undepend": lambda client, jid, jids, post: actions.undepend(client, jid, post.getlist("dependency"),
                                                                 post.get("all") == "1"),
    "unrecur": lambda client, jid, jids, post: actions.unrecur(client, jid),
}
JOB_ACTIONS = tuple(_JOB_ACTIONS)
BULK_ACTIONS = ("retry", "cancel", "move", "timeout")


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = default
    return HttpResponseRedirect(target, status=303)


def _guarded(request: HttpRequest, action: str, default: str, work: Callable[[], tuple[str, dict[str, Any]]]
             ) -> HttpResponse:
    """Check the permission, run ``work`` (-> message, audit fields), record it, redirect back.
    Engine and argument errors become an error message and change nothing."""
    check_action(request, action)
    try:
        message, fields = work()
    except (InvalidArgument, QueueEngineError, ValueError) as exc:
        messages.error(request, f"Could not {action}: {actions.describe_error(exc)}")
        return _back(request, default)
    audit.record(request, action, namespace=namespace_of(request), **fields)
    messages.success(request, message)
    return _back(request, default)


def _outcome_fields(outcome: actions.Outcome) -> dict[str, Any]:
    detail = "; ".join(f"{jid}: {why}" for jid, why in outcome.skipped[:50])
    return {"jids": outcome.done, "target": outcome.target, "detail": detail}


@require_POST
@staff_required
def job_action(request: HttpRequest, jid: str, action: str) -> HttpResponse:
    """One action on one job (retry, cancel, move, priority, timeout, track, untrack, tag,
    untag, undepend, unrecur)."""
    if action not in JOB_ACTIONS:
        messages.error(request, f"Unknown action {action!r}")
        return _back(request, reverse("jobadmin:job", args=[jid]))
    client = client_of(request)
    post = request.POST
    default = reverse("jobadmin:job", args=[jid])
    if action == "cancel":
        default = reverse("jobadmin:overview")

    def work() -> tuple[str, dict[str, Any]]:
        jids = actions.clean_jids([jid], existing=True)
        outcome = _JOB_ACTIONS[action](client, jid, jids, post)
        if not outcome.done:
            raise InvalidArgument(outcome.message)
        return outcome.message, _outcome_fields(outcome)

    return _guarded(request, action, default, work)


@require_POST
@staff_required
def bulk_action(request: HttpRequest) -> HttpResponse:
    """One action on the selected jobs (checkboxes named ``jid``): retry, cancel, move, timeout."""
    action = request.POST.get("action", "")
    if action not in BULK_ACTIONS:
        messages.error(request, "Choose an action for the selected jobs: retry, cancel, move or timeout")
        return _back(request, reverse("jobadmin:overview"))
    client = client_of(request)

    def work() -> tuple[str, dict[str, Any]]:
        jids = actions.clean_jids(request.POST.getlist("jid"))
        if action == "retry":
            outcome = actions.retry(client, jids)
        elif action == "cancel":
            outcome = actions.cancel(client, jids)
        elif action == "timeout":
            outcome = actions.timeout(client, jids)
        else:
            outcome = actions.move(client, jids, (request.POST.get("queue") or "").strip())
        return outcome.message, _outcome_fields(outcome)

    return _guarded(request, action, reverse("jobadmin:overview"), work)


@require_POST
@staff_required
def queue_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """Pause or unpause a queue."""
    if action not in ("pause", "unpause"):
        messages.error(request, f"Unknown queue action {action!r}")
        return _back(request, reverse("jobadmin:queue", args=[name]))
    client = client_of(request)

    def work() -> tuple[str, dict[str, Any]]:
        return actions.pause(client, name, action == "pause"), {"target": name}

    return _guarded(request, action, reverse("jobadmin:queue", args=[name]), work)


@require_POST
@staff_required
def group_action(request: HttpRequest, group: str, action: str) -> HttpResponse:
    """Retry, cancel or move every job of a failure group, in the background, in chunks (one
    audit entry, completed when the operation ends)."""
    default = reverse("jobadmin:failure_group", args=[group])
    if action not in bulk.KINDS:
        messages.error(request, f"Unknown group action {action!r}")
        return _back(request, reverse("jobadmin:failures"))
    check_action(request, action)
    client = client_of(request)
    queue = (request.POST.get("queue") or "").strip() or None
    try:
        rec = bulk.start(client, action, group, queue, request.user.get_username(),
                         actor=audit.Actor.of(request, namespace_of(request)))
    except (InvalidArgument, QueueEngineError, ValueError) as exc:
        messages.error(request, f"Could not {action}: {actions.describe_error(exc)}")
        return _back(request, default)
    what = {"retry": "Retrying", "cancel": "Canceling", "move": f"Moving to {queue}"}[action]
    messages.success(request, f"{what} all {rec['total']:,} jobs of {group} in chunks of {bulk.CHUNK}; progress below")
    return _back(request, default)


@require_POST
@staff_required
def stop_operation(request: HttpRequest, op_id: str) -> HttpResponse:
    """Stop a running operation (a group's or "act on all matching") before its next chunk;
    needs the permission of what it does."""
    client = client_of(request)
    rec = bulk.get(client, op_id)
    if rec is None:
        raise Http404("no such operation (it may have expired)")
    check_action(request, rec["kind"])
    try:
        bulk.request_stop(client, op_id, request.user.get_username())
    except InvalidArgument as exc:
        messages.error(request, f"Could not stop it: {exc}")
    else:
        messages.success(request, "Stopping the operation before its next chunk; what is done stays done")
    return _back(request, reverse("jobadmin:operation", args=[op_id]))


@require_POST
@staff_required
def config_action(request: HttpRequest) -> HttpResponse:
    """Set or unset one engine option. From the htmx form: the config table comes back with
    the outcome inline (a refused value is reported at its option, the input keeps it)."""
    client = client_of(request)
    option = (request.POST.get("option") or "").strip()
    value = None if request.POST.get("unset") == "1" else request.POST.get("value", "")
    if request.headers.get("HX-Request"):
        return _config_inline(request, option, value)

    def work() -> tuple[str, dict[str, Any]]:
        return actions.set_config(client, option, value), {"target": option, "detail": value or "(unset)"}

    return _guarded(request, "config", reverse("jobadmin:config"), work)


def _config_inline(request: HttpRequest, option: str, value: str | None) -> HttpResponse:
    check_action(request, "config")
    client = client_of(request)
    try:
        notice = actions.set_config(client, option, value)
    except (InvalidArgument, QueueEngineError, ValueError) as exc:
        context = presenters.config_page(client, error=(option, actions.describe_error(exc)), submitted=value)
    else:
        audit.record(request, "config", namespace=namespace_of(request), target=option, detail=value or "(unset)")
        context = presenters.config_page(client, notice=notice)
    context.update(can=allowed_actions(request.user), read_only=conf.read_only())
    return render(request, "jobadmin/partials/config_table.html", context)
