"""Overrides that make the suite's engine and mode tests run on the local cluster.

A test module imports the tests it re-runs and ``from tests.cluster.on_cluster import *``: the
suite's ``redis_url`` becomes the cluster's URL (so ``engine``, ``other`` and the delivery modes
connect with ``redis+cluster://``) and ``redis_conn`` a connection to the node serving namespace
``test`` a cluster client whose ``keys()`` lists every primary's keys (snapshots see them all)
and whose other commands route by key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queueengine.devtools.localcluster import LocalCluster
from tests.cluster.conftest import flush_cluster
from tests.queueengine.conftest import other, q, snap, unchanged  # noqa: F401 - fixtures re-exported


@pytest.fixture
def redis_url(local_cluster: LocalCluster) -> str:
    """The cluster's URL instead of the session's single server."""
    return local_cluster.url


class ClusterConn(redis.RedisCluster):
    """A cluster client for tests: ``keys()`` asks every primary; the rest routes by key."""

    def keys(self, pattern: str = "*", **kwargs: Any) -> Any:  # type: ignore[override]
        """Keys of every primary."""
        return super().keys(pattern, target_nodes=self.PRIMARIES)

    def pubsub_numsub(self, *channels: Any, **kwargs: Any) -> Any:
        """Subscribers of each channel, summed over every node."""
        totals = dict.fromkeys(channels, 0)
        for node in self.get_nodes():
            for name, n in node.redis_connection.pubsub_numsub(*channels):
                key = name.decode() if isinstance(name, bytes) else name
                totals[key] = totals.get(key, 0) + int(n)
        return list(totals.items())

    def pubsub_numpat(self, **kwargs: Any) -> Any:
        """Pattern subscriptions, summed over every node."""
        return sum(int(node.redis_connection.pubsub_numpat()) for node in self.get_nodes())

    def client_kill_filter(self, *args: Any, **kwargs: Any) -> Any:
        """CLIENT KILL on every node; the number of clients killed in all."""
        result = super().client_kill_filter(*args, target_nodes=self.ALL_NODES, **kwargs)
        return sum(result.values()) if isinstance(result, dict) else result


@pytest.fixture
def redis_conn(local_cluster: LocalCluster) -> Iterator[redis.Redis]:
    """A cluster client (see :class:`ClusterConn`); the whole cluster is flushed before and after."""
    flush_cluster(local_cluster)
    conn = ClusterConn(host="127.0.0.1", port=local_cluster.ports[0])
    yield conn  # type: ignore[misc]
    conn.close()
    flush_cluster(local_cluster)
