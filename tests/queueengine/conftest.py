"""Helpers for the engine tests: keyspace snapshots and a second client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.dispatch import memory as memory_backend

from .dispatchpair import IDS, KINDS, Pair


def _content(conn: redis.Redis, key: bytes) -> Any:
    kind = conn.type(key)
    if kind == b"hash":
        value: Any = sorted(conn.hgetall(key).items())
    elif kind == b"list":
        value = conn.lrange(key, 0, -1)
    elif kind == b"set":
        value = sorted(conn.smembers(key))
    elif kind == b"zset":
        value = conn.zrange(key, 0, -1, withscores=True)
    elif kind == b"string":
        value = conn.get(key)
    else:
        value = conn.dump(key)
    return kind, value, conn.ttl(key) > 0


def snapshot(conn: redis.Redis) -> dict[bytes, Any]:
    """Every key of the database with its type, content and whether it has a TTL (so any change
    shows up; a DUMP would also differ when only a hash table's internal order changed)."""
    return {k: _content(conn, k) for k in sorted(conn.keys("*"))}


@pytest.fixture
def snap(redis_conn: redis.Redis) -> Callable[[], dict[bytes, Any]]:
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


@pytest.fixture(params=KINDS, ids=IDS)
def pair(request: pytest.FixtureRequest, redis_url: str, redis_conn: redis.Redis) -> Iterator[Pair]:
    """Clients and workers of one delivery-mode backend (each test runs over every kind)."""
    memory_backend.reset()
    made = Pair(request.param, redis_url)
    yield made
    made.close()
    memory_backend.reset()
