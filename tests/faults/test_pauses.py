"""Redis frozen (``DEBUG SLEEP``) or not serving clients (``CLIENT PAUSE``) under a busy worker:
every job is done exactly once, the worker and waiting clients carry on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from queueengine import Client
from queueengine.devtools.embedded import EmbeddedRedis
from queueengine.devtools.localcluster import debug_args
from queueengine.worker import Worker
from tests.cluster import handlers

RECORD = "tests.cluster.handlers.record"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private server that accepts DEBUG from loopback."""
    from queueengine.devtools.embedded import find_redis_server

    s = EmbeddedRedis(tmp_path, extra_args=debug_args(find_redis_server()))
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize("how", ["DEBUG SLEEP", "CLIENT PAUSE"])
def test_a_frozen_redis_delays_jobs_but_loses_or_repeats_none(how: str, server: EmbeddedRedis) -> None:
    handlers.reset()
    client = Client.from_url(server.url, namespace="frz")
    admin = redis.Redis.from_url(server.url, socket_timeout=10)
    worker = Worker(client, ["q"], concurrency=4, install_signals=False, max_wait=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    q = client.queues["q"]
    try:
        jids = [q.put(RECORD, {"n": i, "sleep": 0.02}) for i in range(80)]
        if how == "DEBUG SLEEP":
            admin.execute_command("DEBUG", "SLEEP", 1.5)      # returns when the server wakes up
        else:
            admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        jids += [q.put(RECORD, {"n": 80 + i}) for i in range(20)]   # blocked until Redis serves again
        assert [client.wait(jid, timeout=30) for jid in jids] == list(range(100))
        assert all(handlers.RUNS[jid] == 1 for jid in jids), "a job ran twice"
        assert thread.is_alive()
    finally:
        worker.stop()
        thread.join(15)
        admin.close()
        client.close()
