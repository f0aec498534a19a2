"""queueengine.dispatch: the Job::Async API, its fixed bugs and its errors, over every backend."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis

from queueengine.dispatch import JobFailed, JobManager, JobTimeout, ModeMismatch
from queueengine.exceptions import InvalidArgument, QueueEngineError

from .dispatchpair import NS, Pair, add, run_async


def test_submit_is_a_future_resolved_by_a_worker(pair: Pair) -> None:
    """submit() returns a Future; nothing runs before the worker starts; then it resolves."""
    client = pair.client()
    future = client.submit(x=1, y=2)
    worker = pair.worker(add, start=False)
    assert not future.done()
    worker.start()
    assert future.result(10) == 3
    assert client.pending == 0


def test_asubmit(pair: Pair) -> None:
    """await client.asubmit(...) gives the result."""
    client = pair.client()
    pair.worker(add)

    async def go() -> list[int]:
        return list(await asyncio.gather(*(client.asubmit(x=i, y=1) for i in range(20))))

    assert run_async(go()) == [i + 1 for i in range(20)]


def test_handler_styles(pair: Pair) -> None:
    """A handler may return the result, return a coroutine, or call done() later from elsewhere."""
    client = pair.client()

    def handler(job: Any) -> Any:
        kind = job.data["kind"]
        if kind == "return":
            return 41 + 1
        if kind == "async":

            async def later() -> str:
                await asyncio.sleep(0.01)
                return "async"

            return later()
        threading.Timer(0.05, job.done, args=["callback"]).start()
        return None

    pair.worker(handler, max_concurrent_jobs=2)
    futures = [client.submit(kind=k) for k in ("return", "async", "callback")]
    assert [f.result(10) for f in futures] == [42, "async", "callback"]


def test_failures_reach_the_client_and_free_the_slot(pair: Pair) -> None:
    """fail(reason), a raising handler and a worker timeout fail the future with the reason;
    the single concurrency slot is freed each time, so the next job still runs."""
    client = pair.client()
    release = threading.Event()

    def handler(job: Any) -> Any:
        what = job.data["what"]
        if what == "fail":
            job.fail("out of cheese")
        elif what == "raise":
            raise ValueError("bad input 7")
        elif what == "hang":
            release.wait(10)
        else:
            job.done("fine")

    worker = pair.worker(handler, max_concurrent_jobs=2, timeout=1.5)  # the quick jobs need far less
    with pytest.raises(JobFailed, match="out of cheese"):
        client.submit(what="fail").result(10)
    with pytest.raises(JobFailed, match="ValueError: bad input 7") as info:
        client.submit(what="raise").result(10)
    assert info.value.group == "default-ValueError"
    hangs = [client.submit(what="hang") for _ in range(2)]
    for hang in hangs:
        with pytest.raises(JobFailed, match="timeout") as info:
            hang.result(10)
        assert info.value.group == "default-timeout"
    assert client.submit(what="ok").result(10) == "fine"
    assert worker.in_flight == 0
    release.set()


def test_client_timeout_leaks_nothing(pair: Pair, redis_conn: redis.Redis) -> None:
    """A client-side timeout fails the future and withdraws the job: no pending entry, no key."""
    client = pair.client(timeout=0.2)
    before = set(redis_conn.keys(f"qe:{{{NS}}}:*"))
    future = client.submit(x=1, y=1)
    with pytest.raises(JobTimeout):
        future.result(10)
    exc = future.exception()
    assert isinstance(exc, TimeoutError)
    assert client.pending == 0
    if pair.mode == "simple":  # nothing at all is left
        assert set(redis_conn.keys(f"qe:{{{NS}}}:*")) == before
    else:  # engine jobs: the job and its history are gone, the queue is empty
        assert not [k for k in redis_conn.keys('*') if exc.jid.encode() in k]
        assert b"" not in redis_conn.zrange(f"qe:{{{NS}}}:q:default:work", 0, -1)
        assert redis_conn.zcard(f"qe:{{{NS}}}:q:default:work") == 0
    worker = pair.worker(add)
    # the withdrawn job is never run: a job queued after it is the only one the worker takes
    assert pair.client().submit(x=1, y=1).result(10) == 2
    assert worker.processed == 1


def test_strict_priority_over_several_queues(pair: Pair) -> None:
    """Jobs of the first queue all run before any job of the second one."""
    low = pair.client(queue="low")
    high = pair.client(queue="high")
    lows = [low.submit(n=i) for i in range(5)]
    highs = [high.submit(n=i) for i in range(5)]
    order: list[str] = []
    pair.worker(lambda job: order.append(job.queue) or job.done(job.data["n"]), queues=["high", "low"])
    assert [f.result(10) for f in highs + lows] == list(range(5)) * 2
    assert order == ["high"] * 5 + ["low"] * 5


def test_stop_finishes_in_flight_jobs(pair: Pair) -> None:
    """stop(timeout) waits for running jobs and returns True."""
    client = pair.client()
    started = threading.Event()

    def slow(job: Any) -> None:
        started.set()
        time.sleep(0.2)
        job.done("finished")

    worker = pair.worker(slow)
    future = client.submit()
    assert started.wait(10)
    assert worker.stop(timeout=5) is True
    assert future.result(5) == "finished"


def test_stop_hands_back_unfinished_jobs(pair: Pair) -> None:
    """A job still running when stop's timeout ends is handed back and done by another worker."""
    client = pair.client()
    started = threading.Event()
    worker = pair.worker(lambda job: started.set(), max_concurrent_jobs=1)  # never finishes
    future = client.submit(x=2, y=3)
    assert started.wait(10)
    assert worker.stop(timeout=0.1) is False
    pair.worker(add)
    assert future.result(10) == 5


