"""Django tasks the backend tests enqueue (module level, as django.tasks requires)."""

from __future__ import annotations

from queueengine.djtasks_compat import TaskContext

try:
    from django.tasks import task
except ImportError:  # Django 5.2 + backport
    from django_tasks import task  # type: ignore[no-redef]


@task()
def add(x: int, y: int) -> int:
    """Return the sum."""
    return x + y


@task(priority=10, queue_name="emails")
def send_mail(to: str) -> dict[str, str]:
    """Pretend to send a mail."""
    return {"sent": to}


@task()
def explode(message: str) -> None:
    """Always fails."""
    raise ValueError(message)


@task(takes_context=True)
def introspect(context: TaskContext, label: str) -> dict[str, object]:
    """Report what the context says."""
    return {"id": context.task_result.id, "attempt": context.attempt, "label": label}


@task()
async def async_double(x: int) -> int:
    """An async task."""
    return 2 * x


@task(tags=("reports",), retries=2, track=True)
def tagged_report(name: str) -> str:
    """A task whose engine options come from decorator keywords (they reach ``task_class``)."""
    return f"report {name}"


@task(unique=True)
def refresh_cache(key: str) -> str:
    """At most one unfinished job per key."""
    return f"refreshed {key}"


def plain(label: str) -> str:
    """A module-level function the tests wrap with bad ``@task`` options."""
    return label
