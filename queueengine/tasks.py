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
            "OPTIONS": {"URL": ..., "NAMESPACE": ..., "RETRIES": 5, "TAGS": ["django"], "TRACK": False},
        }
    }

Qless-only options ride on the task: ``@task(tags=("mail",), retries=3, track=True,
unique=True, depends=(jid,))`` (extra decorator keywords reach ``task_class`` on Django 6.1 and
in the backport), or ``my_task.using(tags=..., depends=(jid,))``. ``OPTIONS`` gives the
backend-wide defaults (``TAGS`` are added to every task's tags).
"""

from __future__ import annotations

import hashlib
import threading
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import orjson
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
from queueengine.exceptions import DuplicateJob, QueueEngineError, UnsupportedData
from queueengine.store import jsondata as _jsondata

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from queueengine.client import Client
    from queueengine.job import Job
    from queueengine.namespaces import Namespaces
    from queueengine.types import HistoryEntry

P = ParamSpec("P")
R = TypeVar("R")

EXECUTE = "queueengine.tasks.execute"
"""The job class (a dotted path) of every job that runs a Django task."""

STATUS_BY_STATE: dict[str, Any] = {
    "waiting": TaskResultStatus.READY,
    "scheduled": TaskResultStatus.READY,
    "depends": TaskResultStatus.READY,
    "stalled": TaskResultStatus.READY,
    "throttled": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "complete": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
}
"""Engine state -> ``TaskResultStatus`` (a stalled job waits to be handed out again: READY)."""

FINISHED_STATES = frozenset({"complete", "failed"})
PRIORITY_RANGE = (-100, 100)


def _names(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, str) and v for v in value)


if TYPE_CHECKING:   # Task is generic in django-stubs only (not at runtime on Django 6)
    _TaskBase = Task[..., Any]
else:
    _TaskBase = Task


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEngineTask(_TaskBase):
    """A Django task with the engine's extra options.

    ``tags`` (added to the job), ``retries`` (lease losses survived; default ``OPTIONS["RETRIES"]``
    or 5), ``depends`` (jids that must complete first), ``track`` (tracked in the dashboard) and
    ``unique`` (at most one unfinished job per task and arguments: enqueueing it again while it
    is pending or running returns the existing result).
    """

    tags: tuple[str, ...] = ()
    retries: int | None = None
    depends: tuple[str, ...] = ()
    track: bool = False
    unique: bool = False

    def __post_init__(self) -> None:
        for name in ("tags", "depends"):
            value = getattr(self, name)
            if isinstance(value, list):  # decorator keywords may come as lists: keep it hashable
                object.__setattr__(self, name, tuple(value))
        Task.__post_init__(self)

    def using(
        self,
        *,
        tags: Sequence[str] | None = None,
        retries: int | None = None,
        depends: Sequence[str] | None = None,
        track: bool | None = None,
        unique: bool | None = None,
        **django_options: Any,
    ) -> QueueEngineTask:
        """A copy with new defaults: Django's (priority, queue_name, run_after, backend) and ours."""
        # Task.using copies the task with dataclasses.replace: the copy is a QueueEngineTask
        task = cast(QueueEngineTask, Task.using(self, **django_options))
        given: dict[str, Any] = {"tags": tags, "depends": depends, "retries": retries, "track": track,
                                 "unique": unique}
        changes = {name: value for name, value in given.items() if value is not None}
        for name in ("tags", "depends"):
            if isinstance(changes.get(name), list):
                changes[name] = tuple(changes[name])
        return replace(task, **changes) if changes else task


class QueueEngineBackend(BaseTaskBackend):
    """Runs Django tasks as engine jobs: priority, deferral, async tasks and results supported."""

    task_class = QueueEngineTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self._spaces: Namespaces | None = None
        self._lock = threading.Lock()

    @property
    def namespaces(self) -> Namespaces:
        """The engine's namespaces as this backend sees them, made on first use (so building the
        backend does no Redis I/O): ``OPTIONS["URL"]`` else ``QUEUEENGINE["URL"]``; with
        ``OPTIONS["NAMESPACE"]`` every queue lives there, else queues are routed by
        ``QUEUEENGINE["QUEUE_NAMESPACES"]`` and the others live in ``QUEUEENGINE["NAMESPACE"]``."""
        if self._spaces is None:
            with self._lock:
                if self._spaces is None:
                    from queueengine.conf import settings as qe_settings
                    from queueengine.namespaces import Namespaces

                    url = self.options.get("URL") or qe_settings.URL
                    if self.options.get("NAMESPACE"):
                        self._spaces = Namespaces(url, default=self.options["NAMESPACE"])
                    else:
                        self._spaces = Namespaces(url, dict(qe_settings.QUEUE_NAMESPACES),
                                                  default=qe_settings.NAMESPACE)
        return self._spaces

    @property
    def client(self) -> Client:
        """The engine client of the backend's default namespace."""
        return self.namespaces.client()

    def client_for(self, queue: str) -> Client:
        """The engine client of the namespace that holds ``queue``."""
        return self.namespaces.client_for(queue)

    def close(self) -> None:
        """Release the engine clients (new ones are made on next use)."""
        with self._lock:
            spaces, self._spaces = self._spaces, None
        if spaces is not None:
            spaces.close()

    def validate_task(self, task: Task[..., Any]) -> None:
        """Django's checks, plus ours on the engine options a task carries (InvalidTask)."""
        super().validate_task(task)
        tags = getattr(task, "tags", ())
        if not _names(tags):
            raise InvalidTask(f"tags must be a sequence of non-empty strings, got {tags!r}")
        retries = getattr(task, "retries", None)
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            raise InvalidTask(f"retries must be a whole number >= 0, got {retries!r}")
        depends = getattr(task, "depends", ())
        if not _names(depends):
            raise InvalidTask(f"depends must be a sequence of job ids, got {depends!r}")
        for name in ("track", "unique"):
            if not isinstance(getattr(task, name, False), bool):
                raise InvalidTask(f"{name} must be True or False, got {getattr(task, name)!r}")

    def enqueue(self, task: Task[P, R], args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult[P, R]:
        """Put the task as a job in its queue (queue_name -> queue, priority -> priority,
        run_after -> delay); return its READY result and send ``task_enqueued``."""
        self.validate_task(task)
        args, kwargs = storable_arguments(args, kwargs)
        now = timezone.now()
        delay = 0.0
        if task.run_after is not None:
            delay = max(0.0, (task.run_after - now).total_seconds())
        data = {"task": task.module_path, "backend": self.alias, "args": args, "kwargs": kwargs}
        retries = getattr(task, "retries", None)
        options: dict[str, Any] = {
            "priority": task.priority,
            "delay": delay,
            "tags": tuple(self.options.get("TAGS", ())) + tuple(getattr(task, "tags", ())),
            "retries": int(self.options.get("RETRIES", 5)) if retries is None else retries,
            "depends": tuple(getattr(task, "depends", ())),
        }
        client = self.client_for(task.queue_name)
        queue = client.queues[task.queue_name]
        if getattr(task, "unique", False):
            jid = unique_jid(task.module_path, args, kwargs)
            try:
                queue.put(EXECUTE, data, jid=jid, unique=True, **options)
            except DuplicateJob:
                existing = self._existing(client, jid)
                if existing is not None and existing.state.value not in FINISHED_STATES:
                    # the pending job runs this very task: its result has the task's types
                    return cast("TaskResult[P, R]", result_from_job(existing, self))
                queue.put(EXECUTE, data, jid=jid, **options)  # a finished run: run it again
        else:
            jid = queue.put(EXECUTE, data, **options)
        if getattr(task, "track", False) or self.options.get("TRACK", False) is True:
            client._call("track", "track", jid)
        result: TaskResult[P, R] = TaskResult(
            task=task, id=jid, status=TaskResultStatus.READY, enqueued_at=now, started_at=None,
            finished_at=None, last_attempted_at=None, args=args, kwargs=kwargs, backend=self.alias,
            errors=[], worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    @staticmethod
    def _existing(client: Client, jid: str) -> Job | None:
        from queueengine.job import Job

        try:
            found = client.jobs[jid]
        except (LookupError, ValueError):
            return None
        return found if isinstance(found, Job) else None

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Read a task's result, from any process (the default namespace first, then the routed
        ones); TaskResultDoesNotExist if there is none."""
        if not isinstance(result_id, str) or not result_id:
            raise TaskResultDoesNotExist(result_id)
        spaces = self.namespaces
        for namespace in spaces.names():
            job = self._existing(spaces.client(namespace), result_id)
            if job is not None and job.klass == EXECUTE:
                return result_from_job(job, self)
        raise TaskResultDoesNotExist(result_id)

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        """System checks of this backend's ``OPTIONS`` (settings only, no Redis I/O)."""
        from queueengine.checks import check_backend_options

        return [*super().check(**kwargs), *check_backend_options(self.alias, self.options)]


def _django_problem(value: Any, path: str) -> str | None:
    """Where Django's ``normalize_json`` gives up on ``value`` (bytes must be UTF-8; mappings,
    sequences and JSON scalars pass; anything else is an unsupported type)."""
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return f"{path} is bytes that are not UTF-8 text"
        return None
    if value is None or isinstance(value, (str, int, float)):
        return None
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            return f"{path} has the key {bad[0]!r} ({type(bad[0]).__name__}): JSON object keys must be strings"
        items: Iterable[tuple[str, Any]] = ((_jsondata.step(path, k), v) for k, v in value.items())
    elif isinstance(value, Sequence):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return f"{path} is of type {type(value).__name__}, which a task argument cannot be (JSON only)"
    for where, item in items:
        found = _django_problem(item, where)
        if found:
            return found
    return None


def storable_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The task's arguments as Django normalises them (tuples -> lists, UTF-8 bytes -> str),
    checked so that JSON carries them faithfully. Anything else (a set, an object, NaN,
    infinity, an integer beyond 64 bits, a non-str key) raises UnsupportedData naming the
    argument (``args[1]``, ``kwargs.when``): a TypeError, as Django's own validation raises,
    and an InvalidArgument."""
    try:
        clean_args, clean_kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))
    except (TypeError, ValueError) as exc:
        where = _django_problem(list(args), "args") or _django_problem(dict(kwargs), "kwargs")
        raise UnsupportedData(where or f"task arguments cannot be stored: {exc}") from None
    if not isinstance(clean_args, list) or not isinstance(clean_kwargs, dict):  # it keeps a list and a dict
        raise UnsupportedData(f"task arguments cannot be stored: {args!r}, {kwargs!r}")
    _jsondata.encode(clean_args, "args")
    _jsondata.encode(clean_kwargs, "kwargs")
    return clean_args, clean_kwargs


def unique_jid(module_path: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """The jid of a ``unique`` task: the same for the same task path and arguments."""
    digest = hashlib.sha256(orjson.dumps([module_path, list(args), kwargs], option=orjson.OPT_SORT_KEYS))
    return "task-" + digest.hexdigest()[:32]


def _when(entry: HistoryEntry) -> datetime:
    return datetime.fromtimestamp(float(entry["when"]), tz=UTC)


def _task_for(job: Job, backend: QueueEngineBackend) -> Task[..., Any]:
    """The task a job runs, with the job's current priority, queue and backend alias."""
    data = job.data
    try:
        task = import_string(data["task"])
    except (ImportError, KeyError, TypeError) as exc:
        raise TaskResultDoesNotExist(f"{job.jid}: cannot load its task ({exc})") from exc
    if not isinstance(task, Task):
        raise TaskResultDoesNotExist(f"{job.jid}: {data['task']!r} is not a task")
    low, high = PRIORITY_RANGE
    try:
        return task.using(priority=min(high, max(low, int(job.priority))),  # an operator may set any priority
                          queue_name=job.queue_name or task.queue_name,
                          backend=str(data.get("backend") or backend.alias))
    except InvalidTask:  # e.g. moved by an operator to a queue outside QUEUES
        return task


def _errors(job: Job, history: Iterable[HistoryEntry]) -> list[TaskError]:
    errors = [
        TaskError(exception_class_path=extra.get("exception_class_path", "builtins.Exception"),
                  traceback=extra.get("traceback", ""))
        for extra in (cast(dict[str, Any], h) for h in history) if extra.get("what") == "task-error"
    ]
    if not errors and job.state.value == "failed" and job.failure:  # e.g. retries exhausted
        message = str(job.failure.get("message", ""))
        errors = [TaskError(exception_class_path="queueengine.exceptions.JobFailed", traceback=message)]
    return errors


def result_from_job(job: Job, backend: QueueEngineBackend) -> TaskResult[..., Any]:
    """Build a TaskResult from an engine job: status, timestamps, errors, worker ids, value."""
    data = job.data
    state = job.state.value
    history = list(job.history or [])
    puts = [h for h in history if h.get("what") == "put"]
    pops = [h for h in history if h.get("what") == "popped"]
    ends = [h for h in history if h.get("what") in ("done", "failed")]
    status = STATUS_BY_STATE.get(state, TaskResultStatus.READY)
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    result: TaskResult[..., Any] = TaskResult(
        task=_task_for(job, backend), id=job.jid, status=status,
        enqueued_at=_when(puts[0]) if puts else None,
        started_at=_when(pops[0]) if pops else None,
        finished_at=_when(ends[-1]) if ends and finished else None,
        last_attempted_at=_when(pops[-1]) if pops else None,
        args=data.get("args", []), kwargs=data.get("kwargs", {}), backend=data.get("backend", backend.alias),
        errors=_errors(job, history), worker_ids=[str(h.get("worker", "")) for h in pops],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", job.result)
    return result


def execute(job: Job) -> Any:
    """The job handler that runs a Django task inside a worker and reports it through signals.

    ``takes_context`` tasks get a ``TaskContext`` whose result is RUNNING, with this attempt
    counted in ``attempt``. An exception is recorded (class path and traceback, shown by
    ``get_result().errors``) and re-raised, so the job fails in group ``<queue>-<Exception>``.
    """
    data = job.data
    backend = _backend(data.get("backend"))
    result = result_from_job(job, backend)
    task = result.task
    now = timezone.now()
    object.__setattr__(result, "status", TaskResultStatus.RUNNING)
    object.__setattr__(result, "last_attempted_at", now)
    if result.started_at is None:
        object.__setattr__(result, "started_at", now)
    task_started.send(type(backend), task_result=result)
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = normalize_json(value)
        _jsondata.encode(value, "the task's return value")  # NaN, infinity... fail the task here
    except Exception as exc:
        path = f"{type(exc).__module__}.{type(exc).__qualname__}"
        text = "".join(traceback.format_exception(exc))
        job.log("task-error", exception_class_path=path, traceback=text)
        result.errors.append(TaskError(exception_class_path=path, traceback=text))
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        object.__setattr__(result, "finished_at", timezone.now())
        task_finished.send(type(backend), task_result=result)
        raise
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "_return_value", value)
    task_finished.send(type(backend), task_result=result)
    return value


def _backend(alias: str | None) -> QueueEngineBackend:
    from queueengine.djtasks_compat import task_backends

    try:
        backend = task_backends[alias or "default"]
    except Exception as exc:
        raise QueueEngineError(f"task backend {alias!r} is not configured in TASKS: {exc}") from exc
    if not isinstance(backend, QueueEngineBackend):
        raise QueueEngineError(f"task backend {alias!r} is {type(backend).__name__}, not QueueEngineBackend")
    return backend


__all__ = ["EXECUTE", "QueueEngineBackend", "QueueEngineTask", "execute", "result_from_job", "storable_arguments",
           "unique_jid"]
