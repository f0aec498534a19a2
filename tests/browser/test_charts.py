"""The Charts page in a real Chromium (issue 15): its SVG charts, filters that change them, a new
completion arriving without a reload, hover titles, phone width and the dark theme."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser

ODD = 'emails/daily "x"'


def finish(client: Any, queue: str, klass: str, n: int = 1, fail: bool = False) -> None:
    q = client.queues[queue]
    q.put_many([(klass, {"i": i}) for i in range(n)])
    for job in q.pop(n):
        if fail:
            job.fail(f"{queue}-Boom", "boom")
        else:
            job.complete()


def test_charts_show_filter_and_update_live(page: Any, dashboard_url: str, engine_b: Any) -> None:
    finish(engine_b, "emails", "app.Send", 3)
    finish(engine_b, ODD, "app.Odd", 2)
    finish(engine_b, ODD, "app.Odd", 1, fail=True)
    page.goto(dashboard_url + "/jobs/charts/")
    page.wait_for_selector("#live-badge[data-live-state=live]")
    assert page.locator("#charts_body svg.metrics-chart").count() == 3
    assert page.inner_text('[data-total="completed"]') == "5"
    assert page.locator('tr[data-klass="app.Odd"]').count() == 1
    # the hover title of a throughput bar gives its counts
    titles = page.eval_on_selector_all("svg.throughput-chart .bar-group > title", "els => els.map(e => e.textContent)")
    assert any(t.endswith("5 completed, 1 failed") for t in titles), titles
    # a queue filter (a name that needs encoding) changes the charts and lands in the URL
    page.select_option("select[name=queue]", ODD)
    page.wait_for_function("q => document.querySelector('#charts_body').dataset.queue === q", arg=ODD)
    assert parse_qs(urlsplit(page.url).query)["queue"] == [ODD]
    assert page.inner_text('[data-total="completed"]') == "2"
    assert page.inner_text('[data-total="failed"]') == "1"
    # a window link keeps the filter
    page.click("a[data-window='24h']")
    page.wait_for_selector("#charts_body[data-window='24h']")
    assert page.inner_text('[data-total="completed"]') == "2" and "window=24h" in page.url
    # a new completion shows without a reload
    marker = page.evaluate("window.__marker = Math.random()")
    finish(engine_b, ODD, "app.Live", 1)
    page.wait_for_selector('tr[data-klass="app.Live"]')
    assert page.inner_text('[data-total="completed"]') == "3"
    assert page.evaluate("window.__marker") == marker             # the same page: no reload


def test_charts_fit_a_phone_in_light_and_dark(browser: Any, login_state: str, dashboard_url: str,
                                             engine_b: Any) -> None:
    finish(engine_b, "a-queue-with-a-long-name", "app.some.rather.long.module.path.TaskClass", 4)
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(storage_state=login_state, viewport={"width": 390, "height": 844},
                                      color_scheme=scheme)
        page = context.new_page()
        page.goto(dashboard_url + "/jobs/charts/")
        page.wait_for_selector("svg.throughput-chart")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 391, (scheme, width)
        # measured in the page in one step: a live push may swap the chart in between two calls
        box = page.evaluate("(() => { const r = document.querySelector('svg.throughput-chart')"
                            ".getBoundingClientRect(); return {width: r.width, height: r.height}; })()")
        assert box["width"] <= 390 and box["height"] > 60, (scheme, box)
        colours[scheme] = page.evaluate(
            "getComputedStyle(document.querySelector('svg.throughput-chart .tick-label')).fill")
        context.close()
    assert colours["light"] != colours["dark"]          # the labels follow the theme


def test_failures_page_trend_and_queue_backlog_render(page: Any, dashboard_url: str, engine_b: Any) -> None:
    finish(engine_b, "trend", "app.T", 2, fail=True)
    engine_b.queues["trend"].put_many([("app.Waiting", {}) for _ in range(3)])
    page.goto(dashboard_url + "/jobs/failed/")
    page.wait_for_selector('tr[data-group="trend-Boom"] svg.trend')
    assert page.inner_text('tr[data-group="trend-Boom"] [data-recent]') == "2 in 24 h"
    page.goto(dashboard_url + "/jobs/queue/trend/")
    page.wait_for_selector("[data-backlog='3']")
    assert "app.Waiting" in page.inner_text(".backlog")
    for job in engine_b.queues["trend"].pop(1):          # the backlog drops live
        job.complete()
    page.wait_for_selector("[data-backlog='2']")


def test_screenshots_of_the_charts_page(page: Any, dashboard_url: str, engine_b: Any, redis_url: str,
                                        tmp_path: Any) -> None:
    """The Charts page over an hour of a realistic workload (kept in docs/ by `make screenshots`)."""
    import os
    import random
    from pathlib import Path

    from queueengine import Client
    from queueengine.devtools.testing import ManualClock

    rnd = random.Random(15)
    now = engine_b.now()
    clock = ManualClock(now - 3600)
    writer = Client.from_url(redis_url, namespace=engine_b.namespace, clock=clock, worker_name="shots")
    try:
        kinds = (("emails", "app.emails.Send", 0.04, 0.02), ("images", "app.images.Resize", 0.35, 0.05),
                 ("reports", "app.reports.Build", 2.5, 0.01))
        for minute in range(60):
            for queue, klass, typical, fail_rate in kinds:
                q = writer.queues[queue]
                for _ in range(rnd.randint(2, 6)):
                    clock.set(now - 3600 + minute * 60 + rnd.uniform(0, 50))
                    q.put(klass, {})
                    clock.advance(rnd.expovariate(1 / (0.05 + minute / 600)))
                    job = q.pop()
                    clock.advance(typical * rnd.lognormvariate(0, 0.5 + (minute > 45)))
                    if rnd.random() < fail_rate:
                        job.fail(f"{queue}-TimeoutError", "upstream timed out")
                    else:
                        job.complete()
    finally:
        writer.close()
    out = Path(os.environ["QE_SCREENSHOT_DIR"]) if os.environ.get("QE_SCREENSHOT_DIR") else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page.goto(dashboard_url + "/jobs/charts/")
    page.wait_for_selector("svg.throughput-chart .bar-group")
    page.screenshot(path=str(out / "dashboard-charts.png"), full_page=True)
    data = (out / "dashboard-charts.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
