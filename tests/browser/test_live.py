"""Live updates in a real browser: pushed over the websocket, no reload, and measured."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.browser.conftest import NAMESPACE, ROOT

pytestmark = pytest.mark.browser

OBSERVE = """() => {
  window.__seen = {};
  window.__marker = 'no reload';
  new MutationObserver(() => {
    document.querySelectorAll('tr[data-queue]').forEach(r => {
      const q = r.getAttribute('data-queue');
      if (!(q in window.__seen)) window.__seen[q] = Date.now();
    });
  }).observe(document.body, {childList: true, subtree: true});
}"""


def put_from_another_process(redis_url: str, queue: str) -> None:
    code = (f"from queueengine import Client; c = Client.from_url({redis_url!r}, namespace={NAMESPACE!r}); "
            f"c.queues[{queue!r}].put('app.jobs.FromElsewhere', {{}}); c.close()")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_overview_shows_a_job_put_by_another_process(page: Any, dashboard_url: str, redis_url: str,
                                                     engine_b: Any) -> None:
    """With the overview open, a queue created elsewhere appears without a reload."""
    page.goto(dashboard_url + "/jobs/")
    page.wait_for_selector("#live-badge[data-live-state=live]")
    page.evaluate(OBSERVE)
    put_from_another_process(redis_url, "elsewhere")
    page.wait_for_selector("tr[data-queue=elsewhere]")
    assert page.evaluate("window.__marker") == "no reload"
    assert page.inner_text("#live-badge") == "live"


def test_job_page_goes_running_then_complete(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """A job's page follows it: waiting, running (with its worker), complete (with its result)."""
    jid = engine_b.queues["story"].put("app.jobs.Story", {"step": 1})
    page.goto(f"{dashboard_url}/jobs/job/{jid}/")
    page.wait_for_selector("#live-badge[data-live-state=live]")
    assert page.inner_text("#job-state-value") == "waiting"
    job = engine_b.queues["story"].pop()
    page.wait_for_selector("#job-state-value .badge-running")
    assert "browser-tests" in page.inner_text("#job_state")
    job.complete({"rows": 1234})
    page.wait_for_selector("#job-state-value .badge-complete")
    assert '"rows": 1234' in page.inner_text("#job-result")
    assert "done" in page.inner_text("#job_timeline")


def test_event_to_dom_latency_over_twenty_events(page: Any, dashboard_url: str, engine_b: Any) -> None:
    """Twenty puts, each seen in the DOM by a MutationObserver; median and p95 are reported
    (QE_LATENCY_REPORT=path writes them as JSON for the README)."""
    page.goto(dashboard_url + "/jobs/")
    page.wait_for_selector("#live-badge[data-live-state=live]")
    page.evaluate(OBSERVE)
    latencies = []
    for i in range(20):
        name = f"lat-{i:02d}"
        start_ms = time.time() * 1000
        engine_b.queues[name].put("app.jobs.Tick", {"i": i})
        page.wait_for_selector(f"tr[data-queue={name}]")
        latencies.append(page.evaluate(f"window.__seen[{name!r}]") - start_ms)
        page.wait_for_timeout(120)   # let each event stand alone (not one burst)
    assert len(latencies) == 20 and all(v > 0 for v in latencies)
    median = statistics.median(latencies)
    p95 = sorted(latencies)[18]
    report = {"events": 20, "median_ms": round(median, 1), "p95_ms": round(p95, 1),
              "max_ms": round(max(latencies), 1)}
    print("event-to-DOM latency:", report)
    if os.environ.get("QE_LATENCY_REPORT"):
        with open(os.environ["QE_LATENCY_REPORT"], "w") as fh:
            json.dump(report, fh)


def test_falls_back_to_polling_when_the_socket_cannot_connect(page: Any, dashboard_url: str,
                                                              engine_b: Any) -> None:
    """The websocket is refused: the badge says so and the page polls its fragments instead."""
    page.route_web_socket("**/ws/live/**", lambda ws: ws.close(code=4403))
    page.goto(dashboard_url + "/jobs/")
    page.wait_for_selector("#live-badge[data-live-state=polling]")
    page.evaluate(OBSERVE)
    engine_b.queues["polled"].put("app.jobs.X", {})
    page.wait_for_selector("tr[data-queue=polled]", timeout=30_000)
    assert page.evaluate("window.__marker") == "no reload"
