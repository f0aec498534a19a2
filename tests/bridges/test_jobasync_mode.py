"""jobasync mode between Python peers, and the exact fields a Perl peer sees (no Perl needed)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queueengine import InvalidArgument, JobFailed
from queueengine.dispatch import Job, JobManager, JobTimeout, Worker

from .perl_fixtures import wait_for


@pytest.fixture
def uri(redis_url: str, redis_conn: redis.Redis) -> str:
    """The session's Redis, flushed."""
    return redis_url


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers a test started; stopped at the end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop(5)


def _worker(workers: list[Worker], uri: str, handler: Any, **options: Any) -> Worker:
    worker = JobManager().worker("redis", uri=uri, mode="jobasync", **options)
    worker.jobs.each(handler)
    workers.append(worker.start())
    return worker


def _perl_style_job(conn: redis.Redis, reply_to: str, queue: str = "jobs::pending", **fields: Any) -> str:
    """A job as a Perl client writes it (what Job-Async-Redis's t/worker.t does by hand)."""
    jid = str(uuid.uuid4())
    conn.hset(f"job::{jid}", mapping={"_reply_to": reply_to, "_queued": "1796289323.79965", **fields})
    conn.lpush(queue, jid)
    return jid


def test_python_values_round_trip_between_python_peers(uri: str, redis_conn: redis.Redis, workers: list[Worker]) -> None:
    _worker(workers, uri, lambda job: {"echo": job.data})
    data = {"n": 5, "f": 1.5, "yes": True, "no": False, "none": None, "s": "5", "l": [1, "a"], "d": {"k": None}}
    with JobManager().client("redis", uri=uri, mode="jobasync", timeout=20) as client:
        assert client.submit(**data).result(20) == {"echo": data}
        assert client.submit(x=1).result(20) is not None
        assert redis_conn.keys("job::*") == []


def test_a_python_client_writes_what_a_perl_worker_reads(uri: str, redis_conn: redis.Redis) -> None:
    with JobManager().client("redis", uri=uri, mode="jobasync", id="c1") as client:
        client.submit(x=3, f=0.1, ok=True, s="hi", l=[1, 2])
        jid = redis_conn.lindex("jobs::pending", 0).decode()
        record = {k.decode(): v.decode() for k, v in redis_conn.hgetall(f"job::{jid}").items()}
        assert client.counts() == {"name": "pending", "waiting": 1, "processing": 0}
        assert client.sweep(10) == 0          # nothing to sweep: no claim times in Job::Async
    assert float(record.pop("_queued")) > 1e9
    assert record == {
        "_reply_to": "c1", "text_x": "3", "text_f": "0.1", "text_ok": "1", "text_s": "hi", "json_l": "[1,2]",
        "_qe": '{"x":3,"f":0.1,"ok":true}',
    }


@pytest.mark.parametrize(("value", "stored"), [
    (2, b"T2"), (2.0, b"T2"), ("text", b"Ttext"), (None, b"T"), ({"a": [1]}, b'J{"a":[1]}'), (True, b"T1"),
])
def test_a_python_worker_writes_what_a_perl_worker_writes_for_a_perl_client(
    uri: str, redis_conn: redis.Redis, workers: list[Worker], value: Any, stored: bytes,
) -> None:
    pubsub = redis_conn.pubsub()
    pubsub.subscribe("client::perl")
    wait_for(lambda: pubsub.get_message(timeout=0.1), "the subscription")
    _worker(workers, uri, lambda job: job.done(value))
    jid = _perl_style_job(redis_conn, "perl", text_x="1")
    message = wait_for(lambda: pubsub.get_message(timeout=0.1), "the notification")
    assert message["data"] == jid.encode()
    record = redis_conn.hgetall(f"job::{jid}")
    assert record[b"result"] == stored
    assert {b"_started", b"_processed"} <= set(record) and b"_error" not in record
    assert redis_conn.llen("jobs::processing") == 0
    pubsub.close()


def test_a_perl_clients_failed_job_is_recorded_and_not_announced(
    uri: str, redis_conn: redis.Redis, workers: list[Worker],
) -> None:
    pubsub = redis_conn.pubsub()
    pubsub.subscribe("client::perl")
    wait_for(lambda: pubsub.get_message(timeout=0.1), "the subscription")
    _worker(workers, uri, lambda job: job.fail("no way"))
    jid = _perl_style_job(redis_conn, "perl", text_x="1")
    assert wait_for(lambda: redis_conn.lindex("jobs::failed", 0), "the failed list") == jid.encode()
    # the failure and the PUBLISH (if there were one) go out in one pipeline, PUBLISH first
    assert pubsub.get_message(timeout=0.2) is None
    error = json.loads(redis_conn.hget(f"job::{jid}", "_error") or b"{}")
    assert error == {"group": "pending-failed", "message": "no way"}
    assert redis_conn.hget(f"job::{jid}", "result") is None and redis_conn.llen("jobs::processing") == 0
    pubsub.close()


def test_a_field_of_unknown_format_fails_the_job_naming_it(
    uri: str, redis_conn: redis.Redis, workers: list[Worker],
) -> None:
    _worker(workers, uri, lambda job: 1)
    jid = _perl_style_job(redis_conn, "perl", text_x="1", bogus="?")
    wait_for(lambda: redis_conn.lindex("jobs::failed", 0), "the failed list")
    assert "'bogus'" in json.loads(redis_conn.hget(f"job::{jid}", "_error") or b"{}")["message"]


