"""The django.tasks backend: enqueue, run by a real worker, read results back (sync and async)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils import timezone

from queueengine.djtasks_compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)
from queueengine.tasks import QueueEngineBackend, QueueEngineTask
from tests import djtasks_fixtures as fx

try:
    from django.tasks import task
except ImportError:  # Django 5.2 + backport
    from django_tasks import task  # type: ignore[no-redef]


@pytest.fixture
def backend(redis_conn: Any) -> Any:
    """The default task backend, on a flushed Redis."""
    backend = fx.add.get_backend()
    backend.close()  # a fresh client on the session's Redis URL
    yield backend
    backend.close()


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


def test_async_enqueue_and_get_result(backend: Any) -> None:
    """aenqueue, aget_result and arefresh work from async code, before and after a worker ran."""
    async def scenario() -> None:
        result = await fx.add.aenqueue(4, 4)
        fetched = await fx.add.aget_result(result.id)
        assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
        await sync_to_async(burst)("default")
        await result.arefresh()
        assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 8
        assert (await fx.add.aget_result(result.id)).return_value == 8

    # On a thread of its own: its loop must not collide with one another test left running.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result(60)


def test_status_follows_the_engine_state(backend: Any) -> None:
    """waiting -> READY, running -> RUNNING, stalled -> READY, complete -> SUCCESSFUL, failed ->
    FAILED; timestamps and worker ids follow each attempt."""
    engine = backend.client
    engine.config["grace-period"] = 0
    result = fx.add.enqueue(1, 2)
    assert fx.add.get_result(result.id).status == TaskResultStatus.READY
    assert engine.jobs[result.id].state == "waiting"

    job = engine.queues["default"].pop()
    assert job.jid == result.id
    running = fx.add.get_result(result.id)
    assert running.status == TaskResultStatus.RUNNING
    assert running.started_at is not None and running.last_attempted_at == running.started_at
    assert running.finished_at is None and running.worker_ids == [engine.worker_name]
    assert running.enqueued_at is not None and running.enqueued_at <= running.started_at

    job.timeout()  # the lease ends: the job is stalled until someone takes it again
    assert engine.jobs[result.id].state == "stalled"
    assert fx.add.get_result(result.id).status == TaskResultStatus.READY

    again = engine.queues["default"].pop()
    assert again.jid == result.id
    again.complete(3)
    done = fx.add.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 3
    assert done.attempts == 2 and done.started_at == running.started_at
    assert done.last_attempted_at >= done.started_at and done.finished_at >= done.last_attempted_at

    other = fx.add.enqueue(5, 5)
    engine.queues["default"].pop().fail("default-lost", "the worker went away")
    failed = fx.add.get_result(other.id)
    assert failed.status == TaskResultStatus.FAILED and failed.finished_at is not None
    assert [e.exception_class_path for e in failed.errors] == ["queueengine.exceptions.JobFailed"]
    assert "the worker went away" in failed.errors[0].traceback


def test_depends_is_ready_until_its_dependency_completes(backend: Any) -> None:
    """A task depending on another waits in the engine's depends state (READY) and runs after it."""
    first = fx.add.enqueue(1, 1)
    second = fx.add.using(depends=(first.id,)).enqueue(2, 2)
    assert backend.client.jobs[second.id].state == "depends"
    assert fx.add.get_result(second.id).status == TaskResultStatus.READY
    burst("default")
    assert fx.add.get_result(first.id).return_value == 2
    assert fx.add.get_result(second.id).return_value == 4


def test_a_retried_task_counts_its_attempts(backend: Any) -> None:
    """A retry goes back to READY; the next run sees attempt 2 in its TaskContext."""
    result = fx.introspect.enqueue("again")
    job = backend.client.queues["default"].pop()
    job.retry()
    assert fx.introspect.get_result(result.id).status == TaskResultStatus.READY
    burst("default")
    done = fx.introspect.get_result(result.id)
    assert done.return_value == {"id": result.id, "attempt": 2, "label": "again"}
    assert len(done.worker_ids) == 2


