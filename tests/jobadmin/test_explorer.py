"""The explorer's query bar parser (every qualifier, quoting, errors), the explorer page and its
suggestions, the create and edit forms (permissions, audit, refusals explained in the form), the
worker page, due times and the dependency graph."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from django.test import Client as WebClient
from django.urls import reverse
from django.utils.html import escape
from hypothesis import given, settings
from hypothesis import strategies as st

from jobadmin.explorer import STATES, Query, QueryError, parse, quote
from jobadmin.models import AuditEntry
from queueengine import Client

NOW = 1_800_000_000.0


# ---------------------------------------------------------------------- the parser
def test_every_qualifier() -> None:
    q = parse('state:failed queue:emails class:app.jobs.Send tag:vip worker:web-1 data.user.id:7 text:"timeout" '
              "since:1h until:2027-02-01T08:00", NOW)
    assert q.find_kwargs() == {
        "state": "failed", "queue": "emails", "klass": "app.jobs.Send", "tag": "vip", "worker": "web-1",
        "data": {"user.id": 7}, "text": "timeout", "since": NOW - 3600, "until": 1801468800.0}


def test_quoting_and_values() -> None:
    q = parse(r'tag:"has space" queue:a:b worker:"say \"hi\" \\ there" data.id:"7" data.n:[1,2] data.ok:true '
              "data.none:null data.name:bob klass:app.*", NOW)
    assert q.tag == "has space" and q.queue == "a:b" and q.worker == 'say "hi" \\ there'
    assert q.data == {"id": "7", "n": [1, 2], "ok": True, "none": None, "name": "bob"}
    assert q.klass == "app.*"


def test_bare_words_are_text() -> None:
    assert parse('connection  reset "by peer"', NOW).text == "connection reset by peer"
    assert parse("", NOW).empty and parse("   ", NOW).find_kwargs() == {}


@pytest.mark.parametrize(("value", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800),
                                                ("1w", 604800), ("1h30m", 5400), ("0.5h", 1800)])
def test_durations_count_back_from_now(value: str, seconds: float) -> None:
    assert parse(f"since:{value}", NOW).since == NOW - seconds


def test_absolute_times() -> None:
    assert parse("since:2026-12-01", NOW).since == 1796083200.0
    assert parse("since:2026-12-01T08:00+01:00", NOW).since == 1796083200.0 + 7 * 3600
    assert parse("until:1796083200", NOW).until == 1796083200.0


@pytest.mark.parametrize(("text", "says", "at"), [
    ("colour:red", 'unknown qualifier "colour:"', 0),
    ("state:nope", "state: must be one of", 0),
    ('tag:vip text:"abc', "unterminated quote", 13),
    ("queue:a queue:b", "queue: is given twice", 8),
    ("since:1x", "is not a duration", 0),
    ("since:yesterday", "is not a duration", 0),
    ("data..a:1", "dot-separated", 0),
    ("data.x:", "needs a value", 0),
    ("data.x:1 data.x:2", "given twice", 9),
    ("state:", "needs a value", 0),
    ("class:*", "prefix before the *", 0),
    ('text:x "bare words"', "give the text once", 0),
    ("since:1h until:2h", "after until", 9),
    ("x" * 2001, "at most 2000", 2000),
])
def test_errors_say_what_and_where(text: str, says: str, at: int) -> None:
    with pytest.raises(QueryError) as info:
        parse(text, NOW)
    assert says in info.value.message and info.value.position == at


names = st.text(st.sampled_from('ab :"\\/é<>'), min_size=1, max_size=6).map(str.strip).filter(bool)


@settings(max_examples=200, deadline=None)
@given(state=st.none() | st.sampled_from(STATES), queue=st.none() | names, tag=st.none() | names,
       worker=st.none() | names, klass=st.none() | names, text=st.none() | names,
       data=st.dictionaries(st.sampled_from(["a", "b.c", "n"]), st.one_of(names, st.integers(), st.booleans(),
                                                                          st.none(), st.lists(st.integers(), max_size=2)),
                            max_size=2))
def test_the_written_form_parses_back(state: str | None, queue: str | None, tag: str | None, worker: str | None,
                                      klass: str | None, text: str | None, data: dict[str, Any]) -> None:
    """text_form() (what the URL carries) reads back as the same query, whatever the values hold."""
    q = Query(state=state, queue=queue, tag=tag, worker=worker, klass=None if klass == "*" else klass, text=text,
              data=data)
    assert parse(q.text_form(), NOW).find_kwargs() == q.find_kwargs()


def test_quote_only_when_needed() -> None:
    assert quote("emails") == "emails" and quote("has space") == '"has space"' and quote("7") == '"7"'


# ---------------------------------------------------------------------- the page

def _search(web: WebClient, query: str, **extra: str) -> str:
    response = web.get(reverse("jobadmin:search") + "?" + urlencode({"q": query, **extra}))
    assert response.status_code == 200
    return response.content.decode()


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-jid="([^"]+)"', html)


@pytest.mark.django_db
def test_the_explorer_finds_jobs_by_what_they_carry(admin_web: WebClient, qe: Client) -> None:
    q = qe.queues["emails"]
    seven = q.put("app.jobs.Send", {"user": {"id": 7}, "note": "timeout talking to smtp"}, tags=["vip"])
    q.put("app.jobs.Send", {"user": {"id": 8}}, tags=["vip"])
    other = qe.queues["reports"].put("app.jobs.Report", {"user": {"id": 7}}, delay=3600)
    html = _search(admin_web, "data.user.id:7")
    assert sorted(_rows(html)) == sorted([seven, other]) and "search complete" in html
    assert _rows(_search(admin_web, "class:app.jobs.Send data.user.id:7 tag:vip")) == [seven]
    assert _rows(_search(admin_web, "timeout")) == [seven]
    scheduled = _search(admin_web, "state:scheduled")
    assert _rows(scheduled) == [other] and re.search(r"due in (59 m 5\d s|1 h 0 m)", scheduled)
    assert f'href="{reverse("jobadmin:job", args=[seven])}"' in _search(admin_web, "tag:vip")


@pytest.mark.django_db
def test_a_bad_query_is_explained_with_a_caret(admin_web: WebClient, qe: Client) -> None:
    html = _search(admin_web, "state:failed colour:red")
    assert 'unknown qualifier &quot;colour:&quot;' in html and "state:failed colour:red\n" + " " * 13 + "^" in html
    assert "Looked at" not in html
    refused = _search(admin_web, "data.n:1e999")   # parsed, then refused by the engine (JSON has no infinity)
    assert "data.n" in refused and "inf" in refused and "Looked at" not in refused


@pytest.mark.django_db
def test_results_stream_in_and_page_by_cursor(admin_web: WebClient, qe: Client, settings: Any) -> None:
    """More than a page: the first response has a page-sized part and a next link carrying the
    cursor; a continuation (more=1) answers rows and an out-of-band progress line."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "PAGE_SIZE": 10}
    jids = qe.queues["bulk"].put_many([("app.jobs.Bulk", {"i": i}) for i in range(25)])
    first = _search(admin_web, "class:app.jobs.Bulk")
    seen = _rows(first)
    assert len(seen) == 10 and "page full" in first
    next_url = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_url
    second = admin_web.get(next_url.group(1).replace("&amp;", "&")).content.decode()
    third_url = re.search(r'<a href="([^"]+)" rel="next">', second)
    assert third_url
    third = admin_web.get(third_url.group(1).replace("&amp;", "&")).content.decode()
    seen += _rows(second) + _rows(third)
    assert sorted(seen) == sorted(jids) and "search complete" in third
    more = admin_web.get(reverse("jobadmin:search") + "?" + urlencode({"q": "class:app.jobs.Bulk", "more": "1",
                                                                      "shown": "3", "scanned": "3"}),
                         HTTP_HX_REQUEST="true").content.decode()
    assert not more.lstrip().startswith("<!doctype") and 'id="explorer-progress"' in more
    assert 'hx-swap-oob="true"' in more and len(_rows(more)) == 7


