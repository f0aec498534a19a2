"""Every page renders, in full and as the htmx fragment it is asked for, from real engine data."""

from __future__ import annotations

from typing import Any

import pytest

from queueengine import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def workload(qe: Client, failed_jobs: Any) -> dict[str, str]:
    """A bit of everything: waiting, scheduled, running, depends, failed, tagged, tracked,
    complete, recurring."""
    work = qe.queues["work"]
    first = work.put("app.jobs.First", {"n": 1}, tags=["alpha"], priority=3)
    work.put("app.jobs.Later", {"n": 2}, delay=3600)
    running = work.put("app.jobs.Running", {"n": 3}, priority=9)
    job = work.pop()
    assert job is not None and job.jid == running
    dependent = work.put("app.jobs.Dependent", {"n": 4}, depends=[first])
    qe.jobs[first].track()
    done = qe.queues["other"].put("app.jobs.Done", {"n": 5})
    popped = qe.queues["other"].pop()
    assert popped is not None
    popped.complete({"answer": 42})
    failed = failed_jobs(2)[0]
    recurring = work.recur("app.jobs.Report", {"team": "ops"}, interval=600)
    qe.workers.register("tester", {"host": "box", "pid": 1, "queues": ["work"]})
    return {"first": first, "running": running, "dependent": dependent, "done": done, "failed": failed,
            "recurring": recurring}


PAGES = [
    ("/jobs/", ["overview_queues", "overview_failures", "overview_workers", "overview_tracked"]),
    ("/jobs/queue/work/", ["queue_counts", "queue_tab"]),
    ("/jobs/queue/work/?tab=waiting", ["queue_tab"]),
    ("/jobs/queue/work/?tab=running", ["queue_tab"]),
    ("/jobs/queue/work/?tab=scheduled", ["queue_tab"]),
    ("/jobs/queue/work/?tab=stalled", ["queue_tab"]),
    ("/jobs/queue/work/?tab=depends", ["queue_tab"]),
    ("/jobs/queue/work/?tab=throttled", ["queue_tab"]),
    ("/jobs/queue/work/?tab=recurring", ["queue_tab"]),
    ("/jobs/failed/", ["failure_groups", "operations"]),
    ("/jobs/failed/work-ValueError/", ["job_table", "operations"]),
    ("/jobs/workers/", ["workers_table"]),
    ("/jobs/workers/tester/", ["job_table"]),
    ("/jobs/tracked/", ["job_table"]),
    ("/jobs/completed/", ["job_table"]),
    ("/jobs/recurring/", ["recurring_table"]),
    ("/jobs/tags/?tag=alpha", ["job_table"]),
    ("/jobs/search/?queue=work&klass=app.jobs.F*", ["explorer_results"]),
    ("/jobs/search/?q=state%3Awaiting+class%3Aapp.jobs.F%2A", ["explorer_results"]),
    ("/jobs/config/", ["config_table"]),
]


@pytest.mark.parametrize(("path", "fragments"), PAGES)
def test_page_and_its_fragments(admin_web: Any, workload: dict[str, str], path: str, fragments: list[str]) -> None:
    """The full page has every fragment (by id); an htmx request for one gets only that one."""
    page = admin_web.get(path)
    assert page.status_code == 200, path
    html = page.content.decode()
    assert html.startswith("<!doctype html>")
    for fragment in fragments:
        assert f'id="{fragment}"' in html, (path, fragment)
        part = admin_web.get(path, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=fragment)
        body = part.content.decode().lstrip()
        assert part.status_code == 200
        assert body.startswith(f'<section id="{fragment}"'), (path, fragment, body[:80])
        assert "<!doctype html>" not in body


