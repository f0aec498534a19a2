"""The dashboard in a real browser: log in, retry a failed job, bulk-cancel, screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

SHOTS = os.environ.get("QE_SCREENSHOT_DIR")


def _fail(engine: Any, queue: str, n: int, group: str, message: str) -> list[str]:
    q = engine.queues[queue]
    jids = q.put_many([{"klass": "app.invoices.Parse", "data": {"invoice": f"INV-{i}"}, "retries": 0}
                       for i in range(n)])
    for job in q.pop(n):
        job.fail(group, message)
    return jids


def test_retry_a_failed_job_and_see_it_leave_the_list(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """Failures -> group -> job -> Retry: the job waits again and the failure list is empty."""
    jid = _fail(engine_b, "billing", 1, "billing-ValueError", "cannot parse <b>amount</b>")[0]
    page.goto(dashboard_url + "/jobs/failed/")
    page.click("text=billing-ValueError")
    page.click(f"a[href='/jobs/job/{jid}/']")
    assert page.inner_text("#job-failure") == "cannot parse <b>amount</b>"
    page.click("button[data-action=retry]")
    page.wait_for_selector("text=Retried 1 job")
    assert engine_b.jobs[jid].state.value == "waiting"
    page.goto(dashboard_url + "/jobs/failed/")
    assert page.locator("#failure_groups").inner_text().count("No failed jobs.") == 1


def test_bulk_cancel_from_a_queue_page(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """Select all on the waiting tab, Cancel, confirm: the jobs are gone."""
    jids = engine_b.queues["imports"].put_many([("app.imports.Row", {"row": i}) for i in range(5)])
    keep = engine_b.queues["imports"].put("app.imports.Row", {"row": 99}, delay=600)
    page.goto(dashboard_url + "/jobs/queue/imports/?tab=waiting")
    assert page.locator("tr[data-jid]").count() == 5
    cancel = page.locator("button[value=cancel]")
    assert cancel.is_disabled()
    page.check("input[data-select-all]")
    assert page.inner_text("[data-selected-count]") == "5"
    cancel.click()
    page.wait_for_selector("text=Canceled 5 jobs")
    assert all(j not in engine_b.jobs for j in jids) and keep in engine_b.jobs


def test_screenshots_of_overview_and_queue_stats(page: Any, dashboard_url: str, engine_b: Any,
                                                 tmp_path: Path) -> None:
    """Overview and queue stats with a realistic workload (kept in docs/ by `make screenshots`)."""
    import random

    rnd = random.Random(7)
    for name, n in (("emails", 40), ("reports", 12), ("images", 25)):
        q = engine_b.queues[name]
        q.put_many([{"klass": f"app.{name}.Task", "data": {"i": i}, "priority": i % 3, "tags": [name]}
                    for i in range(n)])
        for job in q.pop(n // 2):
            job.complete({"ok": rnd.random()})
        q.pop(2)
        q.put("app.later.Task", {}, delay=rnd.randint(60, 3600))
    _fail(engine_b, "emails", 4, "emails-SMTPError", "550 mailbox unavailable")
    _fail(engine_b, "images", 2, "images-OSError", "cannot identify image file")
    engine_b.queues["reports"].recur("app.reports.Daily", {}, cron="30 2 * * *")
    engine_b.workers.register("web-1-4242", {"host": "web-1", "pid": 4242, "queues": ["emails", "images"],
                                             "concurrency": 8, "mode": "reliable"})
    out = Path(SHOTS) if SHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page.goto(dashboard_url + "/jobs/")
    page.wait_for_selector("tr[data-queue=emails]")
    page.screenshot(path=str(out / "dashboard-overview.png"), full_page=True)
    page.goto(dashboard_url + "/jobs/queue/emails/")
    page.wait_for_selector("svg.histogram")
    page.screenshot(path=str(out / "dashboard-queue-stats.png"), full_page=True)
    for name in ("dashboard-overview.png", "dashboard-queue-stats.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_phone_width_and_dark_theme(browser: Any, login_state: str, dashboard_url: str, engine_b: Any) -> None:
    """At a phone's width nothing but the tables scrolls sideways; dark mode follows the system."""
    _fail(engine_b, "billing", 2, "billing-ValueError", "a rather long failure message " * 5)
    engine_b.queues["a-queue-with-a-long-name"].put_many([("app.jobs.X", {"i": i}) for i in range(5)])
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(storage_state=login_state, viewport={"width": 390, "height": 844},
                                      color_scheme=scheme)
        page = context.new_page()
        for path in ("/jobs/", "/jobs/failed/", "/jobs/queue/a-queue-with-a-long-name/?tab=waiting"):
            page.goto(dashboard_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 391, (scheme, path, width)
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        context.close()
    assert backgrounds["light"] != backgrounds["dark"]