def test_stop_while_fetching_orphans_nothing(pair: Pair) -> None:
    """stop() on an idle worker returns at once; a job queued afterwards is not lost."""
    client = pair.client()
    worker = pair.worker(add, poll_interval=60)
    time.sleep(0.05)  # let it enter its blocking fetch (stopping earlier proves less, never fails)
    started = time.monotonic()
    assert worker.stop(timeout=5) is True
    assert time.monotonic() - started < 20  # far under the 60 s poll: the fetch was unblocked
    future = client.submit(x=1, y=1)
    pair.worker(add)
    assert future.result(10) == 2


def test_mode_mismatch_names_both_modes(pair: Pair, redis_conn: redis.Redis) -> None:
    """A client or worker of another mode fails at start, naming both modes; nothing written."""
    pair.client()
    other = "reliable" if pair.mode != "reliable" else "simple"
    before = {k: redis_conn.dump(k) for k in redis_conn.keys('*')}
    kind = {"uri": pair.url} if pair.type == "redis" else {}
    with pytest.raises(ModeMismatch, match=rf"'{pair.mode}'.*'{other}'"):
        JobManager().client(pair.type, mode=other, namespace=NS, **kind)
    with pytest.raises(ModeMismatch, match=rf"'{pair.mode}'.*'{other}'"):
        JobManager().worker(pair.type, mode=other, namespace=NS, **kind)
    assert {k: redis_conn.dump(k) for k in redis_conn.keys('*')} == before
    if pair.type == "redis":
        assert redis_conn.get(f"qe:{{{NS}}}:mode") == pair.mode.encode()


def test_non_json_data_is_refused(pair: Pair, redis_conn: redis.Redis) -> None:
    """Non-JSON data raises InvalidArgument naming the argument; nothing is written."""
    client = pair.client()
    before = {k: redis_conn.dump(k) for k in redis_conn.keys('*')}
    with pytest.raises(InvalidArgument, match=r"data\.when"):
        client.submit(x=1, when=object())
    assert {k: redis_conn.dump(k) for k in redis_conn.keys('*')} == before
    assert client.pending == 0


def test_bad_configuration_changes_nothing(redis_url: str, redis_conn: redis.Redis) -> None:
    """Unknown type, unknown option, bad uri, bad mode, bad numbers, unreachable Redis: a clear
    error naming the culprit, and the keyspace (with a namespace already in use) is unchanged."""
    existing = JobManager().client("redis", uri=redis_url, mode="reliable", namespace=NS)
    existing.submit(x=1, y=2)
    existing.close()
    before = {k: redis_conn.dump(k) for k in redis_conn.keys("*")}
    assert before
    jm = JobManager()
    bad: list[tuple[str, Any, dict[str, Any]]] = [
        ("'rabbit'", jm.client, {"type": "rabbit"}),
        ("'rabbit'", jm.worker, {"type": "rabbit"}),
        ("'colour'", jm.client, {"colour": "red"}),
        ("'colour'", jm.worker, {"colour": "red"}),
        ("'uri'", jm.client, {"uri": "http://example.com/"}),
        ("'uri'", jm.worker, {"uri": "redis://127.0.0.1:notaport/0"}),
        ("'uri'", jm.client, {"uri": 6379}),
        ("'mode'", jm.worker, {"mode": "fast"}),
        ("'mode'", jm.client, {"mode": None}),
        ("'max_concurrent_jobs'", jm.worker, {"max_concurrent_jobs": 0}),
        ("'max_concurrent_jobs'", jm.worker, {"max_concurrent_jobs": 1.5}),
        ("'timeout'", jm.client, {"timeout": -1}),
        ("'timeout'", jm.worker, {"timeout": "10"}),
        ("'heartbeat'", jm.worker, {"heartbeat": 0}),
        ("'queues'", jm.worker, {"queues": "high"}),
        ("'queues'", jm.worker, {"queues": []}),
        ("twice", jm.worker, {"queues": ["a", "a"]}),
        ("'queue'", jm.client, {"queue": "has space"}),
        ("'namespace'", jm.client, {"namespace": "a{b}"}),
        ("'prefix' and 'namespace'", jm.client, {"prefix": "a", "namespace": "b"}),
    ]
    for expected, factory, cfg in bad:
        kind = cfg.pop("type", "redis")
        options = {"uri": redis_url, "namespace": NS, "mode": "reliable", **cfg}
        if "prefix" in cfg:
            options.pop("namespace")
            options.update(cfg)
        with pytest.raises(InvalidArgument, match=expected):
            factory(kind, **options)
    with pytest.raises(QueueEngineError, match="127.0.0.1:6/0"):
        jm.client("redis", uri="redis://127.0.0.1:6/0")
    with pytest.raises(QueueEngineError, match="127.0.0.1:6/0"):
        jm.worker("redis", uri="redis://127.0.0.1:6/0")
    assert {k: redis_conn.dump(k) for k in redis_conn.keys("*")} == before


def test_prefix_is_another_name_for_the_namespace(pair: Pair, redis_conn: redis.Redis) -> None:
    """prefix="shop" puts every key under qe:{shop}: and pairs with namespace="shop"."""
    base = {"uri": pair.url} if pair.type == "redis" else {}
    client = JobManager().client(pair.type, mode=pair.mode, prefix="shop", **base)
    worker = JobManager().worker(pair.type, mode=pair.mode, namespace="shop", **base)
    pair.made += [client, worker]
    worker.jobs.each(add)
    worker.start()
    assert client.submit(x=2, y=5).result(10) == 7
    if pair.type == "redis":
        keys = redis_conn.keys("*")
        assert keys and all(k.startswith(b"qe:{shop}:") for k in keys)
        assert redis_conn.get("qe:{shop}:mode") == pair.mode.encode()
