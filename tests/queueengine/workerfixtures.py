"""Fixtures shared by the in-process worker tests: a client on real Redis time, a second client,
a worker started in a thread and stopped after the test, and ``burst``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.worker import Worker

NS = "wt"


@pytest.fixture
def client(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    """A client on real Redis time (no clock): the worker's view of the world."""
    c = Client.from_url(redis_url, namespace=NS)
    yield c
    c.close()


@pytest.fixture
def other(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    """A second client (an operator, another process)."""
    c = Client.from_url(redis_url, namespace=NS, worker_name="operator")
    yield c
    c.close()


@pytest.fixture
def start_worker(client: Client) -> Iterator[Callable[..., Worker]]:
    """``start_worker(queues, **options)`` runs a Worker in a thread; it is stopped after the test."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start(queues: list[str], **options: Any) -> Worker:
        options.setdefault("install_signals", False)
        worker = Worker(client, queues, **options)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        running.append((worker, thread))
        return worker

    yield start
    for worker, thread in running:
        worker.stop()
        thread.join(15)
        assert not thread.is_alive(), "worker did not stop"


def key() -> str:
    """A fresh Redis key for a test's own bookkeeping."""
    return f"t:{uuid.uuid4().hex}"


def burst(client: Client, queues: list[str], **options: Any) -> Worker:
    """Run a worker on ``queues`` until they are empty (``burst=True``); it must exit 0."""
    worker = Worker(client, queues, burst=True, install_signals=False, **options)
    assert worker.run() == 0
    return worker
