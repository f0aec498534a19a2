"""Producer side under faults (issue 13): reads and puts ride out a Redis crash and restart; a
repeated put never changes a job that already ran; a command not safe to repeat is not repeated;
``backoff`` that is not a mapping is refused as InvalidArgument."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bench.chaos import crash
from queueengine import Client, InvalidArgument
from queueengine.devtools.embedded import EmbeddedRedis


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private server with its AOF fsynced at every write (a SIGKILL then loses nothing)."""
    server = EmbeddedRedis(tmp_path, appendonly=True, extra_args=("--appendfsync", "always"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def producer(aof_server: EmbeddedRedis) -> Iterator[Client]:
    """A producer on the private server."""
    client = Client.from_url(aof_server.url, namespace="prod", worker_name="producer")
    yield client
    client.close()


def restarted_after(server: EmbeddedRedis, seconds: float) -> threading.Thread:
    """Crash the server now and start it again on its AOF after ``seconds`` (in a thread)."""
    crash(server)
    back = threading.Timer(seconds, server.start)
    back.start()
    return back


def test_puts_and_reads_ride_out_a_crash_and_restart(aof_server: EmbeddedRedis, producer: Client) -> None:
    q = producer.queues["q"]
    before = q.put("k", {"n": 0})
    back = restarted_after(aof_server, 1.0)
    try:
        jid = q.put("k", {"n": 1})                                # Redis is down when this starts
        many = q.put_many([("k", {"n": i}) for i in range(2, 5)])
        assert producer.jobs[before].state == "waiting"           # a read
    finally:
        back.join()
    got = producer.jobs.get(jid, *many)
    assert [job.data["n"] for job in got] == [1, 2, 3, 4]
    assert len(q) == 5, "a put went in twice or not at all"


def test_a_repeated_put_does_not_change_a_job_that_already_ran(
        aof_server: EmbeddedRedis, producer: Client) -> None:
    q = producer.queues["q"]
    jid = q.put("k", {"n": 1}, jid="chosen-1")
    job = q.pop()
    assert job is not None and job.jid == jid
    job.complete("done")
    back = restarted_after(aof_server, 1.0)
    try:
        assert q.put("k", {"n": 2}, jid=jid) == jid   # its first try fails: repeated create-only
    finally:
        back.join()
    stored = producer.jobs[jid]
    assert (stored.state, stored.result, stored.data) == ("complete", "done", {"n": 1})


def test_a_command_not_safe_to_repeat_is_not_retried(aof_server: EmbeddedRedis, producer: Client) -> None:
    q = producer.queues["q"]
    q.put("k", {})
    back = restarted_after(aof_server, 1.0)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            q.pop()                                   # a repeat could lease a job nobody holds
    finally:
        back.join()
    assert q.pop() is not None                        # it was not leased by a lost try


def test_retry_for_zero_turns_the_retry_off(aof_server: EmbeddedRedis, producer: Client) -> None:
    producer.retry_for = 0
    back = restarted_after(aof_server, 1.0)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            producer.queues["q"].put("k", {})
    finally:
        back.join()


@pytest.mark.parametrize("bad", ["fast", 3, ["base", 1]])
def test_a_backoff_that_is_not_a_mapping_is_an_invalid_argument(engine: Client, bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="backoff"):
        engine.queues["q"].put("k", {}, backoff=bad)
    assert len(engine.queues["q"]) == 0