def test_failures_and_worker_timeouts_reach_a_python_client(
    uri: str, redis_conn: redis.Redis, workers: list[Worker],
) -> None:
    release = threading.Event()

    def handler(job: Job) -> Any:
        if job.data["what"] == "raise":
            raise KeyError("missing")
        if job.data["what"] == "hang":
            release.wait(30)
        return "ok"

    _worker(workers, uri, handler, timeout=0.5, max_concurrent_jobs=2)
    with JobManager().client("redis", uri=uri, mode="jobasync", timeout=30) as client:
        with pytest.raises(JobFailed, match="KeyError") as failed:
            client.submit(what="raise").result(30)
        assert failed.value.group == "pending-KeyError"
        with pytest.raises(JobFailed, match="timeout"):
            client.submit(what="hang").result(30)
        release.set()
        assert client.submit(what="fine").result(30) == "ok"   # the slot was freed
    assert redis_conn.llen("jobs::processing") == 0 and redis_conn.llen("jobs::failed") == 0


def test_a_client_timeout_withdraws_the_job(uri: str, redis_conn: redis.Redis) -> None:
    with JobManager().client("redis", uri=uri, mode="jobasync", timeout=0.3) as client:
        with pytest.raises(JobTimeout):
            client.submit(x=1).result(30)
        assert client.pending == 0
    assert redis_conn.llen("jobs::pending") == 0 and redis_conn.keys("job::*") == []


def test_a_missed_notification_is_read_from_the_hash(uri: str, redis_conn: redis.Redis) -> None:
    with JobManager().client("redis", uri=uri, mode="jobasync", timeout=30) as client:
        future = client.submit(x=1)
        jid = redis_conn.rpoplpush("jobs::pending", "jobs::processing").decode()
        redis_conn.hset(f"job::{jid}", mapping={"_processed": "1", "result": "T42"})   # no PUBLISH
        assert future.result(30) == "42"
        assert redis_conn.exists(f"job::{jid}") == 0


def test_strict_priority_over_several_queues(uri: str, redis_conn: redis.Redis, workers: list[Worker]) -> None:
    jm = JobManager()
    with jm.client("redis", uri=uri, mode="jobasync", queue="low") as low, \
            jm.client("redis", uri=uri, mode="jobasync", queue="high") as high:
        futures = [low.submit(q="low", i=i) for i in range(5)] + [high.submit(q="high", i=i) for i in range(5)]
        order: list[str] = []
        _worker(workers, uri, lambda job: order.append(job.data["q"]) or job.queue, queues=["high", "low"])
        assert [f.result(30) for f in futures] == ["low"] * 5 + ["high"] * 5
    assert order == ["high"] * 5 + ["low"] * 5


def test_stop_hands_a_running_job_back_to_the_head_of_its_queue(
    uri: str, redis_conn: redis.Redis, workers: list[Worker],
) -> None:
    started = threading.Event()
    _worker(workers, uri, lambda job: started.set())    # returns None: the job stays in flight
    with JobManager().client("redis", uri=uri, mode="jobasync") as client:
        client.submit(x=1)
        assert started.wait(30)
        jid = redis_conn.lindex("jobs::processing", 0)
        client.submit(x=2)
        assert workers[0].stop(0.1) is False
        assert redis_conn.llen("jobs::processing") == 0
        assert redis_conn.lindex("jobs::pending", -1) == jid      # the tail: the next one taken
        assert redis_conn.llen("jobs::pending") == 2


@pytest.mark.parametrize(("kind", "options", "message"), [
    ("redis", {"prefix": "a b"}, "'prefix'"),
    ("redis", {"namespace": "x"}, "'namespace' does not apply in mode 'jobasync'"),
    ("redis", {"retries": 1}, "'retries' does not apply"),
    ("redis", {"queue": "processing"}, "'queue' may not be 'processing'"),
    ("redis", {"use_multi": "yes"}, "'use_multi'"),
    ("redis", {"uri": "redis+cluster://127.0.0.1:7000"}, "not cluster-safe"),
    ("memory", {}, "use type 'redis'"),
])
def test_bad_client_options_are_refused(kind: str, options: dict[str, Any], message: str, redis_conn: redis.Redis) -> None:
    with pytest.raises(InvalidArgument, match=message):
        JobManager().client(kind, mode="jobasync", **options)
    assert redis_conn.dbsize() == 0


@pytest.mark.parametrize(("options", "message"), [
    ({"queues": ["a", "a"]}, "twice"),
    ({"queues": "a"}, "'queues'"),
    ({"queues": ["failed"]}, "may not be 'failed'"),
    ({"heartbeat": 3}, "'heartbeat' does not apply"),
    ({"max_concurrent_jobs": 0}, "'max_concurrent_jobs'"),
])
def test_bad_worker_options_are_refused(options: dict[str, Any], message: str, redis_conn: redis.Redis) -> None:
    with pytest.raises(InvalidArgument, match=message):
        JobManager().worker("redis", mode="jobasync", **options)
    assert redis_conn.dbsize() == 0


def test_asubmit_from_asyncio(uri: str, workers: list[Worker]) -> None:
    import asyncio

    _worker(workers, uri, lambda job: job.data["x"] + 1)

    async def main() -> list[Any]:
        with JobManager().client("redis", uri=uri, mode="jobasync", timeout=30) as client:
            return list(await asyncio.gather(*(client.asubmit(x=i) for i in range(10))))

    assert asyncio.run(main()) == list(range(1, 11))
