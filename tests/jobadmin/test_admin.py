"""Django admin integration: the dashboard link, admin actions with confirmation, the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages

from jobadmin.models import AuditEntry
from queueengine import Client

pytestmark = pytest.mark.django_db


def test_admin_index_links_the_dashboard(admin_web: Any) -> None:
    """/admin/ has a Jobs section with the dashboard and the audit log."""
    html = admin_web.get("/admin/").content.decode()
    assert "/admin/jobadmin/dashboard/" in html and "/admin/jobadmin/auditentry/" in html
    response = admin_web.get("/admin/jobadmin/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/admin/jobadmin/dashboard/jobs/"


def test_dashboard_permissions_exist() -> None:
    """One permission per action on the placeholder model."""
    from django.contrib.auth.models import Permission

    codenames = set(Permission.objects.filter(content_type__app_label="jobadmin").values_list("codename", flat=True))
    assert {"view_dashboard", "retry_jobs", "cancel_jobs", "move_jobs", "pause_queues", "edit_jobs",
            "edit_config"} <= codenames


def test_admin_retry_action_with_confirmation(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """The admin action asks first, then retries, messages and audits."""
    jids = failed_jobs(3)
    page = admin_web.get("/admin/jobadmin/dashboard/jobs/?kind=failed").content.decode()
    assert all(j in page for j in jids) and 'name="_selected_action"' in page
    confirm = admin_web.post("/admin/jobadmin/dashboard/jobs/?kind=failed",
                             {"action": "retry", "_selected_action": jids[:2]})
    assert confirm.status_code == 200 and b"Are you sure?" in confirm.content
    assert qe.jobs[jids[0]].state.value == "failed"
    done = admin_web.post("/admin/jobadmin/dashboard/jobs/?kind=failed",
                          {"action": "retry", "_selected_action": jids[:2], "post": "yes"})
    assert done.status_code == 302
    assert [str(m) for m in get_messages(done.wsgi_request)] == ["Retried 2 jobs"]
    assert [qe.jobs[j].state.value for j in jids] == ["waiting", "waiting", "failed"]
    assert AuditEntry.objects.get().detail == "from the admin"


def test_admin_move_and_cancel_actions(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Move sends the selection to a queue; cancel deletes it."""
    jids = failed_jobs(2)
    admin_web.post("/admin/jobadmin/dashboard/jobs/?kind=failed",
                   {"action": "move", "_selected_action": jids[:1], "queue": "rescue", "post": "yes"})
    assert qe.jobs[jids[0]].queue_name == "rescue"
    admin_web.post("/admin/jobadmin/dashboard/jobs/?kind=failed",
                   {"action": "cancel", "_selected_action": jids[1:], "post": "yes"})
    assert jids[1] not in qe.jobs


def test_admin_actions_need_permissions(user_with: Any, qe: Client, failed_jobs: Any) -> None:
    """Staff without retry_jobs see no retry action and get 403 when they post one."""
    jids = failed_jobs(1)
    web = user_with("cancel_jobs")
    page = web.get("/admin/jobadmin/dashboard/jobs/?kind=failed").content.decode()
    assert 'value="cancel"' in page and 'value="retry"' not in page
    response = web.post("/admin/jobadmin/dashboard/jobs/?kind=failed",
                        {"action": "retry", "_selected_action": jids, "post": "yes"})
    assert response.status_code == 403 and qe.jobs[jids[0]].state.value == "failed"


def test_audit_log_is_readable_not_editable(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Every dashboard action lands in the admin's audit log, which cannot be edited."""
    jid = failed_jobs(1)[0]
    admin_web.post(f"/jobs/job/{jid}/retry/")
    listing = admin_web.get("/admin/jobadmin/auditentry/").content.decode()
    assert "retry" in listing
    entry = AuditEntry.objects.get()
    assert admin_web.get(f"/admin/jobadmin/auditentry/{entry.pk}/change/").status_code == 200
    assert admin_web.post(f"/admin/jobadmin/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1
