"""Sentinel: the client takes a ``redis+sentinel://`` URL; workers, the events listener, waiting
clients and the delivery modes ride out a failover (real primary, replica and Sentinel).

The failover is the planned kind (``LocalSentinel.failover``: writes paused on the old primary
until the replica has them all and the old primary follows the new one), so the promise checked
is the engine's own: every job done exactly once, nothing lost, no worker crashes or spins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from queueengine import Client, Event
from queueengine.devtools.localcluster import LocalSentinel
from queueengine.dispatch import JobManager
from queueengine.store.connection import SentinelEndpoint, parse_url
from queueengine.worker import Worker
from tests.cluster import handlers

RECORD = "tests.cluster.handlers.record"


@pytest.fixture
def sentinel_client(sentinel_url: str) -> Iterator[Client]:
    """An engine client through Sentinel, namespace ``sv``."""
    client = Client.from_url(sentinel_url, namespace="sv")
    yield client
    client.close()


@pytest.fixture
def running_worker(sentinel_client: Client) -> Iterator[tuple[Worker, threading.Thread]]:
    """The engine's worker (4 threads) on queue ``q`` in a thread of this process."""
    handlers.reset()
    worker = Worker(sentinel_client, ["q"], concurrency=4, install_signals=False, max_wait=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield worker, thread
    worker.stop()
    thread.join(20)
    assert not thread.is_alive(), "the worker did not stop"


def test_sentinel_url_reaches_the_primary(sentinel_pair: LocalSentinel, sentinel_client: Client) -> None:
    target = parse_url(sentinel_pair.url)
    assert (target.kind, target.service, target.db) == ("sentinel", "qe-primary", 0)
    assert isinstance(sentinel_client.endpoint, SentinelEndpoint)
    jid = sentinel_client.queues["q"].put("k", {"a": 1})
    primary = sentinel_pair.primary()
    import redis

    direct = redis.Redis(port=primary.port)
    try:
        assert direct.hget(f"qe:{{sv}}:j:{jid}", "klass") == b"k"   # written on the primary itself
    finally:
        direct.close()


def test_engine_worker_and_waiters_ride_out_a_failover(
        sentinel_pair: LocalSentinel, sentinel_client: Client,
        running_worker: tuple[Worker, threading.Thread]) -> None:
    """Jobs put before, during and after a failover are each done exactly once; the worker keeps
    running; ``client.wait`` returns every result."""
    worker, thread = running_worker
    q = sentinel_client.queues["q"]
    before = [q.put(RECORD, {"n": i, "sleep": 0.01}) for i in range(60)]
    old = sentinel_pair.primary()
    new = sentinel_pair.failover()
    assert new is not old
    after = [q.put(RECORD, {"n": 100 + i}) for i in range(40)]
    results = [sentinel_client.wait(jid, timeout=30) for jid in before + after]
    assert results == list(range(60)) + [100 + i for i in range(40)]
    assert thread.is_alive()
    assert all(handlers.RUNS[jid] == 1 for jid in before + after), "a job ran twice"
    assert {sentinel_client.jobs[jid].state.value for jid in before + after} == {"complete"}


def test_events_listener_resubscribes_after_a_failover(sentinel_pair: LocalSentinel,
                                                       sentinel_client: Client) -> None:
    seen: list[Event] = []
    stop = threading.Event()
    got = threading.Condition()

    def listen() -> None:
        for event in sentinel_client.events.listen(stop=stop, reconnected=True):
            with got:
                seen.append(event)
                got.notify_all()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    q = sentinel_client.queues["q"]

    def heard(timeout: float) -> bool:
        """Put a job; True once its put event arrived (the listener may still be subscribing:
        a put made before that is not heard, so put again until one is)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jid = q.put("k", {})
            with got:
                if got.wait_for(lambda j=jid: any(e.jid == j and e.name == "put" for e in seen), timeout=0.5):
                    return True
        return False

    try:
        assert heard(10)
        old = sentinel_pair.primary()
        sentinel_pair.failover()
        assert heard(15), "no event after the failover"
        # the listener may still sit on the old primary (a replica now: PUBLISH replicates); stop
        # that server, so only a listener that found the new primary hears anything
        old.stop()
        assert heard(15), "no event once the old primary is gone"
        assert any(e.name == "reconnected" for e in seen)
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_durable_modes_lose_nothing_in_a_failover(mode: str, sentinel_pair: LocalSentinel) -> None:
    """Job::Async front door through Sentinel: futures submitted before and after a failover all
    resolve with their result; the worker is still running."""
    jm = JobManager()
    worker = jm.worker("redis", uri=sentinel_pair.url, mode=mode, namespace=f"m-{mode}", max_concurrent_jobs=2)
    worker.jobs.each(lambda job: job.done(job.data["x"] * 2))
    worker.start()
    client = jm.client("redis", uri=sentinel_pair.url, mode=mode, namespace=f"m-{mode}")
    try:
        before = [client.submit(x=i) for i in range(30)]
        sentinel_pair.failover()
        after = [client.submit(x=100 + i) for i in range(20)]
        assert [f.result(30) for f in before + after] == [2 * i for i in range(30)] + [2 * (100 + i) for i in range(20)]
        assert worker._thread is not None and worker._thread.is_alive()
    finally:
        client.close()
        worker.stop(timeout=5)


def test_simple_mode_works_again_after_a_failover(sentinel_pair: LocalSentinel) -> None:
    """simple stores no results: what matters is that the worker and the client recover."""
    jm = JobManager()
    worker = jm.worker("redis", uri=sentinel_pair.url, mode="simple", namespace="m-simple")
    worker.jobs.each(lambda job: job.done(job.data["x"] + 1))
    worker.start()
    client = jm.client("redis", uri=sentinel_pair.url, mode="simple", namespace="m-simple")
    try:
        assert client.submit(x=1).result(10) == 2
        sentinel_pair.failover()
        deadline = time.monotonic() + 20
        answered: list[Any] = []
        while not answered and time.monotonic() < deadline:   # the reply channel resubscribes
            try:
                answered.append(client.submit(x=41).result(2))
            except Exception:  # noqa: BLE001 - a reply published before the resubscription
                continue
        assert answered == [42]
    finally:
        client.close()
        worker.stop(timeout=5)


def test_a_raw_connection_follows_sentinel_too(sentinel_pair: LocalSentinel) -> None:
    """The delivery modes send on raw connections (``pool.make_connection()``); redis-py's
    Sentinel connection would connect those to localhost:6379. Ours asks Sentinel."""
    from queueengine.store.connection import connect

    main = connect(sentinel_pair.url)
    raw = main.connection_pool.make_connection()
    try:
        raw.send_packed_command(raw.pack_command("SET", "qe:{raw}:k", "v"))
        assert raw.read_response() == b"OK"
        assert raw.port == sentinel_pair.primary().port
    finally:
        raw.disconnect()
        main.close()


async def test_asyncio_clients_go_through_sentinel(sentinel_pair: LocalSentinel, sentinel_client: Client) -> None:
    """``await_result`` and ``alisten`` resolve the primary through Sentinel too."""
    import asyncio

    q = sentinel_client.queues["q"]
    events = sentinel_client.events.alisten()
    first = asyncio.ensure_future(events.__anext__())
    deadline = time.monotonic() + 10
    while not first.done() and time.monotonic() < deadline:   # until the listener is subscribed
        q.put("k", {})
        await asyncio.wait([first], timeout=0.2)
    assert first.done() and first.result().name == "put"
    r = sentinel_client.queues["r"]
    jid = r.put("k", {}, reply=True)
    waiter = asyncio.ensure_future(sentinel_client.await_result(jid, timeout=10))
    job = await asyncio.to_thread(r.pop)
    assert job is not None and job.jid == jid
    await asyncio.to_thread(job.complete, {"ok": True})
    assert await waiter == {"ok": True}
    await events.aclose()


async def test_asyncio_sentinel_client_is_built_without_a_sync_retry(sentinel_client: Client) -> None:
    """redis-py's sync Sentinel keeps a synchronous ``Retry`` in its ``sentinel_kwargs``; the asyncio
    client is built from the endpoint's copy without it (no conversion warning) and still answers."""
    import warnings

    from redis.asyncio.retry import Retry as AsyncRetry

    endpoint = sentinel_client.endpoint
    assert isinstance(endpoint, SentinelEndpoint)
    assert "retry" not in endpoint.sentinel_kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the conversion warning would fail the test here
        aclient = endpoint.asyncio()
        try:
            assert await aclient.ping() is True
            manager = aclient.connection_pool.sentinel_manager
            assert all(isinstance(s.get_retry(), AsyncRetry) for s in manager.sentinels)
        finally:
            await aclient.aclose()
