"""Resource bounds: payload size, queue length, Redis maxmemory. A refused call writes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from queueengine import Client, InvalidArgument, OutOfMemory, QueueFull
from queueengine.devtools.embedded import EmbeddedRedis
from queueengine.worker import Worker
from tests.cluster import handlers
from tests.queueengine.conftest import snapshot


def test_data_over_max_payload_bytes_is_refused_naming_the_limit(engine: Client, q: Any,
                                                                unchanged: Callable[..., Any]) -> None:
    engine.config["max-payload-bytes"] = 100
    q.put("k", {"x": "a" * 80})                                    # 90 bytes of JSON: fine
    err = unchanged(InvalidArgument, q.put, "k", {"x": "a" * 200})
    assert "data" in str(err) and "max-payload-bytes" in str(err) and "100" in str(err)
    batch = [("k", {"x": 1}), ("k", {"x": "b" * 500}), ("k", {"x": 2})]
    unchanged(InvalidArgument, q.put_many, batch)                  # one too big: the batch is refused
    engine.config["max-payload-bytes"] = 0                         # 0: no bound
    q.put("k", {"x": "a" * 10_000})


def test_max_queue_length_makes_put_refuse_with_queue_full(engine: Client, q: Any, other: Client,
                                                           unchanged: Callable[..., Any]) -> None:
    engine.config["max-queue-length"] = 3
    jids = [q.put("k", {}) for _ in range(2)] + [q.put("k", {}, delay=60)]   # scheduled jobs count
    err = unchanged(QueueFull, q.put, "k", {})
    assert "testing" in str(err) and "max-queue-length of 3" in str(err)
    assert isinstance(err, QueueFull) and not isinstance(err, InvalidArgument)
    q.put("k", {"again": True}, jid=jids[0])          # re-putting a job already in the queue adds nothing
    engine.queues["elsewhere"].put("k", {})           # other queues have their own count
    job = q.pop()                                      # running jobs count too ...
    unchanged(QueueFull, q.put, "k", {})
    job.complete()                                     # ... until they finish
    q.put("k", {})
    engine.config["testing-max-queue-length"] = 5      # a queue's own bound wins
    unchanged(QueueFull, q.put_many, [("k", {}), ("k", {}), ("k", {})])   # 3 + 3 > 5: all refused
    q.put_many([("k", {}), ("k", {})])
    assert len(q) == 5
    engine.config["testing-max-queue-length"] = 0      # 0 for the queue: no bound at all
    q.put("k", {})


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A server with maxmemory 3 MB and the noeviction policy."""
    server = EmbeddedRedis(tmp_path, extra_args=("--maxmemory", "3mb", "--maxmemory-policy", "noeviction"))
    server.start()
    yield server
    server.stop()


def fill(q: Any, blob: str) -> list[str]:
    """Put jobs until Redis refuses one; return the jids that were stored."""
    stored: list[str] = []
    for _ in range(1000):
        try:
            stored.append(q.put("tests.cluster.handlers.record", {"blob": blob}))
        except OutOfMemory:
            return stored
    raise AssertionError("Redis never reached maxmemory")


def test_maxmemory_surfaces_as_out_of_memory_and_writes_nothing(small_redis: EmbeddedRedis) -> None:
    client = Client.from_url(small_redis.url, namespace="oom")
    conn = redis.Redis.from_url(small_redis.url)
    try:
        q = client.queues["q"]
        stored = fill(q, "x" * 50_000)
        assert stored
        before = snapshot(conn)
        with pytest.raises(OutOfMemory) as info:
            q.put("k", {"small": 1})
        assert "maxmemory" in str(info.value)
        with pytest.raises(OutOfMemory):
            q.put_many([("k", {}), ("k", {})])
        assert snapshot(conn) == before, "a refused put changed the keyspace"
        # plain reads still work (the Lua library, writes or not, is refused as a whole)
        assert conn.hget(f"qe:{{oom}}:j:{stored[0]}", "state") == b"waiting"
    finally:
        client.close()
        conn.close()


def test_a_worker_rides_out_maxmemory_and_resumes(small_redis: EmbeddedRedis) -> None:
    """With Redis refusing writes the worker neither dies nor spins; once memory is available
    again it works through the queue."""
    client = Client.from_url(small_redis.url, namespace="oom")
    conn = redis.Redis.from_url(small_redis.url)
    handlers.reset()
    worker = Worker(client, ["q"], concurrency=2, install_signals=False, max_wait=0.5)
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        stored = fill(client.queues["q"], "y" * 50_000)
        used = int(conn.info("memory")["used_memory"])
        conn.config_set("maxmemory", used - 300_000)   # well over the limit: every write refused
        thread.start()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:             # it keeps trying, and stays alive
            assert thread.is_alive()
            time.sleep(0.1)
        assert not handlers.RUNS, "a job ran although Redis refused to lease it"
        conn.config_set("maxmemory", 0)                # memory is back
        for jid in stored:
            client.wait(jid, timeout=30)
        assert all(handlers.RUNS[jid] == 1 for jid in stored)
    finally:
        worker.stop()
        thread.join(15)
        client.close()
        conn.close()
    assert not thread.is_alive()
