"""Overrides that make the suite's engine and mode tests run on the local cluster.

A test module imports the tests it re-runs and ``from tests.cluster.on_cluster import *``: the
suite's ``redis_url`` becomes the cluster's URL (so ``engine``, ``other`` and the delivery modes
connect with ``redis+cluster://``) and ``redis_conn`` a connection to the node serving namespace
``test`` (where every key of the tests lives: snapshots and direct reads see them all).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from queueengine.localcluster import LocalCluster
from tests.cluster.conftest import flush_cluster, node_conn
from tests.queueengine.conftest import other, q, snap, unchanged  # noqa: F401 - fixtures re-exported


@pytest.fixture
def redis_url(local_cluster: LocalCluster) -> str:
    """The cluster's URL instead of the session's single server."""
    return local_cluster.url


@pytest.fixture
def redis_conn(local_cluster: LocalCluster) -> Iterator[redis.Redis]:
    """The node of namespace ``test``; the whole cluster is flushed before and after."""
    flush_cluster(local_cluster)
    conn = node_conn(local_cluster, "test")
    yield conn
    conn.close()
    flush_cluster(local_cluster)