@pytest.mark.django_db
def test_the_old_search_parameters_still_work(admin_web: WebClient, qe: Client) -> None:
    jid = qe.queues["old"].put("app.billing.Invoice", {}, tags=["eu"])
    html = admin_web.get(reverse("jobadmin:search") + "?queue=old&klass=app.billing.*&tag=eu").content.decode()
    assert _rows(html) == [jid] and 'value="queue:old tag:eu class:app.billing.*"' in html


@pytest.mark.django_db
def test_awkward_names_round_trip_through_the_query(admin_web: WebClient, qe: Client) -> None:
    """A queue and a tag with quotes, spaces, slashes and markup: found, shown escaped, and each
    tag links to a search that finds it again."""
    queue, tag = 'it\'s "q"/<b>', 'has space <i>"x"'
    jid = qe.queues[queue].put("app.jobs.Odd", {"x": "<script>"}, tags=[tag])
    html = _search(admin_web, f"queue:{quote(queue)} tag:{quote(tag)}")
    results = html.split('id="explorer_results"')[1]
    assert _rows(html) == [jid] and escape(queue) in results
    assert "<b>" not in results and "<i>" not in results and "<script>" not in results
    link = re.search(r'<a class="tag" href="([^"]+)">', html)
    assert link
    again = admin_web.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert _rows(again) == [jid]


