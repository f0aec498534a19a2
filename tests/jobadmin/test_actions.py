"""Every action: its effect in Redis, the message, the audit entry; permissions, read-only
mode, CSRF, bad input (nothing changes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.contrib.messages import get_messages

from jobadmin import bulk
from jobadmin.models import AuditEntry
from queueengine import Client
from tests.jobadmin.conftest import snapshot

pytestmark = pytest.mark.django_db


def messages_of(response: Any) -> list[str]:
    """The messages this request added (earlier unread ones are left out)."""
    return [str(m) for m in get_messages(response.wsgi_request)._queued_messages]  # type: ignore[attr-defined]


def post(web: Any, url: str, **data: Any) -> Any:
    return web.post(url, {"next": "/jobs/", **data})


def test_retry_a_failed_job(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Retry puts a failed job back to waiting in its queue, says so and audits it."""
    jid = failed_jobs(1)[0]
    response = post(admin_web, f"/jobs/job/{jid}/retry/")
    assert response.status_code == 303 and response["Location"] == "/jobs/"
    assert qe.jobs[jid].state.value == "waiting"
    assert messages_of(response) == ["Retried 1 job"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.jids, entry.count, entry.namespace) == ("retry", [jid], 1, "test")
    assert entry.username.startswith("user")


def test_retry_of_a_job_that_is_not_failed_changes_nothing(admin_web: Any, qe: Client, redis_conn: redis.Redis
                                                           ) -> None:
    """A waiting job cannot be 'retried': an error message, no change, no audit entry."""
    jid = qe.queues["work"].put("app.jobs.X", {})
    before = snapshot(redis_conn)
    response = post(admin_web, f"/jobs/job/{jid}/retry/")
    assert "not failed (waiting)" in messages_of(response)[0]
    assert snapshot(redis_conn) == before and not AuditEntry.objects.exists()


def test_cancel_move_priority_track_tag(admin_web: Any, qe: Client) -> None:
    """The single-job actions do what they say."""
    q = qe.queues["work"]
    jid = q.put("app.jobs.X", {}, priority=1)
    assert messages_of(post(admin_web, f"/jobs/job/{jid}/priority/", priority="7")) == ["Reprioritised 1 job"]
    assert qe.jobs[jid].priority == 7
    post(admin_web, f"/jobs/job/{jid}/track/")
    assert qe.jobs[jid].tracked
    post(admin_web, f"/jobs/job/{jid}/untrack/")
    assert not qe.jobs[jid].tracked
    post(admin_web, f"/jobs/job/{jid}/tag/", tags="red, blue")
    assert qe.jobs[jid].tags == ["red", "blue"]
    post(admin_web, f"/jobs/job/{jid}/untag/", tags="red")
    assert qe.jobs[jid].tags == ["blue"]
    assert messages_of(post(admin_web, f"/jobs/job/{jid}/move/", queue="elsewhere")) == ["Moved 1 job to elsewhere"]
    assert qe.jobs[jid].queue_name == "elsewhere"
    assert messages_of(post(admin_web, f"/jobs/job/{jid}/cancel/")) == ["Canceled 1 job"]
    assert jid not in qe.jobs
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "priority", "track", "untrack", "tag", "untag", "move", "cancel"]


def test_timeout_a_running_job(admin_web: Any, qe: Client) -> None:
    """Time out expires the lease now: the job shows as stalled."""
    jid = qe.queues["work"].put("app.jobs.X", {})
    assert qe.queues["work"].pop() is not None
    assert messages_of(post(admin_web, f"/jobs/job/{jid}/timeout/")) == ["Timed out 1 job"]
    assert qe.jobs[jid].state.value == "stalled"


def test_undepend_releases_the_job(admin_web: Any, qe: Client) -> None:
    """Removing every dependency makes the job ready."""
    q = qe.queues["work"]
    first = q.put("app.jobs.X", {})
    then = q.put("app.jobs.Y", {}, depends=[first])
    post(admin_web, f"/jobs/job/{then}/undepend/", all="1")
    assert qe.jobs[then].state.value == "waiting" and qe.jobs[then].dependencies == []


def test_unrecur_stops_a_template(admin_web: Any, qe: Client) -> None:
    """Stop recurring deletes the template."""
    jid = qe.queues["work"].recur("app.jobs.Report", {}, interval=60)
    assert messages_of(post(admin_web, f"/jobs/job/{jid}/unrecur/")) == ["Stopped 1 job"]
    assert qe.views.recurring()["total"] == 0