def test_job_page_tells_the_story(admin_web: Any, qe: Client, workload: dict[str, str]) -> None:
    """State, timeline with wait and run durations, data, result, dependencies both ways."""
    html = admin_web.get(f"/jobs/job/{workload['done']}/").content.decode()
    assert "badge-complete" in html and "waited" in html and "ran" in html
    assert "&quot;answer&quot;: 42" in html
    first = admin_web.get(f"/jobs/job/{workload['first']}/").content.decode()
    assert workload["dependent"][:11] in first and "Needed by" in first
    dependent = admin_web.get(f"/jobs/job/{workload['dependent']}/").content.decode()
    assert workload["first"][:11] in dependent and "Remove all" in dependent


def test_failed_job_page_shows_failure_and_traceback(admin_web: Any, qe: Client) -> None:
    """The failure message and traceback are shown (escaped)."""
    jid = qe.queues["work"].put("app.jobs.X", {}, retries=0)
    job = qe.queues["work"].pop()
    assert job is not None
    job.fail("work-KeyError", "missing key", traceback="Traceback (most recent call last):\n  File x\nKeyError: 'k'")
    html = admin_web.get(f"/jobs/job/{jid}/").content.decode()
    assert 'id="job-traceback"' in html and "KeyError: &#x27;k&#x27;" in html
    assert "work-KeyError" in html and 'data-action="retry"' in html


def test_recurring_template_page(admin_web: Any, workload: dict[str, str]) -> None:
    """A recurring jid shows its schedule in words and its next runs."""
    html = admin_web.get(f"/jobs/job/{workload['recurring']}/").content.decode()
    assert "every 10 m 0 s" in html and "next runs" in html and "app.jobs.Report" in html


def test_unknown_job_is_404_with_an_explanation(admin_web: Any, qe: Client) -> None:
    """A jid that does not exist: 404 saying so, and why it might be gone."""
    response = admin_web.get("/jobs/job/feedface/")
    assert response.status_code == 404
    assert b"No job" in response.content and b"retention" in response.content


def test_jid_box_goes_to_the_job(admin_web: Any, workload: dict[str, str]) -> None:
    """The jid box on every page redirects to the job page (spaces trimmed)."""
    response = admin_web.get("/jobs/find/", {"jid": f"  {workload['first']} "})
    assert response.status_code == 302 and response["Location"] == f"/jobs/job/{workload['first']}/"
    assert b'id="jid-input"' in admin_web.get("/jobs/workers/").content


def test_overview_counts_and_no_worker_warning(admin_web: Any, qe: Client) -> None:
    """Counts come from the engine; with waiting jobs and no workers the page warns."""
    qe.queues["lonely"].put_many([("app.jobs.X", {"i": i}) for i in range(7)])
    html = admin_web.get("/jobs/").content.decode()
    assert 'data-queue="lonely"' in html and ">7</a>" in html
    assert "No workers are registered" in html and "lonely" in html


