"""Django admin integration: a "Jobs" entry that opens the dashboard, the audit log, and admin
actions (retry, cancel, move) on failed and queued jobs in the admin's own chrome.

The jobs are not ORM rows, so the job list is a custom admin view (django-rq's approach): it
renders the admin changelist form (checkboxes named ``_selected_action``, an action menu),
asks for confirmation, acts through ``jobadmin.actions`` and reports with the admin's messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from jobadmin import actions, audit, presenters
from jobadmin.engine import client_for
from jobadmin.models import AuditEntry, Dashboard
from jobadmin.permissions import can, can_view
from queueengine import Client, InvalidArgument, QueueEngineError

if TYPE_CHECKING:   # ModelAdmin is generic in django-stubs only (not at runtime)
    DashboardModelAdmin = admin.ModelAdmin[Dashboard]
    AuditEntryModelAdmin = admin.ModelAdmin[AuditEntry]
else:
    DashboardModelAdmin = AuditEntryModelAdmin = admin.ModelAdmin

ADMIN_ACTIONS = {"retry": "Retry selected jobs", "cancel": "Cancel selected jobs", "move": "Move selected jobs to…"}
LIST_KINDS = ("failed", "waiting", "scheduled", "depends", "stalled", "running")


class ReadOnlyForStaff:
    """Visible to whoever may view the dashboard; nothing is added, changed or deleted here."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return can_view(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Dashboard)
class DashboardAdmin(ReadOnlyForStaff, DashboardModelAdmin):
    """Opens the dashboard; ``jobs/`` lists jobs with admin actions."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The admin's "Jobs › Dashboard" link: the job list with admin actions."""
        return HttpResponseRedirect(reverse("admin:jobadmin_dashboard_jobs"))

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = [
            path("jobs/", self.admin_site.admin_view(self.jobs_view), name="jobadmin_dashboard_jobs"),
        ]
        return urls + super().get_urls()

    def jobs_view(self, request: HttpRequest) -> HttpResponse:
        """A page of failed (or queued) jobs with retry / cancel / move as admin actions."""
        if not can_view(request.user):
            raise PermissionDenied
        client = client_for()
        kind = request.GET.get("kind", "failed")
        if kind not in LIST_KINDS:
            kind = "failed"
        name = request.GET.get("name", "")
        if request.method == "POST" and request.POST.get("action") in ADMIN_ACTIONS:
            return self._act(request, client, kind, name)
        context: dict[str, Any] = {**self.admin_site.each_context(request), "title": "Jobs", "kind": kind,
                                   "name": name, "kinds": LIST_KINDS, "opts": self.model._meta,
                                   "actions": {k: v for k, v in ADMIN_ACTIONS.items() if can(request.user, k)},
                                   "queues": [q["name"] for q in client.views.queues(minutes=1)]}
        if kind == "failed" or name:
            try:
                context.update(presenters.listing(client, kind, name, request.GET))
            except InvalidArgument as exc:
                messages.error(request, str(exc))
        return TemplateResponse(request, "admin/jobadmin/jobs.html", context)

    def _act(self, request: HttpRequest, client: Client, kind: str, name: str) -> HttpResponse:
        action = request.POST["action"]
        back = reverse("admin:jobadmin_dashboard_jobs") + "?" + urlencode({"kind": kind, "name": name})
        if not can(request.user, action):
            raise PermissionDenied
        jids = request.POST.getlist("_selected_action")
        queue = (request.POST.get("queue") or "").strip()
        if request.POST.get("post") != "yes":
            context = {**self.admin_site.each_context(request), "title": "Are you sure?", "action": action,
                       "action_label": ADMIN_ACTIONS[action], "jids": jids, "kind": kind, "name": name,
                       "opts": self.model._meta, "queue": queue}
            return TemplateResponse(request, "admin/jobadmin/confirm.html", context)
        try:
            jids = actions.clean_jids(jids)
            if action == "retry":
                outcome = actions.retry(client, jids)
            elif action == "cancel":
                outcome = actions.cancel(client, jids)
            else:
                outcome = actions.move(client, jids, queue)
        except (InvalidArgument, QueueEngineError) as exc:
            self.message_user(request, f"Could not {action}: {exc}", messages.ERROR)
            return HttpResponseRedirect(back)
        audit.record(request, action, namespace=client.namespace, jids=outcome.done, target=outcome.target,
                     detail="from the admin")
        self.message_user(request, outcome.message, messages.SUCCESS if outcome.done else messages.WARNING)
        return HttpResponseRedirect(back)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyForStaff, AuditEntryModelAdmin):
    """The audit log, read-only."""

    list_display = ("when", "username", "action", "target", "count", "namespace")
    list_filter = ("action", "namespace")
    search_fields = ("username", "target", "detail", "jids")
    date_hierarchy = "when"
    readonly_fields = ("when", "user", "username", "action", "namespace", "target", "jids", "count", "detail",
                       "remote_addr")


admin.site.site_header = "queueengine"
admin.site.site_url = "/jobs/"
