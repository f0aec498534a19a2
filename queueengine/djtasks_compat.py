"""One import point for Django's task framework: built in on Django 6, the backport on 5.2.

``task`` is Django's ``@task`` that also takes the engine's options (``tags``, ``retries``,
``depends``, ``track``, ``unique``) and drops them when the task's backend does not know them
(Django's ``ImmediateBackend`` in tests, ``DummyBackend``), so a tasks module imports under any
backend. ``InvalidTask`` is Django 6's ``InvalidTask`` or the backport's ``InvalidTaskError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # checked against Django 6's django.tasks (django-stubs); the backport has the same API
    from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskError
    from django.tasks.base import task as _django_task
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:
    try:  # Django >= 6.0
        from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django.tasks.backends.base import BaseTaskBackend
        from django.tasks.base import Task, TaskError
        from django.tasks.base import task as _django_task
        from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
        from django.tasks.signals import task_enqueued, task_finished, task_started
        from django.utils.json import normalize_json
    except ImportError:  # Django 5.2 with the django-tasks backport
        from django_tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
        from django_tasks.backends.base import BaseTaskBackend
        from django_tasks.base import Task, TaskError
        from django_tasks.base import task as _django_task
        from django_tasks.exceptions import InvalidTaskError as InvalidTask
        from django_tasks.exceptions import TaskResultDoesNotExist
        from django_tasks.signals import task_enqueued, task_finished, task_started
        from django_tasks.utils import normalize_json

ENGINE_OPTIONS = ("tags", "retries", "depends", "track", "unique")
"""The decorator keywords only ``queueengine.tasks.QueueEngineTask`` knows."""


def task(function: Callable[..., Any] | None = None, *, backend: str = "default", **options: Any) -> Any:
    """Django's ``@task`` (with or without arguments) that also takes the engine's options and
    drops those the backend's task class has no field for."""

    def wrapper(func: Callable[..., Any]) -> Any:
        task_class = task_backends[backend].task_class
        fields = {f.name for f in dataclasses.fields(task_class)} if dataclasses.is_dataclass(task_class) else set()
        kept = {k: v for k, v in options.items() if k not in ENGINE_OPTIONS or k in fields}
        return _django_task(func, backend=backend, **kept)

    return wrapper(function) if function is not None else wrapper


__all__ = [
    "ENGINE_OPTIONS",
    "BaseTaskBackend",
    "InvalidTask",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "task_enqueued",
    "task_finished",
    "task_backends",
    "task",
    "task_started",
]
