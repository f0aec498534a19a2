"""Spreading queues over several namespaces, and so over several Redis Cluster nodes.

A namespace is the engine's unit of atomicity and of sharding: all its keys carry one hash tag
(``qe:{<ns>}:``), so on a cluster it lives in one slot, on one primary. One namespace therefore
uses one node however big the cluster is; a deployment that outgrows a node gives groups of
queues namespaces of their own, each served by a node of the cluster::

    QUEUEENGINE = {
        "URL": "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379",
        "NAMESPACE": "default",                          # queues not listed below
        "QUEUE_NAMESPACES": {"emails": "mail", "thumbnails": "media", "video": "media"},
        "NAMESPACES": ["default", "mail", "media"],      # what the dashboard can switch between
    }

    from queueengine.conf import namespaces
    spaces = namespaces()                               # or Namespaces(url, routes, default=...)
    spaces.queue("emails").put("app.jobs.send", {...})  # goes to namespace "mail"
    spaces.placement()                                  # {"default": "10.0.0.2:6379", "mail": ...}

Workers work the queues of one namespace each (a pop is one Lua call in one slot):
``manage.py qe_worker --namespace mail -q emails``. What stays inside a namespace: dependencies,
throttles, strict priority across a worker's queues, ``unfail``/moves between queues, one events
channel. Pick namespace names so that they land on different primaries: :func:`spread` does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import redis
import redis.sentinel

from queueengine.client import Client
from queueengine.queue import Queue
from queueengine.store import args as _args
from queueengine.store.connection import ClusterEndpoint, connect, endpoint_of
from queueengine.store.keys import prefix


class Namespaces:
    """Clients of several namespaces on one connection, and the queue -> namespace routing.

    ``target``: a URL (see :mod:`queueengine.store.connection`) or a client object (``redis.Redis``,
    ``RedisCluster``, a Sentinel primary). ``routes``: queue -> namespace; other queues belong to
    ``default``. ``extra``: more namespaces to list (in :meth:`names`) though no route names them.
    """

    def __init__(self, target: Any, routes: Mapping[str, str] | None = None, default: str = "default",
                 extra: tuple[str, ...] = (), **client_kwargs: Any) -> None:
        self.conn = connect(target) if isinstance(target, str) else target
        self.owns_connection = isinstance(target, str)
        """Whether ``close()`` closes the connection too (it was made here)."""
        self.default = _args.name(default, "default")
        self.routes = {_args.name(q, "routes"): _args.name(ns, "routes") for q, ns in (routes or {}).items()}
        self.extra = tuple(_args.name(ns, "extra") for ns in extra)
        self.client_kwargs = client_kwargs
        self._clients: dict[str, Client] = {}

    def namespace_of(self, queue: str) -> str:
        """The namespace that holds ``queue``."""
        return self.routes.get(_args.name(queue, "queue"), self.default)

    def client(self, namespace: str | None = None) -> Client:
        """The client of ``namespace`` (default: the default namespace); one per namespace."""
        ns = _args.name(namespace or self.default, "namespace")
        found = self._clients.get(ns)
        if found is None:
            found = self._clients[ns] = Client(self.conn, namespace=ns, **self.client_kwargs)
        return found

    def client_for(self, queue: str) -> Client:
        """The client of the namespace that holds ``queue``."""
        return self.client(self.namespace_of(queue))

    def queue(self, name: str) -> Queue:
        """``client_for(name).queues[name]``."""
        return self.client_for(name).queues[name]

    def names(self) -> list[str]:
        """Every namespace: the default, the routed ones, the extra ones (first seen first)."""
        out: list[str] = []
        for ns in (self.default, *self.routes.values(), *self.extra):
            if ns not in out:
                out.append(ns)
        return out

    def placement(self) -> dict[str, str]:
        """Namespace -> ``host:port`` of the primary that serves it now."""
        return {ns: node_of(self.conn, ns) for ns in self.names()}

    def close(self) -> None:
        """Close the clients (and the connection when this object opened it)."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.owns_connection:
            self.conn.close()


def node_of(conn: Any, namespace: str) -> str:
    """``host:port`` of the primary serving ``namespace``: the cluster node of its slot, the
    primary Sentinel names now, or the one server."""
    endpoint = endpoint_of(conn, prefix(namespace))
    if isinstance(endpoint, ClusterEndpoint):
        host, port = endpoint.router.address()
        return f"{host}:{port}"
    pool = conn.connection_pool
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        host, port = cast(Any, pool).get_master_address()
        return f"{host}:{port}"
    kw = pool.connection_kwargs
    return str(kw["path"]) if "path" in kw else f"{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}"


def spread(conn: Any, count: int, stem: str = "shard") -> list[str]:
    """``count`` namespace names ``<stem><i>`` that land on distinct cluster primaries (round
    robin over them when ``count`` exceeds the primaries): e.g. ``spread(cluster, 3)`` ->
    ``["shard0", "shard1", "shard4"]``. On a single server (or Sentinel) it is ``stem0..``."""
    _args.integer(count, "count", 1, 10_000)
    if not isinstance(conn, redis.RedisCluster):
        return [f"{stem}{i}" for i in range(count)]
    cluster: Any = conn
    primaries = sorted(f"{n.host}:{n.port}" for n in cluster.get_primaries())
    load = dict.fromkeys(primaries, 0)
    out: list[str] = []
    i = 0
    while len(out) < count and i < 100_000:
        name = f"{stem}{i}"
        node = cluster.get_node_from_key(prefix(name))
        where = f"{node.host}:{node.port}"
        if load.get(where, 0) == min(load.values()):
            load[where] = load.get(where, 0) + 1
            out.append(name)
        i += 1
    return out


__all__ = ["Namespaces", "node_of", "spread"]
