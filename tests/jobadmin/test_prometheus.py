"""/jobs/metrics: the engine's metrics as Prometheus histograms and counters (issue 15), read back
with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobadmin import prometheus
from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.operator import metrics as mt

ODD_QUEUE = 'emails/daily "x"'


@pytest.fixture
def timed(redis_url: str, redis_conn: Any) -> Iterator[Client]:
    """An engine client whose clock starts at the server's time: runs take exactly what the test
    says, and land in the hour the dashboard reads."""
    sec, usec = redis_conn.time()
    client = Client.from_url(redis_url, namespace="test", clock=ManualClock(sec + usec / 1e6), worker_name="w")
    yield client
    client.close()


def run(q: Any, klass: str, seconds: float, outcome: str = "complete") -> None:
    q.put(klass, {}, retries=1)
    job = q.pop()
    q.client.clock.advance(seconds)
    if outcome == "complete":
        job.complete()
    elif outcome == "fail":
        job.fail("boom-group", "boom")
    else:
        job.retry()


def scrape(web: Any) -> dict[str, Any]:
    response = web.get("/jobs/metrics")
    assert response.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def samples(family: Any, suffix: str = "", **labels: str) -> dict[str, float]:
    """{le or '': value} of a family's samples with these labels and name suffix."""
    return {s.labels.get("le", ""): s.value for s in family.samples
            if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())}


def test_histograms_and_counters_parse_and_match_the_engine(admin_web: Any, timed: Client) -> None:
    q, odd = timed.queues["api"], timed.queues[ODD_QUEUE]
    for seconds in (0.004, 0.040, 2.0):
        run(q, "app.Fast", seconds)
    run(q, "app.Fast", 0.2, "fail")
    run(q, "app.Slow", 0.3, "retry")
    run(odd, "app.Fast", 0.05)
    q.put("app.Fast", {})                       # one waiting job: the oldest-waiting gauge
    families = scrape(admin_web)
    hist = families["queueengine_job_run_seconds"]
    assert hist.type == "histogram"
    buckets = samples(hist, "_bucket", queue="api", klass="app.Fast")
    assert list(buckets)[-1] == "+Inf" and [float(k) for k in list(buckets)[:-1]] == list(prometheus.PROMETHEUS_BUCKETS)
    values = list(buckets.values())
    assert values == sorted(values)
    assert buckets["0.005"] == 1 and buckets["0.05"] == 2 and buckets["0.25"] == 3 and buckets["2.5"] == 4
    assert buckets["1"] == 3 and buckets["+Inf"] == 4
    # the counts are the engine's own: each le counts the engine buckets whose value is <= it
    engine = {(r["queue"], r["klass"]): r for r in timed.metrics.totals()}
    fast = engine[("api", "app.Fast")]
    for le, value in buckets.items():
        bound = float(le)
        assert value == sum(n for i, n in enumerate(fast["run"]) if mt.representative(i) <= bound), le
    assert samples(hist, "_count", queue="api", klass="app.Fast")[""] == sum(fast["run"]) == 4
    assert abs(samples(hist, "_sum", queue="api", klass="app.Fast")[""] - 2.244) < 0.1 * 2.244
    wait = families["queueengine_job_wait_seconds"]
    assert samples(wait, "_count", queue="api", klass="app.Slow")[""] == sum(engine[("api", "app.Slow")]["wait"]) == 1
    assert samples(hist, "_count", queue=ODD_QUEUE, klass="app.Fast")[""] == 1
    completed = families["queueengine_jobs_completed"]
    assert completed.type == "counter"
    assert samples(completed, "_total", queue="api", klass="app.Fast")[""] == fast["completed"] == 3
    assert samples(families["queueengine_jobs_failed"], "_total", queue="api", klass="app.Fast")[""] == 1
    assert samples(families["queueengine_jobs_retried"], "_total", queue="api", klass="app.Slow")[""] == 1
    oldest = families["queueengine_queue_oldest_waiting_seconds"]
    assert oldest.type == "gauge" and samples(oldest, queue="api")[""] >= 0
    assert samples(oldest, queue=ODD_QUEUE)[""] == 0
    # counters only grow: a later scrape sees more
    run(odd, "app.Fast", 0.004)
    again = scrape(admin_web)
    assert samples(again["queueengine_jobs_completed"], "_total", queue=ODD_QUEUE, klass="app.Fast")[""] == 2
    assert samples(again["queueengine_job_run_seconds"], "_bucket", queue=ODD_QUEUE, klass="app.Fast")["0.005"] == 1


def test_classes_past_the_cap_are_summed_as_other(admin_web: Any, timed: Client,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "CLASS_LABELS", 2)
    q = timed.queues["capped"]
    for klass in ("app.A", "app.B", "app.C", "app.D"):
        run(q, klass, 0.01)
    completed = scrape(admin_web)["queueengine_jobs_completed"]
    labels = {s.labels["klass"]: s.value for s in completed.samples if s.labels["queue"] == "capped"}
    assert labels == {"app.A": 1, "app.B": 1, prometheus.OTHER: 2}


def test_engine_buckets_map_to_the_nearest_prometheus_bound() -> None:
    for seconds in (0.004, 0.0049, 0.0055, 0.05, 0.9, 2.4, 3000.0, 7200.0):
        le_index = prometheus._LE_OF_BUCKET[mt.bucket_of(seconds)]
        bounds = (*prometheus.PROMETHEUS_BUCKETS, float("inf"))
        # counted under the first bound at or above the value, give or take the bucket's 10%
        assert bounds[le_index] >= seconds * 0.9
        assert le_index == 0 or bounds[le_index - 1] < seconds * 1.1


def test_a_second_scrape_counts_nothing_twice(admin_web: Any, timed: Client) -> None:
    """A scrape folds finished hours into the running totals once: scraping again with nothing
    new gives the same counters and histogram counts, for every queue and class."""
    for i in range(10):
        run(timed.queues[f"q{i}"], f"app.K{i % 3}", 0.01)
    first = scrape(admin_web)
    second = scrape(admin_web)
    for name in ("queueengine_jobs_completed", "queueengine_job_run_seconds"):
        assert [(s.name, s.labels, s.value) for s in first[name].samples] == \
            [(s.name, s.labels, s.value) for s in second[name].samples], name
    completed = sum(s.value for s in second["queueengine_jobs_completed"].samples if s.name.endswith("_total"))
    assert completed == 10
