"""Act on every job matching the explorer's query: exactly the matching jobs change, the set is
fixed when the operation starts, jobs that stopped matching are skipped with a reason, it can be
stopped mid-way, permissions, READ_ONLY, CSRF, the audit entry, the review step, a query with no
filter, and hostile legal names in the query and in the move target.

Operations run in a thread of the test process; chunk sizes are made small and the runner's
``before_chunk`` seam acts at a chosen chunk, so nothing waits on a clock.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

import pytest
import redis

from jobadmin import bulk
from jobadmin.explorer import parse, quote
from jobadmin.models import AuditEntry
from queueengine import Client, InvalidArgument
from tests.jobadmin.conftest import snapshot

pytestmark = pytest.mark.django_db

QUERY = "state:failed queue:emails class:app.Send tag:vip data.user.id:7"
HOSTILE = ["a/b", "50%", "has space", "it's \"q\"", "café"]


def make_job(qe: Client, queue: str, fate: str, klass: str = "app.Send", user: int = 7, tags: tuple[str, ...] = ("vip",),
             n: int = 0, priority: int = 0) -> str:
    """One job in ``queue`` ending ``fate`` (waiting, failed, complete). The job is popped to
    fail or complete it: its queue must hold no waiting job of its priority or above."""
    q = qe.queues[queue]
    jid = q.put(klass, {"user": {"id": user}, "n": n}, tags=list(tags), retries=0, priority=priority)
    if fate in ("failed", "complete"):
        job = q.pop()
        assert job is not None and job.jid == jid
        job.fail(f"{queue}-Error", "it broke") if fate == "failed" else job.complete()
    return jid


def world(qe: Client, matching: int = 7) -> dict[str, list[str]]:
    """Jobs the QUERY matches, and near misses that differ in one thing each."""
    hits = [make_job(qe, "emails", "failed", n=i) for i in range(matching)]
    misses = [
        make_job(qe, "reports", "failed"),                        # another queue
        make_job(qe, "emails", "failed", klass="app.SendLater"),  # another class (a prefix of it matches)
        make_job(qe, "emails", "failed", tags=("other",)),        # another tag
        make_job(qe, "emails", "failed", user=8),                 # other data
        make_job(qe, "emails", "complete"),                       # another state
        make_job(qe, "emails", "waiting"),                        # another state
        make_job(qe, "reports", "waiting", klass="app.Other", tags=()),
    ]
    return {"hits": hits, "misses": misses}


def records(conn: redis.Redis, qe: Client, jids: list[str]) -> dict[str, Any]:
    """Each job's record as stored (any change shows)."""
    return {jid: conn.hgetall(qe.keys.job(jid)) for jid in jids}


def run(qe: Client, kind: str, text: str = QUERY, **arg: Any) -> dict[str, Any]:
    """Start an operation as the view does, wait for it, return its final record."""
    op = bulk.start_matching(qe, bulk.Action.make(kind, **arg), text, parse(text, qe.now()).find_kwargs(), "tester")
    assert bulk.wait(op["id"], 60)
    rec = bulk.get(qe, op["id"])
    assert rec is not None
    return rec


EFFECTS: dict[str, tuple[dict[str, Any], Callable[[Client, str], bool]]] = {
    "retry": ({}, lambda qe, jid: qe.jobs[jid].state.value == "waiting" and qe.jobs[jid].queue_name == "emails"),
    "cancel": ({}, lambda qe, jid: jid not in qe.jobs),
    "move": ({"queue": "a/b"}, lambda qe, jid: (qe.jobs[jid].queue_name, qe.jobs[jid].state.value) == ("a/b", "waiting")),
    "priority": ({"priority": "9"}, lambda qe, jid: qe.jobs[jid].priority == 9),
    "tag": ({"tags": ["x y", "50%"]}, lambda qe, jid: {"x y", "50%", "vip"} <= set(qe.jobs[jid].tags)),
    "untag": ({"tags": ["vip"]}, lambda qe, jid: "vip" not in qe.jobs[jid].tags),
}


