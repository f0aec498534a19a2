"""The jobs explorer, create and edit in a real Chromium: type a query (with completions), watch
the results stream in, sort them; create a job from the form (its JSON checked as you type);
edit a waiting job; every new page without a CSP violation, at a phone's width too."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.test_csp import RECORD, open_and_check

pytestmark = pytest.mark.browser


def _rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("#explorer-rows tr[data-jid]", "rows => rows.map(r => r.dataset.jid)")


def _wait_done(page: Any) -> None:
    page.wait_for_selector("#explorer-progress[data-done='1']")


def test_search_from_any_page_with_completions(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """'/' focuses the bar on the overview; typing "que" offers queue:, then the queue names;
    the query runs on Enter and the results match the engine's."""
    q = engine_b.queues["emails"]
    vip = [q.put("app.jobs.Send", {"user": {"id": 7}, "n": i}, tags=["vip"]) for i in range(3)]
    q.put("app.jobs.Send", {"user": {"id": 8}}, tags=["vip"])
    engine_b.queues["reports"].put("app.jobs.Report", {"user": {"id": 7}})
    page.goto(dashboard_url + "/jobs/")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "query-input"
    page.keyboard.type("que")
    page.wait_for_selector("#query-input-suggest li:text-is('queue:')")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#query-input") == "queue:"
    page.wait_for_selector("#query-input-suggest li:text-is('emails')")
    page.keyboard.type("em")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert page.input_value("#query-input") == "queue:emails "
    page.keyboard.type("data.user.id:7")
    page.keyboard.press("Enter")
    page.wait_for_url("**/jobs/search/?q=*")
    _wait_done(page)
    assert sorted(_rows(page)) == sorted(vip)
    assert sorted(_rows(page)) == sorted(j.jid for j in engine_b.jobs.find(queue="emails", data={"user.id": 7})["jobs"])


