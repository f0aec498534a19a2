"""Every legal name works in every dashboard URL, page, action, JSON endpoint and admin page
(shown escaped), and whatever the dashboard finds in Redis renders without a 500 and can be
moved or canceled. The live push is in test_names_live.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from django.test import Client as WebClient
from django.urls import resolve, reverse
from django.utils.html import escape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobadmin import bulk
from jobadmin.explorer import quote
from jobadmin.urls import NameConverter
from queueengine import Client
from queueengine.store.args import name_problem

pytestmark = pytest.mark.django_db

AWKWARD = "ab/%?#\"' :é日🙂&+=.~<>\\;"
legal = st.text(st.sampled_from(AWKWARD), min_size=1, max_size=8).filter(
    lambda s: name_problem(s, "jid") is None and name_problem(s, "throttle") is None)
"""Legal names made of the characters that need care in URLs, HTML and keys."""
REAL = ["emails/daily", "café", "has space", "naïve-job", "a%2Fb", "what?#x", "it's \"q\"", "..", ".", "~7E", "<b>"]


@given(value=st.text(min_size=0, max_size=12))
def test_the_converter_round_trips_any_text(value: str) -> None:
    """Any string (even one the naming rule refuses) is one segment and decodes back."""
    conv = NameConverter()
    segment = conv.to_url(value)
    assert "/" not in segment and segment not in (".", "..") and segment
    assert conv.to_python(segment) == value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(legal, st.sampled_from(REAL)))
def test_reverse_and_resolve_give_the_name_back(value: str) -> None:
    """Through Django's own reverse() and resolve() (the percent-decoded path a server hands it)."""
    from urllib.parse import unquote

    for url_name, arg in (("queue", "name"), ("job", "jid"), ("failure_group", "group"), ("worker", "name"),
                          ("api_queue", "name"), ("api_job", "jid"), ("queue_action", "name")):
        kwargs = {arg: value, **({"action": "pause"} if url_name == "queue_action" else {})}
        path = reverse(f"jobadmin:{url_name}", kwargs=kwargs)
        match = resolve(unquote(path))
        assert (match.url_name, match.kwargs) == (url_name, kwargs)


def build_world(redis_url: str, queue: str, jid: str, tag: str, group: str, worker: str) -> Client:
    """A failed job ``jid`` (queue, tag, group, failed by ``worker``) and a waiting job in the
    same queue, so every page has something to show."""
    c = Client.from_url(redis_url, namespace="test", worker_name=worker)
    q = c.queues[queue]
    q.put("app.jobs.Names", {"name": jid}, jid=jid, tags=[tag], retries=0)
    popped = c.pop_from([queue], 1)
    assert [j.jid for j in popped] == [jid]
    popped[0].fail(group, f"failed in {group}")
    q.put("app.jobs.Names", {}, jid=jid + "-waiting", tags=[tag])
    c.workers.register(worker, {"queues": [queue]})
    return c


def pages_of(queue: str, jid: str, tag: str, group: str, worker: str) -> list[tuple[str, str]]:
    """(URL, the name it must show) for every page and endpoint that shows one of the names."""
    r = reverse
    out = [(r("jobadmin:overview"), queue), (r("jobadmin:overview"), group),
           (r("jobadmin:job", args=[jid]), queue), (r("jobadmin:job", args=[jid]), tag),
           (r("jobadmin:job", args=[jid]), group), (r("jobadmin:job", args=[jid]), jid),
           (r("jobadmin:failures"), group), (r("jobadmin:failure_group", args=[group]), jid),
           (r("jobadmin:workers"), worker), (r("jobadmin:worker", args=[worker]), worker),
           (r("jobadmin:search") + "?" + _q(queue=queue), jid + "-waiting"),
           (r("jobadmin:search") + "?" + _q(state="failed"), jid),
           (r("jobadmin:tags") + "?" + _q(tag=tag), jid),
           (r("jobadmin:search") + "?" + _q(q=f"queue:{quote(queue)} tag:{quote(tag)}"), jid + "-waiting"),
           (r("jobadmin:charts") + "?" + _q(queue=queue), queue),
           (r("jobadmin:job_edit", args=[jid + "-waiting"]), jid + "-waiting"),
           (r("jobadmin:completed"), ""), (r("jobadmin:tracked"), ""),
           (r("admin:jobadmin_dashboard_jobs") + "?" + _q(kind="failed", name=group), jid),
           (r("admin:jobadmin_dashboard_jobs") + "?" + _q(kind="waiting", name=queue), jid + "-waiting")]
    for tab in ("stats", "waiting", "running", "scheduled", "stalled", "depends", "recurring"):
        out.append((r("jobadmin:queue", args=[queue]) + "?tab=" + tab, queue))
    return out


