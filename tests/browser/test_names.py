"""Names that need care in a URL, in a real browser against the real server (daphne decodes the
path before Django sees it): follow the overview's link to the queue, see the live push add a
job, open the job, move it with the page's own form."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

HAS_TEXT = "([sel, text]) => { const el = document.querySelector(sel); return !!el && el.innerText.includes(text); }"


@pytest.mark.parametrize(("queue", "jid"), [("emails/daily", "naïve-job"), ("café", "a/b?c#d"),
                                            ("has space", "it's 50%")])
def test_awkward_names_through_links_live_push_and_move(page: Any, dashboard_url: str, engine_b: Any,
                                                         queue: str, jid: str) -> None:
    engine_b.queues[queue].put("app.jobs.First", {}, jid="first")
    page.goto(dashboard_url + "/jobs/")
    href = page.get_by_role("link", name=queue, exact=True).first.get_attribute("href")
    page.goto(dashboard_url + href)      # where the overview's link leads (not a click racing a live swap)
    page.wait_for_selector("#queue_counts")
    assert queue in page.inner_text("h1")
    page.goto(page.url.split("?")[0] + "?tab=waiting")   # the URL the link led to
    page.wait_for_selector("#live-badge[data-live-state=live]")
    page.evaluate("() => { window.__marker = 'no reload'; }")
    engine_b.queues[queue].put("app.jobs.Pushed", {}, jid=jid)
    page.wait_for_function(HAS_TEXT, arg=["#queue_tab", "app.jobs.Pushed"])
    assert "Nothing here." not in page.inner_text("#queue_tab")
    assert page.evaluate("window.__marker") == "no reload"
    page.get_by_role("link", name=jid[:13], exact=False).first.click()
    page.wait_for_selector("#job_state")
    assert queue in page.inner_text("#job_state")
    page.wait_for_selector("#live-badge[data-live-state=live]")
    page.fill("input[aria-label='move to queue']", queue + "/moved")
    page.get_by_role("button", name="Move").click()
    page.wait_for_function(HAS_TEXT, arg=["#job_state", queue + "/moved"])
    assert engine_b.jobs[jid].queue.name == queue + "/moved"
    assert "no longer exists" not in page.inner_text("#job_state")