def test_decorator_keywords_reach_the_task_class(backend: Any) -> None:
    """@task(tags=..., retries=..., track=...) builds a QueueEngineTask whose options reach the job."""
    assert isinstance(fx.tagged_report, QueueEngineTask)
    assert (fx.tagged_report.tags, fx.tagged_report.retries, fx.tagged_report.track) == (("reports",), 2, True)
    result = fx.tagged_report.enqueue("weekly")
    job = backend.client.jobs[result.id]
    assert set(job.tags) == {"reports", "django-task"}  # the task's own and OPTIONS["TAGS"]
    assert job.original_retries == 2
    assert result.id in [j.jid for j in backend.client.jobs.tracked()["jobs"]]
    burst("default")
    assert fx.tagged_report.get_result(result.id).return_value == "report weekly"


def test_unique_tasks_are_enqueued_once_while_unfinished(backend: Any, signals: Any) -> None:
    """unique=True: the same task and arguments give one job until it has finished."""
    first = fx.refresh_cache.enqueue("users")
    again = fx.refresh_cache.enqueue("users")
    other = fx.refresh_cache.enqueue("groups")
    assert again.id == first.id and other.id != first.id
    assert len(backend.client.queues["default"]) == 2
    assert [name for name, _ in signals] == ["enqueued", "enqueued"]  # the duplicate enqueued nothing
    burst("default")
    assert fx.refresh_cache.get_result(first.id).return_value == "refreshed users"
    rerun = fx.refresh_cache.enqueue("users")  # finished: it runs again, under the same id
    assert rerun.id == first.id
    assert fx.refresh_cache.get_result(first.id).status == TaskResultStatus.READY
    assert fx.add.using(unique=True).enqueue(1, 2).id != fx.add.using(unique=True).enqueue(2, 1).id


def test_run_after_becomes_the_jobs_delay(backend: Any) -> None:
    """run_after schedules the job for that time; a naive datetime is Django's InvalidTask."""
    when = timezone.now() + timedelta(minutes=10)
    result = fx.add.using(run_after=when).enqueue(1, 1)
    job = backend.client.jobs[result.id]
    assert job.state == "scheduled"
    due = backend.client.redis.zscore(backend.client.keys.queue("default", "scheduled"), result.id)
    assert due is not None and abs(due - when.timestamp()) < 2
    with pytest.raises(InvalidTask, match="aware"):
        fx.add.using(run_after=datetime(2030, 1, 1))


def test_backend_options_and_an_empty_queue_list(redis_conn: Any, settings: Any) -> None:
    """OPTIONS RETRIES/TAGS/TRACK apply to every task of a backend; QUEUES=[] allows any queue."""
    bulk = {"BACKEND": "queueengine.tasks.QueueEngineBackend", "QUEUES": [],
            "OPTIONS": {"RETRIES": 1, "TAGS": ["bulk"], "TRACK": True, "NAMESPACE": "bulk"}}
    with override_settings(TASKS={**settings.TASKS, "bulk": bulk}):
        task_ = fx.add.using(backend="bulk", queue_name="anything-goes")
        backend = task_.get_backend()
        try:
            result = task_.enqueue(1, 2)
            job = backend.client.jobs[result.id]
            assert (job.queue_name, job.original_retries, job.tags) == ("anything-goes", 1, ["bulk"])
            assert result.id in [j.jid for j in backend.client.jobs.tracked()["jobs"]]
            assert redis_conn.keys("qe:{bulk}:*") and not redis_conn.keys("qe:{test}:*")
            burst_ns = fx.add.get_backend()  # the default backend does not see the bulk namespace
            with pytest.raises(TaskResultDoesNotExist):
                burst_ns.get_result(result.id)
            assert task_.get_result(result.id).backend == "bulk"
        finally:
            backend.close()
            fx.add.get_backend().close()


