"""A ``django.tasks`` backend on the engine: ``queueengine.tasks.QueueEngineBackend``.

Each enqueued task is an ordinary engine job of class ``queueengine.tasks.execute`` in the
task's queue, carrying the task's module path and its JSON arguments. Any worker on that queue
(``manage.py qe_worker``) runs it, sends ``task_started`` / ``task_finished`` and stores the
return value as the job's result, which ``get_result`` reads back from any process.

Settings::

    TASKS = {
        "default": {
            "BACKEND": "queueengine.tasks.QueueEngineBackend",
            "QUEUES": ["default", "emails"],          # allow-list; [] allows any queue
            "OPTIONS": {"URL": ..., "NAMESPACE": ..., "RETRIES": 5, "TAGS": ["django"]},
        }
    }

Qless-only options ride on the task: ``@task(tags=("mail",), retries=3, track=True)`` on
Django 6.1 (extra decorator keywords reach ``task_class``), or ``my_task.using(tags=...,
depends=(jid,))`` on any version.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from queueengine.djtasks_compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
    task_finished,
    task_started,
)

EXECUTE = "queueengine.tasks.execute"
"""The job class (a dotted path) of every job that runs a Django task."""

STATUS_BY_STATE = {
    "waiting": TaskResultStatus.READY,
    "scheduled": TaskResultStatus.READY,
    "depends": TaskResultStatus.READY,
    "stalled": TaskResultStatus.READY,
    "throttled": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "complete": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEngineTask(Task):  # type: ignore[misc]
    """A Django task with the engine's extra options (tags, retries, dependencies, tracking)."""

    tags: tuple[str, ...] = ()
    retries: int | None = None
    depends: tuple[str, ...] = ()
    track: bool = False

    def using(  # type: ignore[override]
        self,
        *,
        tags: tuple[str, ...] | list[str] | None = None,
        retries: int | None = None,
        depends: tuple[str, ...] | list[str] | None = None,
        track: bool | None = None,
        **django_options: Any,
    ) -> QueueEngineTask:
        """A copy with new defaults: Django's (priority, queue_name, run_after, backend) and ours."""
        task: QueueEngineTask = Task.using(self, **django_options)
        changes: dict[str, Any] = {}
        if tags is not None:
            changes["tags"] = tuple(tags)
        if retries is not None:
            changes["retries"] = retries
        if depends is not None:
            changes["depends"] = tuple(depends)
        if track is not None:
            changes["track"] = track
        return replace(task, **changes) if changes else task


class QueueEngineBackend(BaseTaskBackend):  # type: ignore[misc]
    """Runs Django tasks as engine jobs: priority, deferral, async tasks and results supported."""

    task_class = QueueEngineTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The engine client of this backend (OPTIONS URL/NAMESPACE, else QUEUEENGINE)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from queueengine import Client
                    from queueengine.conf import settings as qe_settings

                    url = self.options.get("URL") or qe_settings.URL
                    namespace = self.options.get("NAMESPACE") or qe_settings.NAMESPACE
                    self._client = Client.from_url(url, namespace=namespace)
        return self._client

    def validate_task(self, task: Task) -> None:
        """Django's checks, plus ours on the engine options a task carries."""
        super().validate_task(task)
        tags = getattr(task, "tags", ())
        if not isinstance(tags, (tuple, list)) or not all(isinstance(t, str) and t for t in tags):
            raise InvalidTask(f"tags must be a sequence of non-empty strings, got {tags!r}")
        retries = getattr(task, "retries", None)
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            raise InvalidTask(f"retries must be a whole number >= 0, got {retries!r}")
        depends = getattr(task, "depends", ())
        if not isinstance(depends, (tuple, list)) or not all(isinstance(j, str) and j for j in depends):
            raise InvalidTask(f"depends must be a sequence of job ids, got {depends!r}")

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Put the task as a job in its queue; return its READY result."""
        self.validate_task(task)
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
        now = timezone.now()
        delay = 0.0
        if task.run_after is not None:
            delay = max(0.0, (task.run_after - now).total_seconds())
        data = {"task": task.module_path, "backend": self.alias, "args": args, "kwargs": kwargs}
        tags = tuple(self.options.get("TAGS", ())) + tuple(getattr(task, "tags", ()))
        retries = getattr(task, "retries", None)
        if retries is None:
            retries = int(self.options.get("RETRIES", 5))
        queue = self.client.queues[task.queue_name]
        jid = queue.put(
            EXECUTE, data, priority=task.priority, delay=delay, tags=tags, retries=retries,
            depends=tuple(getattr(task, "depends", ())),
        )
        if getattr(task, "track", False):
            self.client.jobs[jid].track()
        result = TaskResult(
            task=task, id=jid, status=TaskResultStatus.READY, enqueued_at=now, started_at=None,
            finished_at=None, last_attempted_at=None, args=args, kwargs=kwargs, backend=self.alias,
            errors=[], worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """Read a task's result, from any process; TaskResultDoesNotExist if there is none."""
        try:
            job = self.client.jobs[result_id]
        except (KeyError, ValueError, LookupError):
            job = None
        if job is None or job.klass != EXECUTE:
            raise TaskResultDoesNotExist(result_id)
        return result_from_job(job, self)

    def check(self, **kwargs: Any) -> Any:
        """System checks: the engine URL parses (no I/O)."""
        yield from super().check(**kwargs)