def test_results_stream_in_with_progress_and_sort(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """Many more jobs than one call reads: the page fills itself call by call (the progress line
    counts what was looked at), then sorts the rows by priority on a click."""
    q = engine_b.queues["bulk"]
    q.put_many([{"klass": "app.jobs.Noise", "data": {"i": i}} for i in range(3000)])
    wanted = q.put_many([{"klass": "app.jobs.Noise", "data": {"i": i, "needle": True}, "priority": i % 5}
                         for i in range(12)])
    page.goto(dashboard_url + "/jobs/search/?q=" + quote("class:app.jobs.Noise data.needle:true"))
    _wait_done(page)
    assert sorted(_rows(page)) == sorted(wanted)
    progress = page.inner_text("#explorer-progress")
    assert "Looked at 3,012 jobs" in progress and "12 matches" in progress and "search complete" in progress
    page.click("th[data-sort-key=priority] button")
    priorities = page.eval_on_selector_all("#explorer-rows tr[data-jid] td.num", "cells => cells.map(c => +c.dataset.sort)")
    assert priorities == sorted(priorities)
    page.click("th[data-sort-key=priority] button")
    assert page.get_attribute("th[data-sort-key=priority]", "aria-sort") == "descending"


def test_a_query_error_points_at_the_term(page: Any, dashboard_url: str, engine_b: Any) -> None:
    page.goto(dashboard_url + "/jobs/search/?q=" + quote("state:failed colour:red"))
    assert "unknown qualifier" in page.inner_text("#explorer-error")
    assert page.get_attribute("#explorer-q", "aria-invalid") == "true"


def test_create_a_job_from_the_form(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """The data box says at once that the JSON is not done yet; a refused queue name comes back
    beside its field; a good form puts the job and opens its page."""
    engine_b.queues["emails"].put("app.jobs.Send", {})
    page.goto(dashboard_url + "/jobs/new/")
    page.fill("#f-queue", "bad{queue}")
    page.fill("#f-klass", "app.jobs.Send")
    page.fill("#f-data", '{"to": "a@example.com"')
    page.wait_for_selector("#e-data:not([hidden])")
    assert "not JSON" in page.inner_text("#e-data")
    page.fill("#f-data", '{"to": "a@example.com", "n": 3}')
    page.wait_for_selector("#e-data[hidden]", state="attached")
    page.fill("#f-tags", "vip, has space")
    page.fill("#f-delay", "120")
    page.click("#f-submit")
    page.wait_for_selector(".field.invalid #f-queue")
    assert page.input_value("#f-data") == '{"to": "a@example.com", "n": 3}'
    page.fill("#f-queue", "emails")
    page.click("#f-submit")
    page.wait_for_selector("#job-due")
    jid = page.url.rstrip("/").rsplit("/", 1)[1]
    job = engine_b.jobs[jid]
    assert (job.queue_name, job.data, sorted(job.tags), job.state.value) == (
        "emails", {"to": "a@example.com", "n": 3}, ["has space", "vip"], "scheduled")


def test_edit_a_waiting_job(page: Any, dashboard_url: str, engine_b: Any) -> None:
    jid = engine_b.queues["emails"].put("app.jobs.Send", {"to": "old@example.com"}, tags=["a"])
    page.goto(dashboard_url + f"/jobs/job/{jid}/")
    page.click("#job-edit")
    page.fill("#f-data", '{"to": "new@example.com"}')
    page.fill("#f-priority", "7")
    page.fill("#f-tags", "b")
    page.click("#f-submit")
    page.wait_for_selector("text=Edited data, priority, tags")
    assert "new@example.com" in page.inner_text("#job-data")
    job = engine_b.jobs[jid]
    assert (job.data, job.priority, job.tags) == ({"to": "new@example.com"}, 7, ["b"])


def test_new_pages_have_no_csp_violations_and_fit_a_phone(page: Any, browser: Any, login_state: str,
                                                         dashboard_url: str, engine_b: Any) -> None:
    q = engine_b.queues["csp"]
    first = q.put("app.jobs.Csp", {"x": "<b>"})
    second = q.put("app.jobs.Csp", {}, depends=[first])
    engine_b.workers.register("w-1", {"host": "h", "pid": 1, "queues": ["csp"]})
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.add_init_script(RECORD)
    paths = ["/jobs/search/?q=" + quote("class:app.jobs.Csp"), "/jobs/new/", f"/jobs/job/{first}/edit/",
             f"/jobs/job/{second}/", "/jobs/workers/w-1/"]
    for path in paths:
        open_and_check(page, dashboard_url + path, console)
    page.goto(dashboard_url + paths[0])
    page.fill("#explorer-q", "class:app.jobs.C")
    page.wait_for_selector("#explorer-q-suggest li")
    assert page.evaluate("window.__csp") == []
    phone = browser.new_context(storage_state=login_state, viewport={"width": 390, "height": 844},
                                color_scheme="dark")
    small = phone.new_page()
    for path in paths:
        small.goto(dashboard_url + path)
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 391, (path, width)
    phone.close()


OBSERVE_OPERATION_STATES = """window.__opStates = [];
new MutationObserver(() => {
  const el = document.querySelector('#operations [data-op]');
  const states = window.__opStates;
  if (el && states[states.length - 1] !== el.dataset.state) states.push(el.dataset.state);
}).observe(document.getElementById('main'), {subtree: true, childList: true, attributes: true});"""
"""Records each state the first operation on the page shows, in order (the page's own updates)."""


def test_retry_all_matching_shows_live_progress_and_changes_exactly_the_matches(
        page: Any, dashboard_url: str, engine_b: Any, redis_conn: Any) -> None:
    """Run a query, open "Act on all matching", review what will happen, start: the operation
    appears and reaches done on the page without a reload (pushed or polled), and in Redis
    exactly the matching jobs were retried."""
    emails, reports = engine_b.queues["emails"], engine_b.queues["reports"]

    def failed(q: Any, klass: str, n: int) -> list[str]:
        jids = q.put_many([{"klass": klass, "data": {"i": i}, "retries": 0} for i in range(n)])
        for job in q.pop(n):
            job.fail("broken-Error", "it broke")
        return list(jids)

    hits = failed(emails, "app.jobs.Send", 30)
    misses = failed(reports, "app.jobs.Send", 3) + failed(emails, "app.jobs.Other", 3)
    misses.append(emails.put("app.jobs.Send", {"i": 99}))
    before = {jid: redis_conn.hgetall(engine_b.keys.job(jid)) for jid in misses}
    text = "state:failed queue:emails class:app.jobs.Send"
    page.add_init_script(RECORD)
    page.goto(dashboard_url + "/jobs/search/?q=" + quote(text))
    _wait_done(page)
    rows = _rows(page)
    assert rows and set(rows) <= set(hits)
    page.wait_for_selector("#live-badge[data-live-state=live]")
    page.evaluate("window.__sameDocument = true")
    page.evaluate(OBSERVE_OPERATION_STATES)
    page.click("#match-act summary")
    page.select_option("#match-action", "retry")
    page.click("[data-match-review]")
    page.wait_for_selector("[data-match-sentence]")
    assert page.inner_text("[data-match-sentence]") == f"Retry every job matching {text}"
    assert "30 jobs match now" in page.inner_text("#match-review")
    page.click("[data-match-start]")
    page.wait_for_selector("#operations [data-op][data-scope=match]")
    page.wait_for_selector("#operations [data-op][data-state=done]")
    op = page.locator("#operations [data-op]").first
    assert "30 done, 0 skipped of 30 (100%)" in op.inner_text()
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    states = page.evaluate("window.__opStates")
    assert states[0] in ("finding", "running") and states[-1] == "done", states
    assert page.locator("#match-review").inner_text() == ""
    assert page.evaluate("window.__csp") == []
    assert [j.state.value for j in engine_b.jobs.get(*hits)] == ["waiting"] * 30
    assert {jid: redis_conn.hgetall(engine_b.keys.job(jid)) for jid in misses} == before