@pytest.mark.django_db
def test_suggestions(admin_web: WebClient, qe: Client) -> None:
    qe.queues["emails"].put("app.jobs.Send", {}, tags=["vip"])
    qe.queues["events"].put("app.jobs.Sync", {})
    url = reverse("jobadmin:search_suggest")
    assert admin_web.get(url, {"kind": "queue", "prefix": "e"}).json() == {"items": ["emails", "events"]}
    assert admin_web.get(url, {"kind": "class", "prefix": "app.jobs.S"}).json()["items"] == ["app.jobs.Send",
                                                                                             "app.jobs.Sync"]
    assert admin_web.get(url, {"kind": "tag", "prefix": ""}).json() == {"items": ["vip"]}
    assert admin_web.get(url, {"kind": "qualifier", "prefix": "st"}).json() == {"items": ["state:"]}
    assert admin_web.get(url, {"kind": "state", "prefix": "s"}).json() == {"items": ["scheduled", "stalled"]}
    assert admin_web.get(url, {"kind": "nope"}).status_code == 400


# ---------------------------------------------------------------------- create and edit
@pytest.mark.django_db
def test_create_needs_its_permission(user_with: Callable[..., WebClient], qe: Client) -> None:
    reader = user_with("retry_jobs")
    assert reader.get(reverse("jobadmin:job_create")).status_code == 403
    assert reader.post(reverse("jobadmin:job_create"), {"queue": "q", "klass": "k", "data": "{}"}).status_code == 403
    assert b"New job" not in reader.get(reverse("jobadmin:search")).content
    assert qe.queues["q"].counts["waiting"] == 0


@pytest.mark.django_db
def test_create_puts_the_job_and_audits_it(user_with: Callable[..., WebClient], qe: Client) -> None:
    web = user_with("create_jobs")
    assert b"New job" in web.get(reverse("jobadmin:search")).content
    response = web.post(reverse("jobadmin:job_create"), {
        "queue": "emails/daily", "klass": "app.jobs.Send", "data": '{"to": "a@example.com", "n": [1, 2]}',
        "priority": "3", "delay": "60", "tags": "vip, has space", "retries": "2"})
    assert response.status_code == 303
    jid = response["Location"].rstrip("/").rsplit("/", 1)[1]
    job = qe.jobs.find(queue="emails/daily")["jobs"][0]
    assert reverse("jobadmin:job", args=[job.jid]) == response["Location"]
    assert (job.klass, job.data, job.priority, job.state.value, sorted(job.tags), job.original_retries) == (
        "app.jobs.Send", {"to": "a@example.com", "n": [1, 2]}, 3, "scheduled", ["has space", "vip"], 2)
    entry = AuditEntry.objects.get(action="create")
    assert entry.jids == [job.jid] and entry.target == "emails/daily" and jid


