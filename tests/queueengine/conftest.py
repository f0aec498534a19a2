"""Helpers for the engine tests: keyspace snapshots and a second client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.testing import ManualClock


def snapshot(conn: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of the database with its DUMP (so any change shows up)."""
    return {k: conn.dump(k) for k in sorted(conn.keys("*"))}


@pytest.fixture
def snap(redis_conn: redis.Redis) -> Callable[[], dict[bytes, bytes | None]]:
    """``snap()`` -> a snapshot of the test database."""
    return lambda: snapshot(redis_conn)


@pytest.fixture
def unchanged(redis_conn: redis.Redis) -> Callable[..., Any]:
    """``unchanged(exc_type, fn, *args, **kw)``: fn raises exc_type and the keyspace is intact."""

    def check(exc: type[BaseException], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> BaseException:
        before = snapshot(redis_conn)
        with pytest.raises(exc) as info:
            fn(*args, **kwargs)
        assert snapshot(redis_conn) == before, f"{fn} changed the keyspace before raising {info.value!r}"
        return info.value

    return check


@pytest.fixture
def other(redis_url: str, redis_conn: redis.Redis, clock: ManualClock) -> Iterator[Client]:
    """A second client (worker 'another') on the same namespace and clock."""
    c = Client.from_url(redis_url, namespace="test", clock=clock, worker_name="another")
    yield c
    c.close()


@pytest.fixture
def q(engine: Client) -> Any:
    """Queue 'testing' of the engine fixture."""
    return engine.queues["testing"]