def test_lists_are_paginated(admin_web: Any, qe: Client, settings: Any) -> None:
    """Page 2 shows the next rows and the pager says where we are."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "PAGE_SIZE": 10}
    jids = qe.queues["big"].put_many([("app.jobs.X", {"i": i}) for i in range(25)])
    first = admin_web.get("/jobs/queue/big/?tab=waiting").content.decode()
    second = admin_web.get("/jobs/queue/big/?tab=waiting&page=2").content.decode()
    third = admin_web.get("/jobs/queue/big/?tab=waiting&page=3").content.decode()
    assert jids[0] in first and jids[10] not in first
    assert jids[10] in second and jids[19] in second and jids[20] not in second
    assert "21–25 of 25" in third and "more →" not in third and "more →" in first


def test_list_payloads_are_truncated(admin_web: Any, qe: Client) -> None:
    """Lists show a preview of the data, never the whole payload."""
    qe.queues["big"].put("app.jobs.X", {"blob": "x" * 100_000})
    html = admin_web.get("/jobs/queue/big/?tab=waiting").content.decode()
    assert "x" * 150 in html and "x" * 1000 not in html and "100011 bytes" in html


def test_queue_stats_tab_has_histograms_and_percentiles(admin_web: Any, qe: Client) -> None:
    """Wait and run histograms on the metrics' log buckets as SVG, with count, p50/p95/p99 and max
    in milliseconds, mean and std."""
    q = qe.queues["timed"]
    q.put_many([("app.jobs.X", {"i": i}) for i in range(5)])
    for job in q.pop(5):
        job.complete()
    html = admin_web.get("/jobs/queue/timed/").content.decode()
    assert html.count('<svg class="chart metrics-chart histogram"') == 2
    assert "p50 / p95 / p99" in html and "Wait time" in html and "Run time" in html and "mean ± std" in html
    assert "5 jobs" in html and " ms /" in html and ">1 ms<" in html      # millisecond labels


def test_search_filters_live_in_the_url(admin_web: Any, qe: Client) -> None:
    """Filters by class prefix, tag and state narrow the list; bad combinations explain."""
    q = qe.queues["mixed"]
    a = q.put("app.billing.Invoice", {}, tags=["eu"])
    b = q.put("app.mail.Send", {}, tags=["eu"])
    c = q.put("app.billing.Refund", {})
    html = admin_web.get("/jobs/search/?queue=mixed&state=waiting&klass=app.billing.*").content.decode()
    assert a[:11] in html and c[:11] in html and b[:11] not in html
    tagged = admin_web.get("/jobs/search/?tag=eu&klass=app.mail.Send").content.decode()
    assert b[:11] in tagged and a[:11] not in tagged
    by_class = admin_web.get("/jobs/search/?klass=app.*").content.decode()   # any state, every queue
    assert a[:7] in by_class and b[:7] in by_class and c[:7] in by_class


def test_workers_page_shows_status_and_current_jobs(admin_web: Any, qe: Client) -> None:
    """A worker holding a job shows it with its class; an old worker is 'gone'."""
    qe.queues["w"].put("app.jobs.Long", {})
    qe.workers.register("busy-1", {"host": "h1", "pid": 42, "queues": ["w"], "beat_interval": 10})
    job = qe.pop_from(["w"], worker="busy-1")[0]
    html = admin_web.get("/jobs/workers/").content.decode()
    assert 'data-worker="busy-1"' in html and job.jid[:10] in html and "app.jobs.Long" in html
    assert "badge-healthy" in html and ">h1<" in html and ">42<" in html


def test_config_page_lists_defaults_and_stored(admin_web: Any, qe: Client) -> None:
    """Every option is listed; stored ones are marked."""
    qe.config["work-max-concurrency"] = 3
    html = admin_web.get("/jobs/config/").content.decode()
    assert 'data-option="heartbeat"' in html and 'data-option="work-max-concurrency"' in html
    assert html.count(">set<") >= 1


def test_namespace_switcher_remembers_the_choice(admin_web: Any, qe: Client, redis_url: str, settings: Any) -> None:
    """With NAMESPACES, ?ns= switches (and the session remembers it); unknown ones are ignored."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "NAMESPACES": ["test", "billing"]}
    other = Client.from_url(redis_url, namespace="billing")
    other.queues["invoices"].put("app.jobs.Invoice", {})
    qe.queues["home"].put("app.jobs.X", {})
    home = admin_web.get("/jobs/").content.decode()
    assert 'data-queue="home"' in home and 'data-queue="invoices"' not in home and 'id="ns-select"' in home
    switched = admin_web.get("/jobs/?ns=billing").content.decode()
    assert 'data-queue="invoices"' in switched and 'data-queue="home"' not in switched
    assert 'data-queue="invoices"' in admin_web.get("/jobs/").content.decode()
    assert 'data-queue="invoices"' in admin_web.get("/jobs/?ns=nope").content.decode()
    assert 'data-queue="home"' in admin_web.get("/jobs/?ns=test").content.decode()
    other.close()