@pytest.mark.django_db
@pytest.mark.parametrize(("post", "field", "says"), [
    ({"data": '{"to": '}, "data", "not JSON"),
    ({"data": "NaN"}, "data", "nan"),
    ({"queue": "bad{queue}"}, "queue", "braces"),
    ({"queue": ""}, "queue", "give the queue"),
    ({"klass": ""}, "klass", "class"),
    ({"priority": "high"}, "priority", "whole number"),
    ({"priority": "99999"}, "priority", "4095"),
    ({"delay": "-5"}, "delay", "0 or more"),
    ({"tags": "ok, bad{tag}"}, "tags", "braces"),
    ({"retries": "-1"}, "retries", "retries"),
])
def test_refused_input_is_explained_in_the_form(admin_web: WebClient, redis_conn: redis.Redis, qe: Client,
                                                post: dict[str, str], field: str, says: str) -> None:
    from tests.jobadmin.conftest import snapshot

    before = snapshot(redis_conn)
    form = {"queue": "q", "klass": "app.jobs.K", "data": "{}", "priority": "0", "delay": "0", "tags": "",
            "retries": "5", **post}
    response = admin_web.post(reverse("jobadmin:job_create"), form)
    html = response.content.decode()
    assert response.status_code == 400
    assert re.search(rf'class="field invalid">\s*<label for="f-{field}"', html) or (
        field == "data" and 'id="e-data">' in html), html[:2000]
    assert says.lower() in html.lower()
    assert escape(form["data"]) in html   # what was typed is kept
    assert snapshot(redis_conn) == before


@pytest.mark.django_db
def test_edit_changes_a_waiting_job_and_audits_it(user_with: Callable[..., WebClient], qe: Client) -> None:
    web = user_with("edit_waiting_jobs")
    jid = qe.queues["q"].put("app.jobs.K", {"v": 1}, tags=["old"])
    page = web.get(reverse("jobadmin:job", args=[jid])).content.decode()
    assert 'id="job-edit"' in page
    form = web.get(reverse("jobadmin:job_edit", args=[jid])).content.decode()
    assert "&quot;v&quot;: 1" in form and 'value="old"' in form
    response = web.post(reverse("jobadmin:job_edit", args=[jid]),
                        {"data": '{"v": 2}', "priority": "4", "delay": "120", "tags": "new"})
    assert response.status_code == 303 and response["Location"] == reverse("jobadmin:job", args=[jid])
    job = qe.jobs.get(jid)[0]
    assert (job.data, job.priority, job.tags, job.state.value) == ({"v": 2}, 4, ["new"], "scheduled")
    assert AuditEntry.objects.get(action="edit").detail == "data, delay, priority, tags"
    shown = web.get(reverse("jobadmin:job", args=[jid])).content.decode()
    assert 'id="job-due"' in shown and re.search(r"in (1 m 5\d s|2 m 0 s)", shown)


@pytest.mark.django_db
def test_edit_refuses_a_job_that_is_not_waiting(admin_web: WebClient, qe: Client, redis_conn: redis.Redis) -> None:
    from tests.jobadmin.conftest import snapshot

    jid = qe.queues["q"].put("app.jobs.K", {"v": 1})
    form = admin_web.get(reverse("jobadmin:job_edit", args=[jid])).content.decode()
    assert 'id="f-data"' in form
    qe.queues["q"].pop()   # a worker takes it while the form is open
    before = {k: v for k, v in snapshot(redis_conn).items() if b":w:" not in k and b"workers" not in k}
    response = admin_web.post(reverse("jobadmin:job_edit", args=[jid]), {"data": '{"v": 2}', "priority": "0",
                                                                         "delay": "", "tags": ""})
    assert response.status_code == 409 and b"The job is running now" in response.content
    assert {k: v for k, v in snapshot(redis_conn).items() if b":w:" not in k and b"workers" not in k} == before
    assert b'id="not-editable"' in admin_web.get(reverse("jobadmin:job_edit", args=[jid])).content


@pytest.mark.django_db
def test_edit_needs_its_permission_and_csrf(user_with: Callable[..., WebClient], qe: Client, settings: Any) -> None:
    jid = qe.queues["q"].put("app.jobs.K", {"v": 1})
    other = user_with("edit_jobs")
    assert other.get(reverse("jobadmin:job_edit", args=[jid])).status_code == 403
    assert b'id="job-edit"' not in other.get(reverse("jobadmin:job", args=[jid])).content
    strict = user_with("edit_waiting_jobs", csrf=True)
    response = strict.post(reverse("jobadmin:job_edit", args=[jid]), {"data": '{"v": 9}'})
    assert response.status_code == 403 and qe.jobs.get(jid)[0].data == {"v": 1}
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "READ_ONLY": True}
    assert user_with(superuser=True).get(reverse("jobadmin:job_edit", args=[jid])).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("jid", ["emails/daily", "café", "has space", "a%b?c#d", "it's \"quoted\" <b>", "..", "~"])