def test_bad_task_definitions_are_invalid_tasks(backend: Any, redis_conn: Any) -> None:
    """Django's own InvalidTask for bad definitions and bad engine options; nothing is written."""
    def nested(label: str) -> str:
        return label

    with pytest.raises(InvalidTask, match="module level"):
        task()(nested)
    with pytest.raises(InvalidTask, match="context"):
        task(takes_context=True)(fx.plain)
    for bad in ({"tags": "reports"}, {"tags": [""]}, {"retries": "3"}, {"retries": True},
                {"depends": ["", "x"]}, {"track": "yes"}, {"unique": 1}):
        with pytest.raises(InvalidTask, match=next(iter(bad))):
            task(**bad)(fx.plain)
    with pytest.raises(InvalidTask, match="emails2"):
        fx.add.using(queue_name="emails2")
    assert redis_conn.dbsize() == 0


def test_arguments_must_be_json(backend: Any, redis_conn: Any) -> None:
    """Arguments that are not JSON are refused by Django's own check before anything is written."""
    with pytest.raises(TypeError):
        fx.add.enqueue(object(), 1)
    assert redis_conn.dbsize() == 0


def test_failure_signals_carry_the_error(backend: Any, signals: Any) -> None:
    """task_finished for a failing task has status FAILED and the recorded error."""
    fx.explode.enqueue("kaput")
    burst("default")
    name, finished = signals[-1]
    assert name == "finished" and finished.status == TaskResultStatus.FAILED
    assert finished.errors[0].exception_class_path == "builtins.ValueError"
    assert "kaput" in finished.errors[0].traceback


BAD_OPTIONS = [
    ({"RETRIES": -1}, "queueengine.E024"),
    ({"TAGS": "x"}, "queueengine.E023"),
    ({"TRACK": "yes"}, "queueengine.E025"),
    ({"URL": "http://x"}, "queueengine.E021"),
    ({"NAMESPACE": "a{b}"}, "queueengine.E022"),
    ({"RETRYS": 3}, "queueengine.W020"),
]


@pytest.mark.parametrize(("options", "expected"), BAD_OPTIONS)
def test_bad_backend_options_are_system_check_messages(options: dict[str, Any], expected: str) -> None:
    """Each bad OPTIONS value is one system-check message naming the key, with a hint."""
    backend = QueueEngineBackend("default", {"OPTIONS": options})
    messages = list(backend.check())
    assert [m.id for m in messages] == [expected]
    assert next(iter(options)) in messages[0].msg and messages[0].hint


@pytest.mark.django_db  # the model checks of the installed apps read the database
def test_manage_check_reports_bad_backend_options(redis_conn: Any) -> None:
    """`manage.py check` fails on bad OPTIONS (on Django 6 and on 5.2 without the backport app)."""
    tasks = {"default": {"BACKEND": "queueengine.tasks.QueueEngineBackend", "OPTIONS": {"RETRIES": "many"}}}
    with override_settings(TASKS=tasks), pytest.raises(SystemCheckError, match="RETRIES"):
        call_command("check")
    assert redis_conn.dbsize() == 0


def test_queues_routed_to_their_namespaces(backend: Any, redis_conn: Any, settings: Any) -> None:
    """QUEUEENGINE["QUEUE_NAMESPACES"]: a task's queue decides the namespace its job lives in;
    a worker of that namespace runs it and get_result finds it there."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "QUEUE_NAMESPACES": {"emails": "mail"}}
    backend.close()  # routes are read when the backend first connects
    result = fx.send_mail.enqueue("ops@example.com")
    other = fx.add.enqueue(1, 1)
    assert redis_conn.exists(f"qe:{{mail}}:j:{result.id}") and not redis_conn.exists(f"qe:{{test}}:j:{result.id}")
    assert redis_conn.exists(f"qe:{{test}}:j:{other.id}")
    assert fx.send_mail.get_result(result.id).status == TaskResultStatus.READY
    call_command("qe_worker", "--burst", "--namespace", "mail", "-q", "emails")
    assert fx.send_mail.get_result(result.id).return_value == {"sent": "ops@example.com"}
    assert fx.add.get_result(other.id).status == TaskResultStatus.READY
