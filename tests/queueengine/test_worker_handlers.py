"""The worker's handlers and results, in this process against real Redis time: return values
stored, exceptions grouped with tracebacks, class handlers, import errors, retries with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest
import redis

from queueengine import Client, JobFailed
from queueengine.worker import Worker
from queueengine.worker.handlers import constant, exponential, import_path, linear, resolve, retry
from tests import jobfixtures
from tests.queueengine.workerfixtures import burst, client, key, other, start_worker

__all__ = ["client", "other", "start_worker"]   # fixtures, imported for pytest


# ---------------------------------------------------------------------- handlers and results
def test_auto_complete_stores_the_return_value(client: Client) -> None:
    q = client.queues["q"]
    jid = q.put("tests.jobfixtures.add", {"x": 2, "y": 3})
    jid2 = q.put("tests.jobfixtures.echo", {"nested": [1, {"a": None}]})
    worker = burst(client, ["q"])
    job = client.jobs[jid]
    assert job.state == "complete" and job.result == 5
    assert client.jobs[jid2].result == {"nested": [1, {"a": None}]}
    assert worker.processed == 2 and worker.failed == 0
    assert client.workers.counts == [], "a worker deregisters on exit"


def test_exception_fails_in_queue_exception_group_with_traceback(client: Client) -> None:
    jid = client.queues["imports"].put("tests.jobfixtures.boom", {"what": "widget"})
    burst(client, ["imports"])
    job = client.jobs[jid]
    assert job.state == "failed"
    assert job.failure is not None
    assert job.failure["group"] == "imports-KeyError"
    assert "no such thing: widget" in job.failure["message"]
    assert "jobfixtures.py" in job.failure["traceback"] and "raise KeyError" in job.failure["traceback"]
    assert client.jobs.failed() == {"imports-KeyError": 1}


def test_class_handlers_dispatch_on_queue_name_then_process(client: Client) -> None:
    a = client.queues["thumbnails"].put("tests.jobfixtures.Resize", {})
    b = client.queues["other"].put("tests.jobfixtures.Resize", {})
    c = client.queues["other"].put("tests.jobfixtures.Static", {})
    burst(client, ["thumbnails", "other"])
    assert [client.jobs[j].result for j in (a, b, c)] == ["thumbnails", "process", "static"]


def test_import_errors_and_missing_methods_get_clear_groups(client: Client) -> None:
    q = client.queues["q"]
    missing_module = q.put("tests.no_such_module.handler", {})
    missing_attr = q.put("tests.jobfixtures.no_such_function", {})
    no_method = q.put("tests.jobfixtures.NoMethod", {})
    burst(client, ["q"])
    assert client.jobs[missing_module].failure["group"] == "q-ImportError"
    assert "tests.no_such_module" in client.jobs[missing_module].failure["message"]
    assert client.jobs[missing_attr].failure["group"] == "q-ImportError"
    assert "no_such_function" in client.jobs[missing_attr].failure["message"]
    assert client.jobs[no_method].failure["group"] == "q-method-missing"
    assert "'process'" in client.jobs[no_method].failure["message"]


def test_a_handler_that_settles_its_job_is_left_alone(client: Client) -> None:
    q = client.queues["q"]
    failed = q.put("tests.jobfixtures.settles_itself", {})
    done = q.put("tests.jobfixtures.completes_itself", {})
    burst(client, ["q"])
    assert client.jobs[failed].state == "failed"
    assert client.jobs[failed].failure["group"] == "custom-group"
    assert client.jobs[done].state == "complete" and client.jobs[done].result == {"by": "handler"}


def test_a_result_that_is_not_json_fails_the_job_clearly(client: Client) -> None:
    jid = client.queues["q"].put("tests.jobfixtures.unserializable", {})
    ok = client.queues["q"].put("tests.jobfixtures.add", {"x": 1, "y": 1})
    burst(client, ["q"])
    job = client.jobs[jid]
    assert job.state == "failed" and job.failure["group"].startswith("q-")
    assert "result" in job.failure["message"]
    assert client.jobs[ok].result == 2, "one bad result does not spoil the batch"


# ---------------------------------------------------------------------- retries and backoff
def test_retryable_exception_backs_off_and_the_real_error_survives_exhaustion(
        client: Client, start_worker: Callable[..., Worker]) -> None:
    jid = client.queues["q"].put("tests.jobfixtures.Flaky", {}, retries=2, reply=True)
    start_worker(["q"])
    started = time.monotonic()
    with pytest.raises(JobFailed):
        client.wait(jid, timeout=15)
    elapsed = time.monotonic() - started
    job = client.jobs[jid]
    assert job.state == "failed"
    assert job.failure["group"] == "q-TimeoutError", "not a generic failed-retries group"
    assert "upstream timed out (attempt 3)" in job.failure["message"]
    assert "raise TimeoutError" in job.failure["message"]
    assert elapsed >= 0.05 + 0.1, "two retries waited 0.05 s and 0.1 s of backoff"
    popped = [h for h in job.history if h["what"] == "popped"]
    assert len(popped) == 3


def test_retry_decorator_on_a_function(client: Client, redis_conn: redis.Redis,
                                       start_worker: Callable[..., Worker]) -> None:
    counter = key()
    jid = client.queues["q"].put("tests.jobfixtures.flaky_function", {"counter": counter, "succeed_on": 3},
                                 retries=5, reply=True)
    start_worker(["q"])
    assert client.wait(jid, timeout=15) == "ok after 3"
    assert client.jobs[jid].retries_left == 3


def test_backoff_functions() -> None:
    exp = exponential(base=1, factor=2, max=10)
    assert [exp(n) for n in (1, 2, 3, 4, 5, 10_000)] == [1, 2, 4, 8, 10, 10]
    jittered = exponential(base=1, factor=2, max=10, jitter=0.5)
    assert all(4 <= jittered(3) <= 6 for _ in range(50))
    assert linear(3, max=7)(2) == 6 and linear(3, max=7)(5) == 7
    assert constant(2.5)(9) == 2.5
    with pytest.raises(ValueError):
        exponential(factor=0.5)
    with pytest.raises(TypeError):
        retry(on="not an exception")  # type: ignore[arg-type]


def test_resolve_and_import_path() -> None:
    assert import_path("tests.jobfixtures.Resize.process") is jobfixtures.Resize.process
    handler = resolve("tests.jobfixtures.Flaky", "q")
    assert handler.policy is not None and handler.policy.on == (TimeoutError,)
    assert resolve("tests.jobfixtures.async_add", "q").is_async
    assert not resolve("tests.jobfixtures.add", "q").is_async
    assert resolve("nodots", "q").error_group == "q-ImportError"


@pytest.mark.parametrize("raw", ['{"x": 1e999, "y": 1}', "not json", '{"x": NaN}'])
def test_a_job_whose_data_cannot_be_read_fails_and_the_worker_goes_on(client: Client, redis_conn: redis.Redis,
                                                                       raw: str) -> None:
    """Data written around the engine (raw HSET, another client, an older version) that Python
    cannot read: that job fails in <queue>-UnreadableData naming the problem; the jobs popped with
    it run, and the worker exits normally (it used to die with a JSONDecodeError)."""
    q = client.queues["q"]
    before = q.put("tests.jobfixtures.add", {"x": 1, "y": 1})
    bad = q.put("tests.jobfixtures.add", {"x": 1, "y": 2})
    after = q.put("tests.jobfixtures.add", {"x": 2, "y": 2})
    redis_conn.hset(client.prefix + f"j:{bad}", "data", raw)
    burst(client, ["q"], concurrency=4)
    assert [client.jobs[j].result for j in (before, after)] == [2, 4]
    state, failure = redis_conn.hmget(client.prefix + f"j:{bad}", "state", "failure")
    assert state == b"failed"
    group, message = orjson.loads(failure)["group"], orjson.loads(failure)["message"]
    assert group == "q-UnreadableData" and "is not JSON that can be read" in message and raw[:8] in message
