"""The admin's view of the dashboard: a placeholder model (no table) and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

ACTION_PERMISSIONS = (
    ("view_dashboard", "Can view the job dashboard"),
    ("retry_jobs", "Can retry jobs"),
    ("cancel_jobs", "Can cancel jobs"),
    ("move_jobs", "Can move jobs between queues"),
    ("pause_queues", "Can pause and unpause queues"),
    ("edit_jobs", "Can edit jobs (priority, tags, tracking, dependencies, timeout, recurring)"),
    ("edit_config", "Can edit the engine's configuration"),
    ("create_jobs", "Can create jobs"),
    ("edit_waiting_jobs", "Can edit waiting and scheduled jobs (data, priority, delay, tags)"),
)


class Dashboard(models.Model):
    """No table: gives the admin a "Jobs" entry and carries the per-action permissions."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = ACTION_PERMISSIONS
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"


class AuditEntry(models.Model):
    """Who did what to which jobs, and when."""

    when = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    namespace = models.CharField(max_length=200, blank=True)
    target = models.CharField(max_length=600, blank=True, help_text="queue, failure group, option, ...")
    jids = models.JSONField(default=list, blank=True, help_text="the first 1,000 jids acted on")
    count = models.PositiveIntegerField(default=0)
    detail = models.TextField(blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-when", "-id")
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.when:%Y-%m-%d %H:%M:%S} {self.username or '?'} {self.action} {self.target}".strip()
