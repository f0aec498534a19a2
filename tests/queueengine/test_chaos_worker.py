"""Regressions of the chaos run (issue 13) in the engine's worker: a put_many batch into an idle
worker drains without an idle wait between pops; a completion refused because an earlier send of
it already went through is not reported as a lease that went elsewhere."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.store.outages import warn
from queueengine.worker import Worker
from queueengine.worker.completions import Completions

NS = "chaosw"


@pytest.fixture
def client(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    """A client on real Redis time with a long socket timeout (so the worker may wait long)."""
    c = Client.from_url(redis_url, namespace=NS, socket_timeout=120)
    yield c
    c.close()


def until(what: Callable[[], Any], seconds: float = 30, name: str = "the condition") -> Any:
    """Poll ``what`` until it is truthy; fail naming ``name`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.01)
    raise AssertionError(f"{name} did not happen within {seconds}s")


def test_a_put_many_batch_into_an_idle_worker_drains_without_an_idle_wait(
        client: Client, redis_conn: redis.Redis) -> None:
    """The worker waits (with one slot free) while a long job runs; the job ends, then a batch
    arrives: the wait's pop takes the one job it asked for, and although more slots are free
    by then, the worker pops again at once instead of blocking with the batch still queued."""
    work = client.keys.queue("q", "work")
    waits: list[int] = []          # jobs waiting in the queue as each blocking wait began
    real = client.wait_then_pop

    def spy(*args: Any, **kwargs: Any) -> Any:
        waits.append(int(redis_conn.zcard(work)))
        return real(*args, **kwargs)

    client.wait_then_pop = spy  # type: ignore[method-assign]
    worker = Worker(client, ["q"], concurrency=2, prefetch=0, max_wait=60, install_signals=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        started, release = f"t:{uuid.uuid4().hex}", f"t:{uuid.uuid4().hex}"
        q = client.queues["q"]
        until(lambda: waits, name="the worker going idle")
        long_jid = q.put("tests.jobfixtures.signal_and_wait", {"started": started, "release": release})
        assert redis_conn.blpop([started], timeout=10) is not None
        until(lambda: len(waits) >= 2, name="the worker blocking with one slot free")
        redis_conn.rpush(release, "go")
        until(lambda: client.jobs[long_jid].state == "complete", name="the long job completing")
        jids = q.put_many([("tests.jobfixtures.noop", {}) for _ in range(40)])
        until(lambda: all(client.jobs[j].state == "complete" for j in jids) or any(waits[2:]),
              name="the batch draining (or the worker waiting with jobs queued)")
        assert not any(waits), f"the worker blocked while jobs were waiting: {waits}"
    finally:
        worker.stop()
        thread.join(15)
    assert not thread.is_alive()


def test_a_completion_already_recorded_by_this_worker_is_not_reported_as_lost(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    """A completion sent twice (the first send went through, its reply was lost to a dropped
    connection) is refused the second time: the worker says it was already completed."""
    q = client.queues["q"]
    jid = q.put("tests.jobfixtures.noop", {})
    job = q.pop()
    assert job is not None and job.jid == jid
    job.complete("first")
    states = client.complete_many([(job, "again")])     # the repeated send
    assert states == ["WrongState"]
    with caplog.at_level(logging.DEBUG, logger="queueengine.worker"):
        Completions(client, lambda n: None)._report([(_Rec(job), None)], states)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, [r.getMessage() for r in warnings]
    assert any("already completed" in r.getMessage() for r in caplog.records)


class _Rec:
    """The worker's record of a job, as far as the completion queue reads it."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.aborted = False


def test_an_outage_is_warned_about_in_one_line_and_a_bug_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("queueengine.worker")
    with caplog.at_level(logging.DEBUG, logger="queueengine.worker"):
        try:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
        except redis.exceptions.ConnectionError as exc:
            warn(logger, exc, "heartbeat of job %s failed; trying again", "j1")
    warning, debug = [r for r in caplog.records if r.levelno == logging.WARNING], \
        [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(warning) == 1 and warning[0].exc_info is None
    assert warning[0].getMessage() == ("heartbeat of job j1 failed; trying again: ConnectionError: Error 111 "
                                       "connecting to 127.0.0.1:1. Connection refused.")
    assert len(debug) == 1 and debug[0].exc_info is not None       # the traceback, at DEBUG
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="queueengine.worker"):
        try:
            raise KeyError("a bug")
        except KeyError as exc:
            warn(logger, exc, "worker beat failed")
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None
