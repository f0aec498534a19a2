"""The Charts page, the queue page's backlog and time to drain, the stats tab's millisecond
histograms and the failures page's trends (issue 15), rendered by the real dashboard views over
the real engine."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async

from jobadmin import live
from jobadmin import metrics_charts as mc
from queueengine import Client
from queueengine.devtools.testing import ManualClock

ODD = 'emails/daily "x" café'


@pytest.fixture
def timed(redis_url: str, redis_conn: Any) -> Iterator[Client]:
    """An engine client whose clock starts at the beginning of the server's current minute, so run
    times are exact, a test's few seconds of runs share one minute, and they land where the
    dashboard (on server time) reads."""
    sec, _ = redis_conn.time()
    client = Client.from_url(redis_url, namespace="test", clock=ManualClock(sec - sec % 60 + 0.5), worker_name="w")
    yield client
    client.close()


def run(q: Any, klass: str, seconds: float, outcome: str = "complete") -> str:
    jid = q.put(klass, {}, retries=0)
    job = q.pop()
    assert job is not None
    q.client.clock.advance(seconds)
    if outcome == "complete":
        job.complete()
    else:
        job.fail(f"{q.name}-Boom", "boom")
    return jid


def charts(web: Any, **params: str) -> str:
    response = web.get("/jobs/charts/" + ("?" + urlencode(params) if params else ""))
    assert response.status_code == 200
    return response.content.decode()


def body(page: str) -> str:
    return page[page.index('<section id="charts_body"'):]


def total(page: str, name: str) -> int:
    m = re.search(rf'data-total="{name}">([\d,]+)<', page)
    assert m is not None, name
    return int(m.group(1).replace(",", ""))


def test_the_charts_page_draws_throughput_and_percentiles(admin_web: Any, timed: Client) -> None:
    q = timed.queues["emails"]
    for _ in range(3):
        run(q, "app.Send", 0.004)
    run(q, "app.Render", 0.050)
    run(q, "app.Render", 2.5, outcome="fail")
    page = charts(admin_web)
    assert 'data-nav="charts"' in page                       # in the navigation
    assert page.count('<svg class="chart metrics-chart') == 3
    assert "throughput-chart" in page and page.count("times-chart") == 2
    assert total(page, "completed") == 4 and total(page, "failed") == 1
    # hover titles on points and bars, axes with units, millisecond labels
    assert re.search(r"<title>p50 run at \d\d:\d\d: 4\.\d ms \(5 jobs\)</title>", page)
    assert re.search(r"<title>p99 run at \d\d:\d\d: 2\.\d\d s \(5 jobs\)</title>", page)
    assert re.search(r"<title>\d\d:\d\d: 4 completed, 1 failed</title>", page)
    assert "seconds, log scale" in page and "time (UTC), 1 minute per point" in page
    # the per-class table: counts, failure rate, percentiles, share of run time
    row = re.search(r'<tr data-klass="app.Render">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = [htmllib.unescape(re.sub("<.*?>", "", c)).strip() for c in re.findall(r"<td.*?</td>", row.group(1), re.S)]
    assert cells[0] == "app.Render" and cells[1:5] == ["1", "1", "50.0%", "0"]
    share = float(cells[9].rstrip("%"))
    assert 90 < share <= 100                                    # 2.55 s of about 2.56 s


def test_filters_and_windows_live_in_the_url(admin_web: Any, timed: Client) -> None:
    run(timed.queues["emails"], "app.Send", 0.01)
    run(timed.queues[ODD], "app.Send", 0.01)
    run(timed.queues[ODD], "<b>app.Odd</b>", 0.01)
    assert total(charts(admin_web), "completed") == 3
    page = charts(admin_web, queue=ODD)
    assert total(page, "completed") == 2
    assert f'<option value="{htmllib.escape(ODD, quote=True)}" selected>' in page or \
        'selected>emails/daily &quot;x&quot; café</option>' in page
    page = charts(admin_web, queue=ODD, klass="<b>app.Odd</b>")
    assert total(page, "completed") == 1
    assert "<b>app.Odd</b>" not in body(page) and "&lt;b&gt;app.Odd&lt;/b&gt;" in body(page)
    for window, words in (("8h", "10 minutes per point"), ("24h", "1 hour per point"),
                          ("7d", "3 hours per point"), ("30d", "12 hours per point")):
        page = charts(admin_web, window=window, queue="emails")
        assert words in page and total(page, "completed") == 1
        assert f'href="?window={window}&amp;queue=emails" class="current"' in page
    assert "1 minute per point" in charts(admin_web, window="forever")    # unknown: the default
    assert total(charts(admin_web, queue="never-used"), "completed") == 0


def test_the_live_render_is_the_charts_fragment(admin_web: Any, timed: Client) -> None:
    assert live.PAGE_TOPICS["charts"]({}) == ["metrics"]
    for event in ("completed", "failed", "retried", "popped"):
        assert "metrics" in live.topics_for_event(event, "j", "q")
    assert "metrics" not in live.topics_for_event("heartbeat", "j", "q")
    run(timed.queues["emails"], "app.Send", 0.01)
    response = admin_web.get("/jobs/charts/?window=24h", HTTP_X_LIVE_RENDER="1")
    fragment = response.content.decode()
    assert fragment.startswith('<section id="charts_body" data-window="24h"') and "<form" not in fragment


def test_anonymous_users_are_sent_to_log_in(client: Any) -> None:
    response = client.get("/jobs/charts/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_queue_page_shows_backlog_by_class_and_time_to_drain(admin_web: Any, timed: Client, qe: Client) -> None:
    q = qe.queues["drainy"]
    q.put_many([("app.A", {}) for _ in range(6)] + [("app.B", {}) for _ in range(2)])
    page = admin_web.get("/jobs/queue/drainy/?tab=waiting").content.decode()
    assert 'data-backlog="8"' in page and '<span class="mono">app.A</span> 6' in page
    assert '<strong data-eta>—</strong>' in page                # nothing has drained yet
    for job in q.pop(3):
        job.complete()
    page = admin_web.get("/jobs/queue/drainy/").content.decode()
    eta = re.search(r"<strong data-eta>(.*?)</strong>", page)
    assert eta is not None and eta.group(1) != "—" and "jobs/s (last 5 minutes)" in page
    assert 'data-backlog="5"' in page and re.search(r"oldest waiting: <strong data-oldest>\d", page)


def test_stats_tab_histograms_have_millisecond_buckets(admin_web: Any, timed: Client) -> None:
    q = timed.queues["ms"]
    for seconds in (0.004, 0.004, 0.050):
        run(q, "app.K", seconds)
    page = admin_web.get("/jobs/queue/ms/?tab=stats").content.decode()
    run_panel = page[page.index("Run time (popped to done)</h3>"):]
    assert re.search(r"<title>3\.8 ms–4\.6 ms: 2 jobs</title>", run_panel)
    assert re.search(r"p50 / p95 / p99</dt><dd[^>]*>4\.\d ms / 5\d ms / 5\d ms", run_panel)


def test_failures_page_shows_each_groups_trend(admin_web: Any, timed: Client) -> None:
    q = timed.queues["trendy"]
    for _ in range(3):
        run(q, "app.K", 0.01, outcome="fail")
    page = admin_web.get("/jobs/failed/").content.decode()
    row = re.search(r'<tr data-group="trendy-Boom">(.*?)</tr>', page, re.S)
    assert row is not None
    assert '<svg class="chart sparkline trend"' in row.group(1) and 'data-recent="3"' in row.group(1)
    assert re.search(r"<title>[\d-]+ \d\dh: 3</title>", row.group(1))
    assert "First seen" in page and "Last seen" in page


def test_formatting_in_milliseconds() -> None:
    assert [mc.ms(v) for v in (None, 0.00042, 0.0042, 0.053, 2.5, 25.0, 200.0)] == [
        "–", "0.42 ms", "4.2 ms", "53 ms", "2.50 s", "25.0 s", "3 m 20 s"]
    assert str(mc.histogram_svg([0] * 131, "t")).count("no samples") == 1
    empty = {"t": [0, 60], "step": 60, "completed": [0, 0], "failed": [0, 0],
             "wait": {"count": [0, 0], "p50": [None, None], "p95": [None, None], "p99": [None, None], "max": [None, None]}}
    assert "no jobs finished" in str(mc.throughput_svg(empty, "t"))
    assert "no jobs in this window" in str(mc.times_svg(empty, "wait", "t"))


@pytest.mark.django_db(transaction=True)
async def test_a_completion_is_pushed_to_an_open_charts_tab(django_user_model: Any, timed: Client) -> None:
    """A tab on the Charts page follows the metrics topic: a job finished elsewhere arrives as a
    fresh charts_body fragment."""
    from tests.jobadmin.test_live import connect, staff_cookie

    staff = await staff_cookie(django_user_model)
    comm, connected, _ = await connect("/jobs/charts/?queue=pushed", staff)
    try:
        assert connected
        first = await comm.receive_from(timeout=20)
        assert '<section id="charts_body"' in first and 'data-total="completed">0<' in first
        await sync_to_async(run)(timed.queues["pushed"], "app.Pushed", 0.02)
        for _ in range(10):
            pushed = await comm.receive_from(timeout=20)
            if 'data-total="completed">1<' in pushed:
                break
        assert 'data-total="completed">1<' in pushed and "app.Pushed" in pushed
    finally:
        await comm.disconnect()
        await live.shutdown()
