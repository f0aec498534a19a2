"""The django.tasks backend: enqueue, run by a real worker, read results back (sync and async)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from queueengine.djtasks_compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)
from tests import djtasks_fixtures as fx


@pytest.fixture
def backend(redis_conn: Any) -> Any:
    """The default task backend, on a flushed Redis."""
    backend = fx.add.get_backend()
    backend._client = None  # a fresh client on the session's Redis URL
    yield backend
    if backend._client is not None:
        backend._client.close()
        backend._client = None


@pytest.fixture
def signals() -> Any:
    """Collect the three task signals."""
    seen: list[tuple[str, Any]] = []

    def recorder(name: str) -> Any:
        def receive(sender: Any, task_result: Any, **kwargs: Any) -> None:
            seen.append((name, task_result))
        return receive

    receivers = {
        task_enqueued: recorder("enqueued"), task_started: recorder("started"), task_finished: recorder("finished"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    yield seen
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def burst(*queues: str) -> None:
    """Run a worker in this process until the queues are empty."""
    args: list[str] = ["--burst"]
    for queue in queues:
        args += ["-q", queue]
    call_command("qe_worker", *args)


def test_backend_declares_every_feature(backend: Any) -> None:
    """defer, async, get_result and priority are all supported."""
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_puts_a_job_and_returns_a_ready_result(backend: Any, signals: Any) -> None:
    """The result's id is the job's jid; the job sits in the task's queue with its priority."""
    result = fx.send_mail.enqueue("ops@example.com")
    assert result.status == TaskResultStatus.READY
    assert result.args == ["ops@example.com"] and result.enqueued_at is not None
    job = backend.client.jobs[result.id]
    assert job.queue_name == "emails" and job.priority == 10
    assert job.klass == "queueengine.tasks.execute"
    assert "django-task" in job.tags
    assert [name for name, _ in signals] == ["enqueued"]
    assert backend.get_result(result.id).status == TaskResultStatus.READY


def test_worker_runs_the_task_and_the_result_is_readable(backend: Any, signals: Any) -> None:
    """A burst worker runs it; get_result reports SUCCESSFUL with value, times and worker ids."""
    result = fx.add.enqueue(2, 3)
    burst("default")
    done = fx.add.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 5
    assert done.started_at is not None and done.finished_at is not None
    assert done.started_at <= done.finished_at
    assert len(done.worker_ids) == 1 and done.worker_ids[0]
    assert done.attempts == 1
    assert [name for name, _ in signals] == ["enqueued", "started", "finished"]
    assert signals[-1][1].status == TaskResultStatus.SUCCESSFUL
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5


def test_failing_task_records_the_exception(backend: Any) -> None:
    """FAILED, with the exception's class path and traceback."""
    result = fx.explode.enqueue("boom <script>")
    burst("default")
    failed = fx.explode.get_result(result.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors and failed.errors[0].exception_class_path == "builtins.ValueError"
    assert "boom <script>" in failed.errors[0].traceback
    assert failed.errors[0].exception_class is ValueError
    with pytest.raises(ValueError):
        _ = failed.return_value


def test_context_and_async_tasks(backend: Any) -> None:
    """takes_context gets the live result; coroutine tasks run too."""
    with_context = fx.introspect.enqueue("x")
    doubled = fx.async_double.enqueue(21)
    burst("default")
    assert fx.introspect.get_result(with_context.id).return_value == {
        "id": with_context.id, "attempt": 1, "label": "x",
    }
    assert fx.async_double.get_result(doubled.id).return_value == 42


def test_run_after_defers_and_priority_orders(backend: Any) -> None:
    """run_after puts the job in scheduled; a higher priority pops first."""
    later = fx.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    assert backend.client.jobs[later.id].state == "scheduled"
    assert backend.get_result(later.id).status == TaskResultStatus.READY
    low = fx.add.using(priority=-5).enqueue(1, 2)
    high = fx.add.using(priority=50).enqueue(1, 3)
    popped = backend.client.queues["default"].pop(2)
    assert [job.jid for job in popped] == [high.id, low.id]


def test_engine_options_ride_on_the_task(backend: Any) -> None:
    """tags, retries and tracking through using()."""
    result = fx.add.using(tags=("billing",), retries=2, track=True).enqueue(1, 2)
    job = backend.client.jobs[result.id]
    assert "billing" in job.tags and job.original_retries == 2
    assert result.id in [j.jid for j in backend.client.jobs.tracked()["jobs"]]


def test_bad_options_and_queues_are_refused(backend: Any, redis_conn: Any) -> None:
    """InvalidTask, and nothing reaches Redis."""
    with pytest.raises(InvalidTask, match="retries"):
        fx.add.using(retries=-1)
    with pytest.raises(InvalidTask, match="tags"):
        fx.add.using(tags=("",))
    with pytest.raises(InvalidTask):
        fx.add.using(queue_name="not-allowed")
    with pytest.raises(InvalidTask):
        fx.add.using(priority=1000)
    assert redis_conn.dbsize() == 0


def test_unknown_result_id(backend: Any) -> None:
    """TaskResultDoesNotExist for a jid that is not a task."""
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result("no-such-jid")
    jid = backend.client.queues["default"].put("tests.jobfixtures.add", {"x": 1})
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(jid)


async def test_async_enqueue_and_get_result(backend: Any) -> None:
    """aenqueue and aget_result work from async code."""
    result = await fx.add.aenqueue(4, 4)
    fetched = await fx.add.aget_result(result.id)
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
