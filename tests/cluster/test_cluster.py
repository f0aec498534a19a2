"""Redis Cluster specifics: URLs, routing by the namespace's hash tag, namespaces on several nodes,
sharded pub/sub, blocking waits, reloading the library, riding out a node restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from queueengine import Client, Event, InvalidArgument
from queueengine.devtools.localcluster import LocalCluster
from queueengine.namespaces import Namespaces, node_of, spread
from queueengine.store.connection import ClusterEndpoint, parse_url
from queueengine.store.keys import prefix
from queueengine.worker import Worker
from tests.cluster import handlers
from tests.cluster.conftest import node_conn

RECORD = "tests.cluster.handlers.record"


def test_urls_are_parsed_and_bad_ones_named() -> None:
    t = parse_url("redis+cluster://a:7000,b:7001?socket_timeout=2")
    assert (t.kind, t.nodes, t.options) == ("cluster", (("a", 7000), ("b", 7001)), {"socket_timeout": 2.0})
    t = parse_url("rediss+sentinel://u:p%40ss@s1:26379,[::1]:26380/mymaster/3?sentinel_password=x")
    assert (t.kind, t.service, t.db, t.username, t.password, t.ssl) == ("sentinel", "mymaster", 3, "u", "p@ss", True)
    assert t.nodes == (("s1", 26379), ("::1", 26380)) and t.options == {"sentinel_password": "x"}
    assert parse_url("redis://h:1/2").kind == "server"
    for bad, says in [("redis+cluster://a:7000/1", "database 0"), ("redis+sentinel://a:1", "service_name"),
                      ("redis+cluster://a", "host:port"), ("redis+cluster://a:1?db=2", "url option 'db'"),
                      ("mongodb://x", "scheme"), ("redis+sentinel://a:1/s/x", "must be a number")]:
        with pytest.raises(InvalidArgument, match=says):
            parse_url(bad)


@pytest.fixture
def spaces(cluster_url: str) -> Iterator[Namespaces]:
    """Three namespaces that land on the three primaries; queue "mail" in ns 2, "media" in ns 3."""
    probe = redis.RedisCluster.from_url("redis://" + cluster_url.split("//")[1].split(",")[0])
    names = spread(probe, 3, stem="ns")
    probe.close()
    s = Namespaces(cluster_url, {"mail": names[1], "media": names[2]}, default=names[0])
    yield s
    s.close()


def test_namespaces_spread_queues_over_the_nodes(spaces: Namespaces, local_cluster: LocalCluster) -> None:
    placement = spaces.placement()
    assert len(set(placement.values())) == 3, placement          # one primary each
    for ns, where in placement.items():
        assert where == f"127.0.0.1:{local_cluster.node_for(prefix(ns)).port}"
    jids = {q: spaces.queue(q).put(RECORD, {"n": i}) for i, q in enumerate(["default", "mail", "media"])}
    for q, jid in jids.items():
        job = spaces.client_for(q).pop_from([q])[0]
        assert job.jid == jid
        job.complete({"q": q})
    for ns in spaces.names():                                      # every key of a namespace on its node
        conn = node_conn(local_cluster, ns)
        try:
            keys = conn.keys("*")
            assert keys and all(k.startswith(prefix(ns).encode()) for k in keys), (ns, keys)
        finally:
            conn.close()
    assert isinstance(spaces.client().redis, redis.RedisCluster)
    assert node_of(spaces.conn, spaces.default) == placement[spaces.default]


def test_events_use_sharded_pubsub_on_redis_7(cluster_url: str, local_cluster: LocalCluster) -> None:
    client = Client.from_url(cluster_url, namespace="ev")
    node = node_conn(local_cluster, "ev")
    classic = node.pubsub(ignore_subscribe_messages=True)
    classic.subscribe(client.events.channel)
    sub = client.events.subscriber(client.events.channel)
    try:
        sub.connect()
        assert isinstance(client.endpoint, ClusterEndpoint)
        jid = client.queues["q"].put("k", {})
        channel, data = sub.get_message(timeout=5) or ("", b"")
        assert channel == client.events.channel and Event.parse(data).jid == jid
        plain = None
        deadline = time.monotonic() + 0.5
        while plain is None and time.monotonic() < deadline:   # (the first read may be the confirmation)
            plain = classic.get_message(timeout=0.1)
        if local_cluster.version >= (7, 0, 0):   # SPUBLISH: nothing reaches a plain subscriber
            assert client.endpoint.sharded() and plain is None
        else:                                     # Redis 6.2 has no sharded pub/sub: PUBLISH
            assert not client.endpoint.sharded() and plain is not None
    finally:
        sub.close()
        classic.close()
        node.close()
        client.close()


def test_the_library_is_reloaded_on_a_node_that_lost_it(cluster_url: str, local_cluster: LocalCluster) -> None:
    client = Client.from_url(cluster_url, namespace="lib")
    node = node_conn(local_cluster, "lib")
    try:
        client.queues["q"].put("k", {})
        if local_cluster.version >= (7, 0, 0):
            node.function_flush()
        else:
            node.script_flush()
        assert client.queues["q"].put("k", {})
        assert len(client.queues["q"]) == 2
    finally:
        node.close()
        client.close()


def test_worker_and_listener_ride_out_a_restart_of_the_namespace_node(
        cluster_url: str, local_cluster: LocalCluster) -> None:
    """The node serving the namespace restarts (on its AOF): the worker keeps going, the events
    listener resubscribes, jobs put before and after are each done once."""
    handlers.reset()
    client = Client.from_url(cluster_url, namespace="rs")
    worker = Worker(client, ["q"], concurrency=2, install_signals=False, max_wait=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    seen: list[Event] = []
    stop = threading.Event()
    listener = threading.Thread(target=lambda: seen.extend(client.events.listen(stop=stop, reconnected=True)),
                                daemon=True)
    thread.start()
    listener.start()
    q = client.queues["q"]
    try:
        before = [q.put(RECORD, {"n": i}) for i in range(20)]
        assert [client.wait(jid, timeout=15) for jid in before] == list(range(20))
        local_cluster.restart_node(local_cluster.node_for(prefix("rs")))
        after = [q.put(RECORD, {"n": i}) for i in range(20, 40)]
        assert [client.wait(jid, timeout=30) for jid in after] == list(range(20, 40))
        assert thread.is_alive()
        assert all(handlers.RUNS[jid] == 1 for jid in before + after)
        deadline = time.monotonic() + 10
        while not any(e.name == "completed" and e.jid == after[-1] for e in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(e.name == "completed" and e.jid == after[-1] for e in seen), "the listener did not resubscribe"
        assert any(e.name == "reconnected" for e in seen)
    finally:
        stop.set()
        worker.stop()
        thread.join(15)
        listener.join(5)
        client.close()


def test_an_idle_worker_on_the_cluster_wakes_at_once(cluster_url: str) -> None:
    """BLPOP on the wake lists (a connection pinned to the namespace's node) wakes on a put."""
    handlers.reset()
    client = Client.from_url(cluster_url, namespace="wk", socket_timeout=90)   # lets max_wait be 60 s
    worker = Worker(client, ["q"], concurrency=1, install_signals=False, max_wait=60.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        client.wait(client.queues["q"].put(RECORD, {"n": 1}), timeout=10)   # the worker is idle now
        time.sleep(0.3)
        began = time.monotonic()
        client.wait(client.queues["q"].put(RECORD, {"n": 2}), timeout=10)
        assert time.monotonic() - began < 20, "the put did not wake the blocked worker (it waits up to 60 s)"
    finally:
        worker.stop()
        thread.join(15)
        client.close()


def test_qe_worker_works_one_namespace(settings: object) -> None:
    from django.core.management.base import CommandError

    from queueengine.management.commands.qe_worker import Command

    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "NAMESPACE": "main",  # type: ignore[attr-defined]
                            "QUEUE_NAMESPACES": {"emails": "mail", "bounces": "mail"}}
    assert Command.namespace_of(["emails", "bounces"]) == "mail"
    assert Command.namespace_of(["default"]) == "main"
    with pytest.raises(CommandError, match="different namespaces"):
        Command.namespace_of(["emails", "default"])