def _when(entry: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(entry["when"]), tz=UTC)


def result_from_job(job: Any, backend: QueueEngineBackend) -> TaskResult:
    """Build a TaskResult from an engine job: status, timestamps, errors, worker ids, value."""
    data = job.data
    task = import_string(data["task"])
    if not isinstance(task, Task):
        raise TaskResultDoesNotExist(f"{job.jid}: {data['task']!r} is not a task")
    state = job.state.value if hasattr(job.state, "value") else str(job.state)
    task = task.using(priority=int(job.priority), queue_name=job.queue_name or task.queue_name)
    history = list(job.history or [])
    puts = [h for h in history if h.get("what") == "put"]
    pops = [h for h in history if h.get("what") == "popped"]
    ends = [h for h in history if h.get("what") in ("done", "failed")]
    errors = [
        TaskError(exception_class_path=h.get("exception_class_path", "builtins.Exception"),
                  traceback=h.get("traceback", ""))
        for h in history if h.get("what") == "task-error"
    ]
    status = STATUS_BY_STATE.get(state, TaskResultStatus.READY)
    if status == TaskResultStatus.FAILED and not errors and job.failure:
        errors = [TaskError(exception_class_path="builtins.Exception",
                            traceback=str(job.failure.get("message", "")))]
    result = TaskResult(
        task=task, id=job.jid, status=status,
        enqueued_at=_when(puts[0]) if puts else None,
        started_at=_when(pops[0]) if pops else None,
        finished_at=_when(ends[-1]) if ends and status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
        else None,
        last_attempted_at=_when(pops[-1]) if pops else None,
        args=data.get("args", []), kwargs=data.get("kwargs", {}), backend=data.get("backend", backend.alias),
        errors=errors, worker_ids=[str(h.get("worker", "")) for h in pops],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result)
    return result


def execute(job: Any) -> Any:
    """The job handler that runs a Django task inside a worker and reports it through signals."""
    from queueengine.djtasks_compat import TaskResultStatus as Status

    data = job.data
    task = import_string(data["task"])
    backend = task.get_backend()
    result = result_from_job(job, backend)
    now = timezone.now()
    object.__setattr__(result, "status", Status.RUNNING)
    object.__setattr__(result, "last_attempted_at", now)
    if result.started_at is None:
        object.__setattr__(result, "started_at", now)
    task_started.send(type(backend), task_result=result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *data.get("args", []), **data.get("kwargs", {}))
        else:
            value = task.call(*data.get("args", []), **data.get("kwargs", {}))
        value = normalize_json(value)
    except Exception as exc:
        path = f"{type(exc).__module__}.{type(exc).__qualname__}"
        text = "".join(traceback.format_exception(exc))
        job.log("task-error", exception_class_path=path, traceback=text)
        result.errors.append(TaskError(exception_class_path=path, traceback=text))
        object.__setattr__(result, "status", Status.FAILED)
        object.__setattr__(result, "finished_at", timezone.now())
        task_finished.send(type(backend), task_result=result)
        raise
    object.__setattr__(result, "status", Status.SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    task_finished.send(type(backend), task_result=result)
    return value


__all__ = ["EXECUTE", "QueueEngineBackend", "QueueEngineTask", "execute", "result_from_job"]
