"""The JSON API and the Prometheus endpoint: content, and who may read them."""

from __future__ import annotations

from typing import Any

import pytest

from queueengine import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(qe: Client, failed_jobs: Any) -> dict[str, Any]:
    q = qe.queues["api"]
    jids = q.put_many([("app.jobs.X", {"i": i}) for i in range(3)])
    for job in q.pop(2):
        job.complete({"ok": True})
    failed = failed_jobs(2, group="api-KeyError", queue="api-f")
    qe.workers.register("w1", {"host": "h", "pid": 7, "queues": ["api"]})
    return {"jids": jids, "failed": failed}


def test_api_queues_job_failures_workers_stats(admin_web: Any, busy: dict[str, Any]) -> None:
    """Each endpoint answers JSON with the engine's figures."""
    queues = admin_web.get("/jobs/api/queues/").json()["queues"]
    row = next(q for q in queues if q["name"] == "api")
    assert row["waiting"] == 1 and row["today"]["completed"] == 2 and sum(row["done"]) == 2
    one = admin_web.get("/jobs/api/queues/api/?state=waiting").json()
    assert one["queue"]["name"] == "api" and one["jobs"]["total"] == 1
    assert one["jobs"]["jobs"][0]["jid"] == busy["jids"][2]
    job = admin_web.get(f"/jobs/api/job/{busy['jids'][0]}/").json()
    assert job["job"]["state"] == "complete" and job["job"]["result"] == {"ok": True}
    assert [h["what"] for h in job["job"]["history"]] == ["put", "popped", "done"]
    groups = admin_web.get("/jobs/api/failures/").json()
    assert groups["total"] == 1 and groups["groups"][0]["group"] == "api-KeyError"
    group = admin_web.get("/jobs/api/failures/?group=api-KeyError").json()
    assert group["jobs"]["total"] == 2
    workers = admin_web.get("/jobs/api/workers/").json()
    assert any(w["name"] == "w1" and w["status"] == "healthy" for w in workers["workers"])
    stats = admin_web.get("/jobs/api/queues/api/stats/").json()["stats"]
    assert stats["run"]["count"] == 2 and stats["wait"]["count"] == 2
    assert stats["run"]["p50"] is not None and len(stats["wait"]["histogram"]) == 148


def test_api_errors(admin_web: Any, busy: dict[str, Any]) -> None:
    """Unknown job or queue: 404 with a reason; bad arguments: 400 naming them."""
    assert admin_web.get("/jobs/api/job/nope/").status_code == 404
    assert admin_web.get("/jobs/api/queues/nope/").status_code == 404
    bad = admin_web.get("/jobs/api/queues/api/?state=sideways")
    assert bad.status_code == 400 and "kind must be one of" in bad.json()["error"]


def test_metrics_exposition(admin_web: Any, busy: dict[str, Any]) -> None:
    """Counts per queue and state, histograms with cumulative buckets, failures, workers."""
    response = admin_web.get("/jobs/metrics")
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert 'queueengine_jobs{queue="api",state="waiting"} 1' in text
    assert 'queueengine_failed_jobs{group="api-KeyError"} 2' in text
    assert 'queueengine_run_seconds_count{queue="api"} 2' in text
    assert 'queueengine_run_seconds_bucket{queue="api",le="+Inf"} 2' in text
    # w1 registered itself; "tester" is known from its pops
    assert 'queueengine_workers{status="healthy"} 2' in text and "queueengine_workers_alive 2" in text
    buckets = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('queueengine_wait_seconds_bucket{queue="api"')]
    assert len(buckets) == 149 and buckets == sorted(buckets) and buckets[-1] == 2


def test_token_or_staff_required(client: Any, user_with: Any, settings: Any, busy: dict[str, Any]) -> None:
    """Anonymous: 401; a wrong token: 401; the right bearer token or a staff session: 200."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "METRICS_TOKEN": "s3cret"}
    for path in ("/jobs/metrics", "/jobs/api/queues/"):
        assert client.get(path).status_code == 401
        assert client.get(path, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        assert client.get(path, HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
        assert user_with(staff=False).get(path).status_code == 401
        assert user_with().get(path).status_code == 200


def test_no_token_configured_means_staff_only(client: Any, busy: dict[str, Any]) -> None:
    """Without METRICS_TOKEN no bearer token works."""
    assert client.get("/jobs/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