def test_pause_and_unpause(admin_web: Any, qe: Client) -> None:
    """Pause stops pops from the queue; unpause resumes them."""
    qe.queues["work"].put("app.jobs.X", {})
    response = post(admin_web, "/jobs/queue/work/pause/")
    assert messages_of(response)[0].startswith("Paused work")
    assert qe.queues["work"].paused and qe.queues["work"].pop() is None
    post(admin_web, "/jobs/queue/work/unpause/")
    assert not qe.queues["work"].paused


def test_edit_config(admin_web: Any, qe: Client) -> None:
    """Set and reset an option."""
    assert messages_of(post(admin_web, "/jobs/config/set/", option="heartbeat", value="90")) == ["Set heartbeat = 90"]
    assert qe.config["heartbeat"] == 90
    post(admin_web, "/jobs/config/set/", option="heartbeat", unset="1")
    assert qe.config["heartbeat"] == 60
    assert AuditEntry.objects.filter(action="config", target="heartbeat").count() == 2


def test_bulk_actions_on_selected_jobs(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Bulk retry, move and cancel act on the checked jids and report counts."""
    jids = failed_jobs(4)
    response = admin_web.post("/jobs/bulk/", {"action": "retry", "jid": jids[:3], "next": "/jobs/failed/"})
    assert messages_of(response) == ["Retried 3 jobs"]
    assert [qe.jobs[j].state.value for j in jids] == ["waiting", "waiting", "waiting", "failed"]
    response = admin_web.post("/jobs/bulk/", {"action": "move", "jid": jids[:2], "queue": "other"})
    assert messages_of(response) == ["Moved 2 jobs to other"]
    response = admin_web.post("/jobs/bulk/", {"action": "cancel", "jid": jids})
    assert messages_of(response) == ["Canceled 4 jobs"]
    assert all(j not in qe.jobs for j in jids)
    assert AuditEntry.objects.get(action="cancel").count == 4


def test_bulk_reports_what_it_skipped(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Jobs that cannot be retried are skipped with the reason."""
    failed = failed_jobs(1)[0]
    waiting = qe.queues["work"].put("app.jobs.X", {})
    response = admin_web.post("/jobs/bulk/", {"action": "retry", "jid": [failed, waiting, "nosuchjob"]})
    assert messages_of(response) == ["Retried 1 job; 2 skipped (not failed (waiting); not found)"]


def test_cancel_refuses_to_orphan_dependents(admin_web: Any, qe: Client) -> None:
    """Canceling a job another job depends on is refused and changes nothing."""
    q = qe.queues["work"]
    first = q.put("app.jobs.X", {})
    q.put("app.jobs.Y", {}, depends=[first])
    response = post(admin_web, f"/jobs/job/{first}/cancel/")
    assert "other jobs depend on it" in messages_of(response)[0]
    assert first in qe.jobs


def test_group_retry_all_in_chunks_with_progress(admin_web: Any, qe: Client, failed_jobs: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry-all works through the group in chunks in the background and records progress."""
    monkeypatch.setattr(bulk, "CHUNK", 7)
    jids = failed_jobs(30)
    response = admin_web.post("/jobs/failed/work-ValueError/retry-all/")
    assert "Retrying all 30 jobs of work-ValueError in chunks of 7" in messages_of(response)[0]
    op = bulk.recent(qe)[0]
    assert bulk.wait(op["id"], 30)
    rec = bulk.get(qe, op["id"])
    assert rec is not None and (rec["state"], rec["done"], rec["skipped"], rec["percent"]) == ("done", 30, 0, 100)
    assert qe.jobs.failed() == {} and all(qe.jobs[j].state.value == "waiting" for j in jids)
    page = admin_web.get("/jobs/failed/").content.decode()
    assert f'data-op="{op["id"]}"' in page and '<progress class="progress" max="100" value="100">' in page
    assert AuditEntry.objects.get(action="retry").count == 30


def test_group_operation_does_not_loop_on_jobs_that_fail_again(qe: Client, failed_jobs: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The number of jobs is fixed when it starts: a job that fails again is not retried twice."""
    monkeypatch.setattr(bulk, "CHUNK", 5)
    failed_jobs(10)
    op = bulk.start(qe, "retry", "work-ValueError", None, "t")
    assert bulk.wait(op["id"], 30)
    for job in qe.queues["work"].pop(10):       # every retried job fails again at once
        job.fail("work-ValueError", "again")
    assert qe.jobs.failed() == {"work-ValueError": 10}
    rec = bulk.get(qe, op["id"])
    assert rec is not None and rec["done"] == 10


def test_group_cancel_and_move_all(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """Cancel-all deletes the group's jobs; move-all sends them to another queue."""
    failed_jobs(5, group="a-Error")
    moved = failed_jobs(3, group="b-Error")
    admin_web.post("/jobs/failed/a-Error/cancel-all/")
    admin_web.post("/jobs/failed/b-Error/move-all/", {"queue": "rescue"})
    for op in bulk.recent(qe):
        assert bulk.wait(op["id"], 30)
    assert qe.jobs.failed() == {}
    assert [qe.jobs[j].queue_name for j in moved] == ["rescue"] * 3


def test_group_move_without_a_queue_is_refused(admin_web: Any, qe: Client, failed_jobs: Any,
                                               redis_conn: redis.Redis) -> None:
    """Move-all needs a queue: an error naming it, nothing started."""
    failed_jobs(2)
    before = snapshot(redis_conn)
    response = admin_web.post("/jobs/failed/work-ValueError/move-all/", {"queue": ""})
    assert "queue: name the queue" in messages_of(response)[0]
    assert snapshot(redis_conn) == before


@pytest.mark.parametrize(("url", "data", "perm"), [
    ("/jobs/job/{jid}/retry/", {}, "retry_jobs"),
    ("/jobs/job/{jid}/cancel/", {}, "cancel_jobs"),
    ("/jobs/job/{jid}/move/", {"queue": "x"}, "move_jobs"),
    ("/jobs/job/{jid}/priority/", {"priority": "5"}, "edit_jobs"),
    ("/jobs/job/{jid}/timeout/", {}, "edit_jobs"),
    ("/jobs/job/{jid}/track/", {}, "edit_jobs"),
    ("/jobs/job/{jid}/tag/", {"tags": "a"}, "edit_jobs"),
    ("/jobs/job/{jid}/undepend/", {"all": "1"}, "edit_jobs"),
    ("/jobs/job/{jid}/unrecur/", {}, "edit_jobs"),
    ("/jobs/bulk/", {"action": "retry", "jid": "{jid}"}, "retry_jobs"),
    ("/jobs/bulk/", {"action": "cancel", "jid": "{jid}"}, "cancel_jobs"),
    ("/jobs/bulk/", {"action": "move", "jid": "{jid}", "queue": "x"}, "move_jobs"),
    ("/jobs/queue/work/pause/", {}, "pause_queues"),
    ("/jobs/failed/work-ValueError/retry-all/", {}, "retry_jobs"),
    ("/jobs/failed/work-ValueError/cancel-all/", {}, "cancel_jobs"),
    ("/jobs/failed/work-ValueError/move-all/", {"queue": "x"}, "move_jobs"),
    ("/jobs/config/set/", {"option": "heartbeat", "value": "5"}, "edit_config"),
])
def test_every_action_needs_its_permission(user_with: Callable[..., Any], qe: Client, failed_jobs: Any,
                                           redis_conn: redis.Redis, url: str, data: dict[str, str], perm: str) -> None:
    """Staff without the permission get 403 and nothing changes; with it, the action runs."""
    jid = failed_jobs(1)[0]
    url = url.format(jid=jid)
    data = {k: v.format(jid=jid) for k, v in data.items()}
    others = [p for p in ("retry_jobs", "cancel_jobs", "move_jobs", "pause_queues", "edit_jobs", "edit_config")
              if p != perm]
    before = snapshot(redis_conn)
    assert user_with(*others).post(url, data).status_code == 403
    assert snapshot(redis_conn) == before and not AuditEntry.objects.exists()
    assert user_with(perm).post(url, data).status_code == 303


def test_read_only_mode_hides_and_refuses_actions(admin_web: Any, qe: Client, failed_jobs: Any, settings: Any,
                                                  redis_conn: redis.Redis) -> None:
    """READ_ONLY: no action buttons or checkboxes, and every POST is refused, even for superusers."""
    jid = failed_jobs(1)[0]
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "READ_ONLY": True}
    html = admin_web.get(f"/jobs/job/{jid}/").content.decode()
    assert 'data-action="retry"' not in html and "read-only" in html
    group = admin_web.get("/jobs/failed/work-ValueError/").content.decode()
    assert 'type="checkbox" name="jid"' not in group and "Retry all" not in group
    before = snapshot(redis_conn)
    for url in (f"/jobs/job/{jid}/retry/", "/jobs/queue/work/pause/", "/jobs/failed/work-ValueError/retry-all/"):
        assert admin_web.post(url).status_code == 403
    assert snapshot(redis_conn) == before


def test_actions_are_post_only(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """A GET never changes anything."""
    jid = failed_jobs(1)[0]
    assert admin_web.get(f"/jobs/job/{jid}/retry/").status_code == 405
    assert admin_web.get("/jobs/queue/work/pause/").status_code == 405
    assert qe.jobs[jid].state.value == "failed"


def test_csrf_is_enforced(user_with: Callable[..., Any], qe: Client, failed_jobs: Any) -> None:
    """A POST without the CSRF token is refused."""
    jid = failed_jobs(1)[0]
    web = user_with(superuser=True, csrf=True)
    assert web.post(f"/jobs/job/{jid}/retry/").status_code == 403
    assert qe.jobs[jid].state.value == "failed"


def test_anonymous_and_non_staff_are_refused(client: Any, user_with: Callable[..., Any], qe: Client,
                                             failed_jobs: Any) -> None:
    """Anonymous users are sent to log in; signed-in non-staff get 403, for pages and actions."""
    jid = failed_jobs(1)[0]
    response = client.get("/jobs/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.post(f"/jobs/job/{jid}/retry/").status_code == 302
    plain = user_with(staff=False)
    assert plain.get("/jobs/").status_code == 403
    assert plain.post(f"/jobs/job/{jid}/retry/").status_code == 403
    assert qe.jobs[jid].state.value == "failed"


def test_view_permission_can_be_required(user_with: Callable[..., Any], settings: Any) -> None:
    """With REQUIRE_VIEW_PERMISSION, staff also need jobadmin.view_dashboard."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "REQUIRE_VIEW_PERMISSION": True}
    assert user_with().get("/jobs/").status_code == 403
    assert user_with("view_dashboard").get("/jobs/").status_code == 200


def test_bad_input_names_the_problem_and_changes_nothing(admin_web: Any, qe: Client, redis_conn: redis.Redis
                                                         ) -> None:
    """Bad priority, empty tags, empty selection, bad jid: clear errors, no change."""
    jid = qe.queues["work"].put("app.jobs.X", {})
    before = snapshot(redis_conn)
    cases = [
        (f"/jobs/job/{jid}/priority/", {"priority": "high"}, "priority must be a whole number"),
        (f"/jobs/job/{jid}/priority/", {"priority": "99999"}, "priority"),
        (f"/jobs/job/{jid}/tag/", {"tags": " , "}, "tags: give at least one tag"),
        (f"/jobs/job/{jid}/move/", {"queue": ""}, "queue"),
        ("/jobs/bulk/", {"action": "cancel"}, "jids: select at least one job"),
        ("/jobs/bulk/", {"action": "cancel", "jid": "bad{jid}"}, "jid"),
        ("/jobs/bulk/", {"action": "explode", "jid": jid}, "Choose an action"),
        ("/jobs/config/set/", {"option": "heartbeat", "value": "  "}, "value must not be empty"),
    ]
    for url, data, expected in cases:
        response = admin_web.post(url, data)
        text = " ".join(messages_of(response))
        assert expected in text, (url, data, text)
    assert snapshot(redis_conn) == before and not AuditEntry.objects.exists()


def test_next_must_stay_on_this_site(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """An off-site ``next`` is ignored (no open redirect)."""
    jid = failed_jobs(1)[0]
    response = admin_web.post(f"/jobs/job/{jid}/retry/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/jobs/job/{jid}/"


def test_data_and_messages_render_inert(admin_web: Any, qe: Client) -> None:
    """HTML and JavaScript in job data, tags, classes and failure messages are escaped everywhere."""
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    q = qe.queues["work"]
    jid = q.put("app.<b>Evil</b>", {"html": evil}, tags=["<i>t</i>"], retries=0)
    job = q.pop()
    assert job is not None
    job.fail("work-<svg onload=alert(3)>", evil)
    for path in (f"/jobs/job/{jid}/", "/jobs/failed/", "/jobs/", "/jobs/search/?state=failed",
                 f"/jobs/failed/{'work-<svg onload=alert(3)>'}/", "/jobs/tags/?tag=<i>t</i>"):
        html = admin_web.get(path).content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html and "<svg onload" not in html, path
        assert "<b>Evil</b>" not in html and "<i>t</i>" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_web.get(f"/jobs/job/{jid}/").content.decode()


def test_retrying_any_member_keeps_the_group_in_order(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """The group index loses exactly the retried jobs, whether they were its newest, its oldest
    or in between (the engine removes them scanning from the nearer end)."""
    jids = []
    for _ in range(7):
        jids += failed_jobs(1)
    newest_first = list(reversed(jids))
    for jid in (jids[0], jids[-1], jids[3]):
        admin_web.post(f"/jobs/job/{jid}/retry/")
    left = [j.jid for j in qe.jobs.failed("work-ValueError", 0, 10)["jobs"]]
    assert left == [j for j in newest_first if j not in (jids[0], jids[-1], jids[3])]
    assert qe.jobs.failed() == {"work-ValueError": 4}