def _q(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def check_page(web: WebClient, url: str, shown: str) -> str:
    response = web.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    html = response.content.decode()
    assert escape(shown) in html, f"{url} does not show {shown!r} escaped"
    if "<b>" in shown:
        assert shown not in html.replace(escape(shown), ""), f"{url} shows {shown!r} unescaped"
    return html


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(queue=legal, jid=st.one_of(legal, st.sampled_from(REAL)), tag=legal, group=st.sampled_from(REAL), worker=legal)
def test_every_page_shows_awkward_names(admin_web: WebClient, redis_url: str, redis_conn: redis.Redis, queue: str,
                                        jid: str, tag: str, group: str, worker: str) -> None:
    """Overview, queue tabs, job, edit form, failures, group, workers, worker, search and the explorer's
    query bar, charts, suggestions, tags, admin job list: 200, each name shown escaped, and every link to a named object resolves to a 200 page."""
    redis_conn.flushdb()
    c = build_world(redis_url, queue, jid, tag, group, worker)
    try:
        for url, shown in pages_of(queue, jid, tag, group, worker):
            check_page(admin_web, url, shown)
        for url in (reverse("jobadmin:api_queue", args=[queue]), reverse("jobadmin:api_stats", args=[queue]),
                    reverse("jobadmin:api_job", args=[jid]), reverse("jobadmin:api_failures") + "?" + _q(group=group),
                    reverse("jobadmin:api_workers"), reverse("jobadmin:api_queues"), reverse("jobadmin:metrics")):
            assert admin_web.get(url).status_code == 200, url
        worker_query = reverse("jobadmin:search") + "?" + _q(q=f"worker:{quote(worker)} queue:{quote(queue)}")
        assert 'id="explorer-error"' not in check_page(admin_web, worker_query, ""), worker_query
        suggest = reverse("jobadmin:search_suggest")
        for kind, name in (("queue", queue), ("tag", tag)):
            assert name in admin_web.get(suggest, {"kind": kind, "prefix": name}).json()["items"], (kind, name)
        assert admin_web.get(reverse("jobadmin:api_job", args=[jid])).json()["job"]["queue"] == queue
        assert admin_web.get(reverse("jobadmin:find") + "?" + _q(jid=jid)).url == reverse("jobadmin:job", args=[jid])
    finally:
        c.close()


@pytest.mark.parametrize("value", ["emails/daily", "café", "has space", "a%b?c#d", "it's \"quoted\" <b>", "..", "~"])
def test_every_action_works_with_awkward_names(admin_web: WebClient, redis_url: str, redis_conn: redis.Redis,
                                               value: str) -> None:
    """Job actions, queue pause, group retry/move/cancel-all, bulk and admin actions, with a name
    that needs encoding in every role; the redirect goes back to the object's own page."""
    c = build_world(redis_url, value, value, value, value, value)
    job_url = reverse("jobadmin:job", args=[value])
    try:
        assert admin_web.post(reverse("jobadmin:job_action", args=[value, "retry"]), {"next": job_url}).url == job_url
        assert c.jobs[value].state.value == "waiting"
        for action, post in (("tag", {"tags": "x, has space"}), ("untag", {"tag": value}), ("track", {}),
                             ("priority", {"priority": "3"}), ("move", {"queue": value + "/2"})):
            response = admin_web.post(reverse("jobadmin:job_action", args=[value, action]), {**post, "next": job_url})
            assert response.status_code == 303 and response.url == job_url, action
        job = c.jobs[value]
        assert (job.queue.name, job.priority, job.tracked) == (value + "/2", 3, True)
        assert set(job.tags) == {"x", "has space"} - {value}
        check_page(admin_web, job_url, value + "/2")
        response = admin_web.post(reverse("jobadmin:queue_action", args=[value, "pause"]))
        assert response.url == reverse("jobadmin:queue", args=[value]) and c.queues[value].paused
        admin_web.post(reverse("jobadmin:queue_action", args=[value, "unpause"]))
        assert not c.queues[value].paused
        # fail it again into the group, then move-all and cancel-all through the group's URLs
        c.queues[value + "/2"].put("app.jobs.Names", {}, jid=value, retries=0)
        popped = c.pop_from([value + "/2"], 1)
        popped[0].fail(value, "again")
        response = admin_web.post(reverse("jobadmin:group_action", args=[value, "move"]), {"queue": value + "/3"})
        assert response.url == reverse("jobadmin:failure_group", args=[value])
        assert bulk.wait(bulk.recent(c)[0]["id"], 30)
        assert c.jobs[value].queue.name == value + "/3"
        admin = reverse("admin:jobadmin_dashboard_jobs") + "?" + _q(kind="waiting", name=value + "/3")
        response = admin_web.post(admin, {"action": "cancel", "_selected_action": [value], "post": "yes"})
        assert response.status_code == 302 and admin_web.get(response.url).status_code == 200
        assert value not in c.jobs
    finally:
        c.close()


def test_names_found_in_redis_render_and_can_be_moved_or_canceled(admin_web: WebClient, qe: Client,
                                                                  redis_conn: redis.Redis) -> None:
    """Names the rule refuses but another client wrote with raw commands (a queue with a newline
    and an edge space, an empty queue name, a jid and a group with control characters): every
    page answers without a 500 and shows them escaped; the operator moves the job out of the odd
    queue, and cancels the job with the odd jid."""
    jid = qe.queues["plain"].put("app.jobs.Odd", {})
    other = qe.queues["plain"].put("app.jobs.Odd", {}, retries=0)
    odd, p = "odd\nqueue ", qe.prefix
    redis_conn.zadd(p + "queues", {odd: 1, "": 1})
    redis_conn.rename(p + "q:plain:work", p + f"q:{odd}:work")
    redis_conn.hset(p + f"j:{jid}", "queue", odd)
    redis_conn.zrem(p + "queues", "plain")
    bad_jid, group = "jid\x02<b>bad", "grp\x01<b>bad"
    redis_conn.zrem(p + f"q:{odd}:work", other)
    redis_conn.rename(p + f"j:{other}", p + f"j:{bad_jid}")
    redis_conn.hset(p + f"j:{bad_jid}", mapping={"jid": bad_jid, "state": "failed", "queue": odd})
    redis_conn.sadd(p + "failures", group)
    redis_conn.lpush(p + f"f:{group}", bad_jid)
    redis_conn.zadd(p + "workers", {"w\x03bad": 1e12, "": 1e12})
    shown = {reverse("jobadmin:overview"): odd.strip(), reverse("jobadmin:queue", args=[odd]): odd.strip(),
             reverse("jobadmin:queue", args=[odd]) + "?tab=waiting": jid,
             reverse("jobadmin:job", args=[jid]): odd.strip(), reverse("jobadmin:failures"): group,
             reverse("jobadmin:failure_group", args=[group]): bad_jid[:10], reverse("jobadmin:job", args=[bad_jid]): bad_jid,
             reverse("jobadmin:workers"): "w\x03bad", reverse("jobadmin:worker", args=["w\x03bad"]): "w\x03bad",
             reverse("admin:jobadmin_dashboard_jobs") + "?" + _q(kind="waiting", name=odd): jid}
    for url, text in shown.items():
        response = admin_web.get(url)
        assert response.status_code == 200, url
        assert escape(text) in response.content.decode(), (url, text)
        assert "<b>bad" not in response.content.decode(), url
    assert admin_web.get(reverse("jobadmin:queue", args=[""])).status_code == 404   # '' is no name at all
    for url in (reverse("jobadmin:api_queues"), reverse("jobadmin:api_queue", args=[odd]),
                reverse("jobadmin:api_job", args=[bad_jid]), reverse("jobadmin:metrics")):
        assert admin_web.get(url).status_code == 200, url
    job_url = reverse("jobadmin:job", args=[jid])
    admin_web.post(reverse("jobadmin:job_action", args=[jid, "move"]), {"queue": "rescued", "next": job_url})
    assert qe.jobs[jid].queue.name == "rescued" and redis_conn.zcard(p + f"q:{odd}:work") == 0
    admin_web.post(reverse("jobadmin:job_action", args=[jid, "cancel"]))
    assert jid not in qe.jobs
    admin_web.post(reverse("jobadmin:job_action", args=[bad_jid, "cancel"]))
    assert not redis_conn.exists(p + f"j:{bad_jid}")


def test_refused_names_change_nothing_from_the_dashboard(admin_web: WebClient, qe: Client,
                                                        redis_conn: redis.Redis,
                                                        failed_jobs: Callable[..., list[str]]) -> None:
    """Moving to an illegal queue, tagging with an illegal tag: an error message, nothing written."""
    from tests.jobadmin.conftest import snapshot

    jid = failed_jobs(1)[0]
    before = snapshot(redis_conn)
    for action, post in (("move", {"queue": "bad{queue}"}), ("move", {"queue": "x\ty"}), ("tag", {"tag": "t\x00"}),
                         ("tag", {"tag": " edge"})):
        response = admin_web.post(reverse("jobadmin:job_action", args=[jid, action]), post, follow=True)
        assert "Could not" in response.content.decode(), (action, post)
    response = admin_web.post(reverse("jobadmin:group_action", args=["work-ValueError", "move"]), {"queue": "a\u2028b"},
                              follow=True)
    assert "Could not" in response.content.decode()
    assert {k: v for k, v in snapshot(redis_conn).items() if b"dash:" not in k} == \
        {k: v for k, v in before.items() if b"dash:" not in k}


def test_tag_text_keeps_spaces_inside_tags(admin_web: WebClient, qe: Client) -> None:
    """The tag form splits on commas only: "has space" is one tag."""
    jid = qe.queues["work"].put("app.jobs.T", {})
    admin_web.post(reverse("jobadmin:job_action", args=[jid, "tag"]), {"tags": " has space , b "})
    assert set(qe.jobs[jid].tags) == {"has space", "b"}


def test_each_tag_has_its_own_untag_button(admin_web: WebClient, qe: Client) -> None:
    """A tag with a comma or spaces is removed by its own button (the exact tag, not parsed)."""
    import re

    jid = qe.queues["work"].put("app.jobs.T", {}, tags=["a, b", "keep"])
    html = admin_web.get(reverse("jobadmin:job", args=[jid])).content.decode()
    assert re.search(r'name="tag" value="a, b"', html) and 'aria-label="untag a, b"' in html
    admin_web.post(reverse("jobadmin:job_action", args=[jid, "untag"]), {"tag": "a, b"})
    assert qe.jobs[jid].tags == ["keep"]


@pytest.mark.parametrize("raw", ['{"v": 1e999}', '{"v": NaN}', "not json <b>"])
def test_data_that_cannot_be_read_renders_everywhere(admin_web: WebClient, qe: Client, redis_conn: redis.Redis,
                                                     raw: str) -> None:
    """Data another client wrote around the engine that no JSON reader takes back: every page and
    the JSON API answer (the job page says what is wrong, escaped), and the API reads the job."""
    jid = qe.queues["plain"].put("app.jobs.Odd", {}, tags=["t"])
    redis_conn.hset(qe.prefix + f"j:{jid}", "data", raw)
    job = qe.jobs[jid]
    assert job.data is None and job.data_problem is not None and raw in job.data_problem
    html = check_page(admin_web, reverse("jobadmin:job", args=[jid]), raw)   # as stored, escaped
    assert 'id="job-data-problem"' in html and "is not JSON that can be read back" in html
    for url in (reverse("jobadmin:queue", args=["plain"]) + "?tab=waiting", reverse("jobadmin:api_job", args=[jid]),
                reverse("jobadmin:search") + "?" + _q(q="queue:plain"), reverse("jobadmin:search") + "?" + _q(q="text:v"),
                reverse("jobadmin:tags") + "?" + _q(tag="t"), reverse("jobadmin:job_edit", args=[jid])):
        assert admin_web.get(url).status_code == 200, url
    assert [j.jid for j in qe.jobs.find(queue="plain")["jobs"]] == [jid]