def test_edit_works_for_every_legal_jid(admin_web: WebClient, qe: Client, jid: str) -> None:
    qe.queues["q"].put("app.jobs.K", {"v": 1}, jid=jid)
    url = reverse("jobadmin:job_edit", args=[jid])
    assert admin_web.get(url).status_code == 200
    response = admin_web.post(url, {"data": '{"v": 5}', "priority": "0", "delay": "", "tags": ""})
    assert response.status_code == 303 and response["Location"] == reverse("jobadmin:job", args=[jid])
    assert qe.jobs.get(jid)[0].data == {"v": 5}


# ---------------------------------------------------------------------- pages that say what the engine knows
@pytest.mark.django_db
def test_the_worker_page_says_everything_about_the_worker(admin_web: WebClient, qe: Client) -> None:
    q = qe.queues["w"]
    for i in range(4):
        q.put("app.jobs.K", {"i": i})
    qe.workers.register("web-1", {"host": "box-7", "pid": 4242, "queues": ["w", "other"], "started": 1.7e9,
                                  "mode": "reliable", "concurrency": 4})
    jobs = qe.pop_from(["w"], 3, worker="web-1")
    jobs[0].complete()
    jobs[1].fail("w-Error", "boom")
    html = admin_web.get(reverse("jobadmin:worker", args=["web-1"])).content.decode()
    facts = html.split('id="worker_facts"')[1].split("</section>")[0]
    for text in ("box-7", "4242", ">w<", ">other<", "2023-11-14", "badge-healthy", "1 running",
                 'id="worker-done">1<', 'id="worker-failed">1<', "concurrency 4"):
        assert text in facts, text
    assert jobs[2].jid in html
    gone = admin_web.get(reverse("jobadmin:worker", args=["nobody"])).content.decode()
    assert "is registered" in gone


@pytest.mark.django_db
def test_due_times_on_the_scheduled_tab_and_the_job_page(admin_web: WebClient, qe: Client) -> None:
    jid = qe.queues["later"].put("app.jobs.K", {}, delay=5400)
    tab = admin_web.get(reverse("jobadmin:queue", args=["later"]) + "?tab=scheduled").content.decode()
    assert "in 1 h 29 m" in tab or "in 1 h 30 m" in tab
    assert re.search(r'<div class="muted">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</div>', tab)
    page = admin_web.get(reverse("jobadmin:job", args=[jid])).content.decode()
    assert 'id="job-due"' in page and "UTC" in page.split('id="job-due"')[1][:120]
    assert admin_web.get(reverse("jobadmin:api_job", args=[jid])).json()["job"]["due_at"] > 0


@pytest.mark.django_db
def test_recurring_runs_are_told_apart_in_lists(admin_web: WebClient, qe: Client) -> None:
    """Runs of a recurring job (…-1, …-2) share a long prefix; the lists keep their tails."""
    for n in (1, 2):
        jid = qe.queues["r"].put("app.jobs.K", {}, jid=f"nightly-report-template-{n}")
        qe.pop_from(["r"], 1)[0].complete()
        assert jid
    html = admin_web.get(reverse("jobadmin:completed")).content.decode()
    assert "nightly…plate-1" in html and "nightly…plate-2" in html


@pytest.mark.django_db
def test_the_dependency_graph_shows_both_ways(admin_web: WebClient, qe: Client) -> None:
    q = qe.queues["g"]
    root = q.put("app.jobs.Fetch", {}, jid="fetch")
    mid = q.put("app.jobs.Parse", {}, jid="parse", depends=[root])
    q.put("app.jobs.Store", {}, jid="store", depends=[mid])
    q.put("app.jobs.Index", {}, jid="index", depends=[mid])
    html = admin_web.get(reverse("jobadmin:job", args=["parse"])).content.decode()
    graph = html.split('id="dep_graph"')[1].split("</section>")[0]
    assert graph.count('class="node ') == 4 and len(re.findall(r'class="edge" d="M[\d.]+,[\d.]+ C', graph)) == 3
    assert 'data-graph-jid="fetch"' in graph and 'data-graph-jid="store"' in graph
    assert 'class="node s-depends current"' in graph and 'class="node s-waiting"' in graph
    alone = admin_web.get(reverse("jobadmin:job", args=["store"])).content.decode()
    assert alone.split('id="dep_graph"')[1].count('class="node ') == 3   # two levels up, none down