@pytest.mark.parametrize("kind", sorted(EFFECTS))
def test_exactly_the_matching_jobs_change(qe: Client, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch,
                                          kind: str) -> None:
    """Every job the query matches gets the action, in chunks; no other job's record changes."""
    monkeypatch.setattr(bulk, "CHUNK", 3)
    jobs = world(qe)
    before = records(redis_conn, qe, jobs["misses"])
    arg, effect = EFFECTS[kind]
    rec = run(qe, kind, **arg)
    assert (rec["state"], rec["found"], rec["total"], rec["done"], rec["skipped"]) == ("done", 7, 7, 7, 0)
    assert rec["percent"] == 100 and rec["scope"] == "match" and rec["query"] == QUERY
    assert all(effect(qe, jid) for jid in jobs["hits"]), kind
    assert records(redis_conn, qe, jobs["misses"]) == before


def test_the_match_set_is_fixed_when_it_starts(qe: Client, redis_conn: redis.Redis,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs that start matching after the operation found its jobs are left alone."""
    monkeypatch.setattr(bulk, "CHUNK", 2)
    jobs = world(qe, matching=5)
    late: list[str] = []

    def put_more(op_id: str, number: int) -> None:
        if number == 0:
            late.extend(make_job(qe, "emails", "failed", n=100 + i, priority=50) for i in range(3))

    monkeypatch.setattr(bulk, "before_chunk", put_more)
    rec = run(qe, "retry")
    assert (rec["state"], rec["total"], rec["done"]) == ("done", 5, 5)
    assert all(qe.jobs[j].state.value == "waiting" for j in jobs["hits"])
    assert len(late) == 3 and all(qe.jobs[j].state.value == "failed" for j in late)


def test_jobs_that_no_longer_match_are_skipped_with_the_reason(qe: Client, monkeypatch: pytest.MonkeyPatch,
                                                               settings: Any) -> None:
    """Changed after the start: retried elsewhere (no longer failed) or deleted; the engine's own
    refusals (a retry of a waiting job) are reasons too. The record counts them by reason."""
    monkeypatch.setattr(bulk, "CHUNK", 2)
    jobs = world(qe, matching=6)
    hits = jobs["hits"]

    def change_some(op_id: str, number: int) -> None:
        if number == 0:
            qe.operator.retry(hits[4:5])     # waiting now: no longer state:failed
            qe.cancel(hits[5])

    monkeypatch.setattr(bulk, "before_chunk", change_some)
    rec = run(qe, "cancel")
    assert (rec["state"], rec["total"], rec["done"], rec["skipped"]) == ("done", 6, 4, 2)
    assert dict(rec["reasons_list"]) == {bulk.NO_LONGER_MATCHES: 1, bulk.GONE: 1}
    assert hits[4] in qe.jobs and all(j not in qe.jobs for j in hits[:4])
    monkeypatch.setattr(bulk, "before_chunk", None)
    # retry every job of queue emails: the waiting and complete ones are refused by the engine
    rec = run(qe, "retry", text="queue:emails")
    assert dict(rec["reasons_list"]) == {"not failed (waiting)": 2, "not failed (complete)": 1}
    assert rec["done"] == 3 and rec["skipped"] == 3


@pytest.mark.django_db(transaction=True)
def test_stop_from_the_page_before_the_next_chunk(user_with: Callable[..., Any], qe: Client,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The Stop button (any server process: a flag in the record) ends the thread before its next
    chunk: state canceled, what was done stays done, the rest is untouched, the audit says so."""
    monkeypatch.setattr(bulk, "CHUNK", 2)
    hits = world(qe, matching=9)["hits"]
    web = user_with("retry_jobs")
    outsider = user_with("cancel_jobs")
    answers: list[int] = []

    def stop_at_third(op_id: str, number: int) -> None:
        if number == 2:
            answers.append(outsider.post(f"/jobs/operations/{op_id}/stop/").status_code)
            answers.append(web.post(f"/jobs/operations/{op_id}/stop/", {"next": "/jobs/search/"}).status_code)

    monkeypatch.setattr(bulk, "before_chunk", stop_at_third)
    web.post("/jobs/search/act/start/", {"q": QUERY, "action": "retry"})
    op = bulk.recent(qe, scope="match")[0]
    assert bulk.wait(op["id"], 60)
    rec = bulk.get(qe, op["id"])
    assert rec is not None
    assert answers == [403, 303]      # the stop needs the permission of what the operation does
    assert (rec["state"], rec["done"], rec["stop"], rec["stopped_by"]) == ("canceled", 4, "1", "user1")
    states = [qe.jobs[j].state.value for j in hits]
    assert states.count("waiting") == 4 and states.count("failed") == 5
    entry = AuditEntry.objects.get(action="retry")
    assert entry.count == 4 and "canceled" in entry.detail and len(entry.jids) == 4
    page = web.get(f"/jobs/operations/{op['id']}/").content.decode()
    assert 'data-state="canceled"' in page and "stopped by user1" in page
    # an operation that ended cannot be stopped again; an unknown one is 404
    assert "already ended" in str(web.post(f"/jobs/operations/{op['id']}/stop/", follow=True).content)
    assert web.post("/jobs/operations/nope/stop/").status_code == 404


def test_a_group_operation_can_be_stopped_too(qe: Client, failed_jobs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One runner for both kinds: a failure group's retry-all stops the same way."""
    monkeypatch.setattr(bulk, "CHUNK", 3)
    failed_jobs(10)
    monkeypatch.setattr(bulk, "before_chunk",
                        lambda op_id, n: bulk.request_stop(qe, op_id, "tester") if n == 1 else None)
    op = bulk.start(qe, "retry", "work-ValueError", None, "t")
    assert bulk.wait(op["id"], 60)
    rec = bulk.get(qe, op["id"])
    assert rec is not None and (rec["state"], rec["done"], rec["scope"]) == ("canceled", 3, "group")
    assert qe.jobs.failed() == {"work-ValueError": 7}


@pytest.mark.django_db(transaction=True)
def test_one_audit_entry_per_operation(admin_web: Any, qe: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Who, what, the query, how many done and skipped (by reason), the jids done."""
    monkeypatch.setattr(bulk, "CHUNK", 4)
    jobs = world(qe)
    make_job(qe, "emails", "waiting", n=50)
    response = admin_web.post("/jobs/search/act/start/", {"q": "queue:emails tag:vip", "action": "retry"})
    assert response.status_code == 303
    op = bulk.recent(qe, scope="match")[0]
    assert bulk.wait(op["id"], 60)
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.action, entry.target, entry.namespace) == ("user1", "retry", "queue:emails tag:vip",
                                                                             "test")
    assert entry.count == 9 and sorted(entry.jids) == sorted([*jobs["hits"], jobs["misses"][3]] + [jobs["misses"][1]])
    assert "Retry every job matching queue:emails tag:vip" in entry.detail
    assert "9 done, 3 skipped (not failed (waiting): 2; not failed (complete): 1)" in entry.detail
    assert op["id"] in entry.detail and "done" in entry.detail


@pytest.mark.django_db(transaction=True)
def test_a_group_operation_completes_its_audit_entry(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    failed_jobs(5)
    admin_web.post("/jobs/failed/work-ValueError/retry-all/")
    assert bulk.wait(bulk.recent(qe)[0]["id"], 60)
    entry = AuditEntry.objects.get()
    assert entry.count == 5 and len(entry.jids) == 5
    assert "Retry every job of failure group work-ValueError" in entry.detail and "5 done, 0 skipped" in entry.detail


def review_url(text: str, action: str, **extra: str) -> str:
    return "/jobs/search/act/?" + urlencode({"q": text, "action": action, **extra})


def test_the_review_says_what_will_happen_and_changes_nothing(admin_web: Any, qe: Client,
                                                              redis_conn: redis.Redis) -> None:
    world(qe)
    before = snapshot(redis_conn)
    page = admin_web.get(review_url("state:failed queue:emails", "retry")).content.decode()
    assert "<strong>Retry every job matching <code>state:failed queue:emails</code></strong>" in page
    assert "10 jobs match now" in page and 'name="everything"' not in page
    assert 'action="/jobs/search/act/start/"' in page and "hx-post" not in page   # a page of its own
    panel = admin_web.get(review_url("queue:emails", "move", queue="a/b"), HTTP_HX_REQUEST="true").content.decode()
    assert "<!doctype" not in panel and 'hx-post="/jobs/search/act/start/"' in panel
    assert "Move every job matching <code>queue:emails</code> to queue a/b" in panel
    tags = admin_web.get(review_url("tag:vip", "tag", tags="x, y")).content.decode()
    assert "Add tags x, y to every job matching <code>tag:vip</code>" in tags
    assert snapshot(redis_conn) == before


@pytest.mark.parametrize(("params", "error"), [
    ({"q": "state:nonsense", "action": "retry"}, "state: must be one of"),
    ({"q": "colour:red", "action": "retry"}, "unknown qualifier"),
    ({"q": "queue:emails", "action": "move"}, "queue: name the queue"),
    ({"q": "queue:emails", "action": "move", "queue": "a\x00b"}, "queue"),
    ({"q": "queue:emails", "action": "priority", "priority": "high"}, "priority must be a whole number"),
    ({"q": "queue:emails", "action": "priority", "priority": "99999"}, "priority"),
    ({"q": "queue:emails", "action": "tag", "tags": " , "}, "tags: give at least one tag"),
    ({"q": "", "action": "retry"}, "type the namespace's name"),
    ({"q": "", "action": "retry", "everything": "not-the-namespace"}, "type the namespace's name"),
])
def test_bad_requests_say_why_and_start_nothing(admin_web: Any, qe: Client, redis_conn: redis.Redis,
                                                params: dict[str, str], error: str) -> None:
    world(qe)
    before = snapshot(redis_conn)
    response = admin_web.post("/jobs/search/act/start/", params)
    assert response.status_code == 400
    assert error in html.unescape(response.content.decode())
    htmx = admin_web.post("/jobs/search/act/start/", params, HTTP_HX_REQUEST="true")
    assert htmx["HX-Retarget"] == "#match-review" and error in html.unescape(htmx.content.decode())
    assert snapshot(redis_conn) == before


def test_an_unknown_action_is_a_bad_request(admin_web: Any, qe: Client) -> None:
    assert admin_web.get(review_url("queue:x", "explode")).status_code == 400
    assert admin_web.post("/jobs/search/act/start/", {"q": "queue:x", "action": "explode"}).status_code == 400
    with pytest.raises(InvalidArgument, match="no filter"):
        bulk.start_matching(qe, bulk.Action.make("retry"), "", {}, "t")


def test_a_query_with_no_filter_needs_the_namespace_typed(admin_web: Any, qe: Client) -> None:
    """Every job of the namespace only when the operator typed its name on the review step."""
    jobs = world(qe)
    review = admin_web.get(review_url("", "priority", priority="3")).content.decode()
    assert 'name="everything"' in review and "every job</strong> in namespace <code>test</code>" in review
    response = admin_web.post("/jobs/search/act/start/", {"q": "", "action": "priority", "priority": "3",
                                                          "everything": "test"})
    assert response.status_code == 303
    assert bulk.wait(bulk.recent(qe, scope="match")[0]["id"], 60)
    every = jobs["hits"] + jobs["misses"]
    assert [qe.jobs[j].priority for j in every if qe.jobs[j].state.value != "complete"] == [3] * (len(every) - 1)


def test_the_explorer_offers_the_actions_the_user_may_take(user_with: Callable[..., Any], qe: Client,
                                                           settings: Any) -> None:
    world(qe)
    url = "/jobs/search/?" + urlencode({"q": QUERY})
    admin = user_with(superuser=True).get(url).content.decode()
    options = re.findall(r'<option value="(\w+)">', admin.split('id="match-action"')[1].split("</select>")[0])
    assert options == list(bulk.MATCH_KINDS) and 'id="match-act"' in admin
    assert f'name="q" value="{html.escape(QUERY)}"' in admin
    retry_only = user_with("retry_jobs").get(url).content.decode()
    assert re.findall(r'<option value="(\w+)">', retry_only) == ["retry"] and 'name="queue"' not in retry_only
    assert 'id="match-act"' not in user_with().get(url).content.decode()
    assert 'id="match-act"' not in user_with(superuser=True).get("/jobs/search/").content.decode()   # no query yet
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "READ_ONLY": True}
    assert 'id="match-act"' not in user_with(superuser=True).get(url).content.decode()


@pytest.mark.parametrize(("kind", "perm", "extra"), [
    ("retry", "retry_jobs", {}), ("cancel", "cancel_jobs", {}), ("move", "move_jobs", {"queue": "x"}),
    ("priority", "edit_jobs", {"priority": "2"}), ("tag", "edit_jobs", {"tags": "t"}),
    ("untag", "edit_jobs", {"tags": "vip"}),
])
def test_each_action_needs_its_permission(user_with: Callable[..., Any], qe: Client, redis_conn: redis.Redis,
                                          kind: str, perm: str, extra: dict[str, str]) -> None:
    """403 for the review and the start without it (nothing changes); with it, it runs."""
    world(qe)
    others = [p for p in ("retry_jobs", "cancel_jobs", "move_jobs", "edit_jobs", "pause_queues", "edit_config",
                          "create_jobs", "edit_waiting_jobs") if p != perm]
    without = user_with(*others)
    before = snapshot(redis_conn)
    assert without.get(review_url(QUERY, kind, **extra)).status_code == 403
    assert without.post("/jobs/search/act/start/", {"q": QUERY, "action": kind, **extra}).status_code == 403
    assert snapshot(redis_conn) == before and not AuditEntry.objects.exists()
    allowed = user_with(perm)
    assert allowed.get(review_url(QUERY, kind, **extra)).status_code == 200
    assert allowed.post("/jobs/search/act/start/", {"q": QUERY, "action": kind, **extra}).status_code == 303


def test_read_only_refuses_everything(admin_web: Any, qe: Client, redis_conn: redis.Redis, settings: Any) -> None:
    world(qe)
    running = bulk.start_matching(qe, bulk.Action.make("retry"), QUERY, parse(QUERY, qe.now()).find_kwargs(), "t")
    assert bulk.wait(running["id"], 60)
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "READ_ONLY": True}
    before = snapshot(redis_conn)
    assert admin_web.get(review_url(QUERY, "retry")).status_code == 403
    assert admin_web.post("/jobs/search/act/start/", {"q": QUERY, "action": "retry"}).status_code == 403
    assert admin_web.post(f"/jobs/operations/{running['id']}/stop/").status_code == 403
    assert snapshot(redis_conn) == before


def test_csrf_and_post_only(user_with: Callable[..., Any], qe: Client, redis_conn: redis.Redis) -> None:
    world(qe)
    before = snapshot(redis_conn)
    strict = user_with(superuser=True, csrf=True)
    assert strict.post("/jobs/search/act/start/", {"q": QUERY, "action": "retry"}).status_code == 403
    assert user_with(superuser=True).get("/jobs/search/act/start/").status_code == 405
    assert strict.post(review_url(QUERY, "retry")).status_code in (403, 405)
    assert snapshot(redis_conn) == before


def test_htmx_start_answers_with_the_operation_as_it_started(admin_web: Any, qe: Client) -> None:
    """From the explorer's review panel: the operations section (the new one first, as it
    started, polling itself) replaces the old one and the review panel is cleared."""
    world(qe)
    response = admin_web.post("/jobs/search/act/start/", {"q": QUERY, "action": "retry"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    op = bulk.recent(qe, scope="match")[0]
    assert body.lstrip().startswith('<section id="operations" hx-get="/jobs/search/" hx-trigger="every 1s"')
    assert f'data-op="{op["id"]}" data-state="finding"' in body and "Finding the matching jobs" in body
    assert '<div id="match-review" hx-swap-oob="true"></div>' in body
    assert f'action="/jobs/operations/{op["id"]}/stop/"' in body     # a Stop button while it runs
    assert bulk.wait(op["id"], 60)
    polled = admin_web.get("/jobs/search/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="operations").content.decode()
    assert polled.lstrip().startswith('<section id="operations">') and f'data-op="{op["id"]}" data-state="done"' in polled
    assert "7 done" in polled.replace("<span data-op-done>", "").replace("</span>", "")
    live = admin_web.get("/jobs/search/?q=x", HTTP_X_LIVE_RENDER="1").content.decode()
    assert live.lstrip().startswith('<section id="operations"') and "explorer_results" not in live


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_in_the_query_and_the_move_target(admin_web: Any, qe: Client, redis_conn: redis.Redis,
                                                        name: str) -> None:
    """A queue and a tag with any legal name in the query; a queue with any legal name as the
    target; the review, the start, the progress and the links all carry them intact."""
    target = HOSTILE[(HOSTILE.index(name) + 1) % len(HOSTILE)]
    hits = [make_job(qe, name, "failed", tags=(name,), n=i) for i in range(3)]
    misses = [make_job(qe, name, "failed", tags=("plain",)), make_job(qe, "plain", "failed", tags=(name,))]
    before = records(redis_conn, qe, misses)
    text = f"queue:{quote(name)} tag:{quote(name)}"
    review = admin_web.get(review_url(text, "move", queue=target)).content.decode()
    assert f"Move every job matching <code>{html.escape(text)}</code> to queue {html.escape(target)}" in review
    assert "3 jobs match now" in review
    hidden = dict(re.findall(r'<input type="hidden" name="(q|queue|action)" value="([^"]*)">', review))
    assert {k: html.unescape(v) for k, v in hidden.items()} == {"q": text, "queue": target, "action": "move"}
    response = admin_web.post("/jobs/search/act/start/", {"q": text, "action": "move", "queue": target})
    assert response.status_code == 303 and response["Location"] == "/jobs/search/?" + urlencode({"q": text})
    op = bulk.recent(qe, scope="match")[0]
    assert bulk.wait(op["id"], 60)
    assert [(qe.jobs[j].queue_name, qe.jobs[j].state.value) for j in hits] == [(target, "waiting")] * 3
    assert records(redis_conn, qe, misses) == before
    page = admin_web.get(response["Location"]).content.decode()
    assert f'href="/jobs/search/?q={html.escape(quote_url(text))}"' in page
    assert "Move every job matching <a" in page and f"to queue {html.escape(target)}" in page


def quote_url(text: str) -> str:
    """``{{ value|urlencode }}`` of Django (``/`` kept)."""
    return url_quote(text, safe="/")


def test_a_stop_while_finding_ends_before_any_chunk(qe: Client) -> None:
    """The stop flag is read between find's pages too: nothing is collected or acted on."""
    world(qe)
    source = bulk.MatchSource(parse(QUERY, qe.now()).find_kwargs(), stop=lambda: True)
    with pytest.raises(bulk.Stopped):
        source.prepare(qe, lambda found: None)
    assert source.jids == []
    source = bulk.MatchSource(parse(QUERY, qe.now()).find_kwargs())
    seen: list[int] = []
    assert source.prepare(qe, seen.append) == 7 and seen[-1] == 7 and len(set(source.jids)) == 7


def test_an_operation_whose_server_stopped_shows_interrupted_and_can_be_closed(admin_web: Any, qe: Client) -> None:
    """A record still "finding" long after its last write, with no thread here: interrupted;
    Stop marks it canceled at once."""
    qe.operator.progress.create("deadbeef", {"id": "deadbeef", "scope": "match", "kind": "retry", "query": QUERY,
                                             "group": "", "state": "finding", "updated": 1.0, "started": 1.0,
                                             "user": "gone", "total": 0, "done": 0, "skipped": 0})
    rec = bulk.get(qe, "deadbeef")
    assert rec is not None and rec["state"] == "interrupted" and not rec["running"]
    page = admin_web.get("/jobs/search/").content.decode()
    assert 'data-state="interrupted"' in page and 'action="/jobs/operations/deadbeef/stop/"' in page
    assert admin_web.post("/jobs/operations/deadbeef/stop/").status_code == 303
    rec = bulk.get(qe, "deadbeef")
    assert rec is not None and (rec["state"], rec["stopped_by"]) == ("canceled", "user1")


def test_each_page_lists_its_own_kind_of_operation(admin_web: Any, qe: Client, failed_jobs: Any) -> None:
    """The failures pages list group operations; the explorer lists "act on all matching"."""
    failed_jobs(2)
    group_op = bulk.start(qe, "retry", "work-ValueError", None, "t")
    failed_jobs(2, group="other-Error", queue="other")
    match_op = run(qe, "retry", text="queue:other")
    assert bulk.wait(group_op["id"], 60)
    failures = admin_web.get("/jobs/failed/").content.decode()
    explorer = admin_web.get("/jobs/search/").content.decode()
    assert f'data-op="{group_op["id"]}"' in failures and f'data-op="{match_op["id"]}"' not in failures
    assert f'data-op="{match_op["id"]}"' in explorer and f'data-op="{group_op["id"]}"' not in explorer
    detail = admin_web.get(f"/jobs/operations/{match_op['id']}/").content.decode()
    assert "Act on all matching" in detail and "Retry every job matching" in detail


def test_too_many_matches_fail_before_anything_changes(qe: Client, redis_conn: redis.Redis,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_MATCHES", 5)
    world(qe)
    before = {k: v for k, v in snapshot(redis_conn).items() if b"dash:" not in k}
    rec = run(qe, "cancel")
    assert (rec["state"], rec["done"]) == ("failed", 0) and "more than 5 jobs match" in rec["error"]
    assert {k: v for k, v in snapshot(redis_conn).items() if b"dash:" not in k} == before
