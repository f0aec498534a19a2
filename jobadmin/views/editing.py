"""Create a job (``/jobs/new/``) and edit a waiting or scheduled one (``/jobs/job/<jid>/edit/``).

Both are forms (GET shows it, POST acts), under their own permissions (``create_jobs``,
``edit_waiting_jobs``), CSRF-protected and audited. The job's data is JSON typed into the form:
it is parsed here, and a value the engine refuses (a bad queue name, a priority out of range,
data JSON cannot carry) comes back in the form, beside the field, with what was typed kept;
nothing is written then. Editing goes through ``job.edit`` (one atomic engine call), which
refuses a job that is no longer waiting or scheduled.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from jobadmin import audit, conf
from jobadmin.engine import client_of, namespace_of
from jobadmin.permissions import allowed_actions, check_action, staff_required
from queueengine import InvalidArgument, Job, JobNotFound, QueueEngineError, WrongState

EDITABLE = ("waiting", "scheduled")
FIELDS = ("queue", "klass", "data", "priority", "delay", "tags", "retries")


class FormError(Exception):
    """A value the form cannot take: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise FormError("data", f"not JSON: {exc}") from None


def _int(raw: str, field: str, default: int | None) -> int | None:
    raw = raw.strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise FormError(field, f"must be a whole number, got {raw!r}") from None


def _seconds(raw: str) -> float | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FormError("delay", f"must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FormError("delay", f"must be 0 or more seconds, got {raw!r}")
    return value


def _tags(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


def _engine_field(exc: Exception) -> str:
    """The form field an engine error is about (its message starts with the argument's name)."""
    word = str(exc).split(" ", 1)[0].split(".", 1)[0].rstrip(":")
    return {"klass": "klass", "tag": "tags"}.get(word, word if word in FIELDS else "")


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.update(namespace=namespace_of(request), namespaces=conf.namespaces(), can=allowed_actions(request.user),
                   read_only=conf.read_only(), environment=conf.get("ENVIRONMENT"), live_url="")
    return render(request, "jobadmin/job_form.html", context, status=status)


def _queue_names(request: HttpRequest) -> list[str]:
    return [q["name"] for q in client_of(request).queues.counts]


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required
def create_job(request: HttpRequest) -> HttpResponse:
    """A form to put a new job: queue, class, data (JSON), priority, delay, tags, retries."""
    check_action(request, "create")
    post = request.POST
    values = {"queue": request.GET.get("queue", ""), "klass": "", "data": "{}", "priority": "0", "delay": "0",
              "tags": "", "retries": "5"}
    context: dict[str, Any] = {"mode": "create", "values": values, "errors": {}, "queue_names": _queue_names(request)}
    if request.method == "GET":
        return _page(request, context)
    values.update({k: post.get(k, "") for k in FIELDS})
    client = client_of(request)
    try:
        queue, klass = values["queue"].strip(), values["klass"].strip()
        if not queue:
            raise FormError("queue", "give the queue to put the job in")
        if not klass:
            raise FormError("klass", "give the job's class (a dotted path, app.jobs.Send)")
        data = _json(values["data"])
        priority = _int(values["priority"], "priority", 0)
        retries = _int(values["retries"], "retries", 5)
        jid = client.queues[queue].put(klass, data, priority=priority or 0, delay=_seconds(values["delay"]) or 0,
                                       tags=_tags(values["tags"]), retries=retries if retries is not None else 5)
    except FormError as exc:
        context["errors"] = {exc.field: exc.message}
        return _page(request, context, 400)
    except (InvalidArgument, QueueEngineError) as exc:
        context["errors"] = {_engine_field(exc) or "form": str(exc)}
        return _page(request, context, 400)
    audit.record(request, "create", namespace=namespace_of(request), target=queue, jids=[jid], detail=klass)
    messages.success(request, f"Created job {jid} in {queue}")
    return HttpResponseRedirect(reverse("jobadmin:job", args=[jid]), status=303)


def _current(job: Job) -> dict[str, str]:
    return {"data": json.dumps(job.data, indent=2, ensure_ascii=False), "priority": str(job.priority), "delay": "",
            "tags": ", ".join(job.tags)}


def _changes(job: Job, values: dict[str, str]) -> dict[str, Any]:
    """The ``job.edit`` arguments for what the form changes."""
    out: dict[str, Any] = {}
    data = _json(values["data"])
    if data != job.data:
        out["data"] = data
    priority = _int(values["priority"], "priority", job.priority)
    if priority != job.priority:
        out["priority"] = priority
    delay = _seconds(values["delay"])
    if delay is not None:
        out["delay"] = delay
    tags = _tags(values["tags"])
    if tags != job.tags:
        out["tags"] = tags
    return out


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required
def edit_job(request: HttpRequest, jid: str) -> HttpResponse:
    """A form to change a waiting or scheduled job's data, priority, delay and tags."""
    check_action(request, "edit")
    client = client_of(request)
    found = client.jobs.get(jid) if jid else []
    if not found:
        messages.error(request, f"Job {jid} does not exist (any more)")
        return HttpResponseRedirect(reverse("jobadmin:overview"), status=303)
    job = found[0]
    context: dict[str, Any] = {"mode": "edit", "job": job, "jid": jid, "values": _current(job), "errors": {},
                               "editable": job.state.value in EDITABLE, "now": client.now()}
    if request.method == "GET":
        return _page(request, context)
    values = {k: request.POST.get(k, "") for k in ("data", "priority", "delay", "tags")}
    context["values"] = values
    try:
        changes = _changes(job, values)
        if changes:
            job.edit(**changes)
    except FormError as exc:
        context["errors"] = {exc.field: exc.message}
        return _page(request, context, 400)
    except WrongState:
        again = client.jobs.get(jid)
        state = again[0].state.value if again else "gone"
        context["errors"] = {"form": f"The job is {state} now: only waiting and scheduled jobs can be edited. "
                                     "Nothing was changed."}
        context["editable"] = False
        return _page(request, context, 409)
    except (InvalidArgument, JobNotFound, QueueEngineError) as exc:
        context["errors"] = {_engine_field(exc) or "form": str(exc)}
        return _page(request, context, 400)
    target = reverse("jobadmin:job", args=[jid])
    if not changes:
        messages.info(request, "Nothing to change: the form holds the job's current values")
        return HttpResponseRedirect(target, status=303)
    fields = ", ".join(sorted(changes))
    audit.record(request, "edit", namespace=namespace_of(request), target=job.queue_name, jids=[jid], detail=fields)
    messages.success(request, f"Edited {fields} of job {jid}")
    return HttpResponseRedirect(target, status=303)
