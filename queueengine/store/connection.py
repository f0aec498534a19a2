"""Connections: Redis URLs (one server, Cluster, Sentinel) and the clients a namespace needs.

URLs accepted by :func:`connect` (and so by ``Client.from_url``, ``QUEUEENGINE["URL"]`` and the
delivery modes' ``uri``)::

    redis://[user:pass@]host[:port][/db]  rediss://...  unix:///path/redis.sock?db=0
        one server (``redis.Redis.from_url``; every option it knows)
    redis+cluster://[user:pass@]host:port[,host:port...][?options]      (rediss+cluster://)
        Redis Cluster (``redis.RedisCluster``); the hosts are startup nodes, db is always 0
    redis+sentinel://[user:pass@]host:port[,host:port...]/<service>[/db][?options]  (rediss+sentinel://)
        the current primary of a Sentinel-watched service; user/pass are the servers' own

Options of the ``+cluster``/``+sentinel`` forms: ``socket_timeout``, ``socket_connect_timeout``
(seconds), and for Sentinel ``sentinel_username`` / ``sentinel_password`` (the sentinels' own).

Every key of a namespace carries its hash tag (``qe:{<ns>}:``), so on a cluster a namespace lives
in one slot. An :class:`Endpoint` builds, for one namespace:

* ``main``: the client for ordinary commands (``RedisCluster`` routes each call by the tag);
* :meth:`Endpoint.pinned`: a plain ``redis.Redis`` whose connections always reach the primary
  serving the namespace now: the slot's owner on a cluster (re-resolved when a connection fails
  or answers MOVED), Sentinel's current primary, or the one server. Blocking waits (``BLPOP`` on
  wake lists), pub/sub and raw connections use it; keyword arguments override connection options
  (``socket_timeout=None`` for blocking commands);
* :meth:`Endpoint.asyncio`: the same for ``redis.asyncio``;
* :meth:`Endpoint.sharded`: whether the namespace's server publishes events with ``SPUBLISH``
  (a Redis >= 7 cluster node), which subscribers must then ``SSUBSCRIBE`` to.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from queueengine.exceptions import InvalidArgument, OutOfMemory

_untyped: Any = redis   # redis-py's cluster and sentinel modules are only partly typed

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
PLAIN_SCHEMES = ("redis", "rediss", "unix")
_NUMERIC_OPTIONS = ("socket_timeout", "socket_connect_timeout")
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,     # includes BusyLoadingError (a restart loading its AOF)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,       # talking to a primary that was just demoted
    redis.exceptions.ClusterError,        # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,            # and MovedError: a slot moved under a pinned connection
    redis.exceptions.RedisClusterException,  # SlotNotCoveredError while a cluster heals
    OutOfMemory,                          # maxmemory reached (noeviction): nothing was written
)
"""Errors that mean "Redis is away or changing hands right now": retry with backoff."""

_TRANSIENT_PREFIXES = ("UNBLOCKED", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "BUSY")


def is_transient(exc: BaseException) -> bool:
    """True for an error a worker should ride out (reconnect, back off, try again)."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(_TRANSIENT_PREFIXES)


@dataclass(frozen=True)
class Target:
    """A parsed URL: what kind of deployment and where."""

    kind: str                                   # "server" | "cluster" | "sentinel"
    url: str
    nodes: tuple[tuple[str, int], ...] = ()     # cluster startup nodes, or the sentinels
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _hosts(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):                # [::1]:6379
            host, _, rest = part[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            port = int(port_text) if port_text else 0
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise InvalidArgument(f"url must list host:port pairs separated by commas, got {part!r} in {url!r}")
        out.append((host, port))
    if not out:
        raise InvalidArgument(f"url names no host:port: {url!r}")
    return tuple(out)


def _credentials(netloc: str) -> tuple[str, str | None, str | None]:
    """``user:password@hosts`` -> (hosts, user, password); None for what is not given."""
    if "@" not in netloc:
        return netloc, None, None
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, pw = userinfo.partition(":")
    return hosts, unquote(user) or None, unquote(pw) or None


def _url_options(query: str, sentinel: bool, url: str) -> dict[str, Any]:
    """The options of a cluster or Sentinel URL's query (timeouts as numbers of seconds)."""
    options: dict[str, Any] = {}
    allowed = _NUMERIC_OPTIONS + (_SENTINEL_OPTIONS if sentinel else ())
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise InvalidArgument(f"url option {key!r} is not one of {', '.join(allowed)}: {url!r}")
        if key in _NUMERIC_OPTIONS:
            try:
                options[key] = float(value)
            except ValueError:
                raise InvalidArgument(f"url option {key} must be a number of seconds, got {value!r}") from None
        else:
            options[key] = value
    return options


def _sentinel_service(parts: list[str], url: str) -> tuple[str, int]:
    """(service name, db) from the path of a Sentinel URL, split at '/'."""
    if not parts or len(parts) > 2:
        raise InvalidArgument(f"a Sentinel url needs /<service_name>[/db] after the sentinels, got {url!r}")
    if len(parts) == 2 and not parts[1].isdigit():
        raise InvalidArgument(f"the database in a Sentinel url must be a number, got {parts[1]!r} in {url!r}")
    return unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def parse_url(url: str) -> Target:
    """Parse a URL (see the module docstring); raise InvalidArgument naming what is wrong."""
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgument(f"url must be a redis://, redis+cluster:// or redis+sentinel:// URL, got {url!r}")
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in PLAIN_SCHEMES:
        return Target("server", url)
    if scheme not in CLUSTER_SCHEMES + SENTINEL_SCHEMES:
        raise InvalidArgument(f"url scheme {scheme!r} is not one of "
                              f"{', '.join(PLAIN_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES)}: {url!r}")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    netloc, username, password = _credentials(netloc)
    nodes = _hosts(netloc, url)
    options = _url_options(query, scheme in SENTINEL_SCHEMES, url)
    parts = [p for p in path.split("/") if p]
    ssl = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        if parts and parts != ["0"]:
            raise InvalidArgument(f"a Redis Cluster has only database 0; url path {path!r} in {url!r}")
        return Target("cluster", url, nodes, None, 0, username, password, ssl, options)
    service, db = _sentinel_service(parts, url)
    return Target("sentinel", url, nodes, service, db, username, password, ssl, options)


def connect(url: str, **kwargs: Any) -> Any:
    """The main client for ``url``: ``redis.Redis``, ``redis.RedisCluster`` or a Sentinel primary.

    ``kwargs`` are connection options (``socket_timeout=...``, ...) and win over the URL's. Unless
    ``retry`` is given, a dropped connection is not re-sent by redis-py (the engine retries what is
    safe to repeat itself: :mod:`queueengine.store.outages`).
    """
    target = parse_url(url)
    if target.kind != "cluster":
        # redis-py 8 re-sends any command whose connection dropped (up to 10 times), ones that
        # are not safe to repeat too (a pop, a complete, a put that moves a job): the engine
        # retries what is safe itself (Client.retry_for), the workers ride outages out
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    if target.kind == "server":
        return redis.Redis.from_url(url, **kwargs)
    conn_kwargs: dict[str, Any] = {k: v for k, v in target.options.items() if k in _NUMERIC_OPTIONS}
    if target.username:
        conn_kwargs["username"] = target.username
    if target.password:
        conn_kwargs["password"] = target.password
    if target.ssl:
        conn_kwargs["ssl"] = True
    conn_kwargs.update(kwargs)
    if target.kind == "cluster":
        nodes = [_untyped.cluster.ClusterNode(host, port) for host, port in target.nodes]
        return redis.RedisCluster(startup_nodes=nodes, **conn_kwargs)
    sentinel_kwargs = {k.removeprefix("sentinel_"): v for k, v in target.options.items() if k in _SENTINEL_OPTIONS}
    for key in _NUMERIC_OPTIONS:
        if key in conn_kwargs:
            sentinel_kwargs.setdefault(key, conn_kwargs[key])
    manager = _untyped.sentinel.Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)
    assert target.service is not None
    conn_kwargs.setdefault("connection_class", SentinelSSLConnection if target.ssl else SentinelConnection)
    return manager.master_for(target.service, db=target.db, **conn_kwargs)


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """A Sentinel-managed connection that asks Sentinel for the primary however it is connected.

    redis-py's own class resolves the primary only in ``connect()``; a raw connection
    (``pool.make_connection()``) that is first used through ``send_packed_command`` connects
    through ``connect_check_health`` instead, i.e. to the default localhost:6379.
    """

    _qe_connecting = False

    def connect(self) -> Any:
        """Resolve the primary through Sentinel and connect to it."""
        self._qe_connecting = True
        try:
            return cast(Any, super()).connect()
        finally:
            self._qe_connecting = False

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> Any:
        """As ``connect()`` when called on a fresh connection (from ``send_packed_command``)."""
        if self._sock:
            return None
        if not self._qe_connecting:
            return self.connect()
        return cast(Any, super()).connect_check_health(check_health=check_health,
                                                       retry_socket_connect=retry_socket_connect)


class SentinelSSLConnection(SentinelConnection, redis.SSLConnection):
    """:class:`SentinelConnection` over TLS."""


# ---------------------------------------------------------------------- cluster slot pinning
class SlotRouter:
    """Where a namespace's slot is served now, from a ``RedisCluster``'s map (refreshed on failure)."""

    def __init__(self, cluster: Any, key: str) -> None:
        self.cluster = cluster
        self.key = key
        self._lock = threading.Lock()

    def address(self) -> tuple[str, int]:
        """(host, port) of the primary serving the key's slot."""
        node = self.cluster.get_node_from_key(self.key)
        return str(node.host), int(node.port)

    def refresh(self) -> None:
        """Reload the cluster map (after a failed connection or a MOVED reply)."""
        with self._lock, contextlib.suppress(Exception):
            self.cluster.nodes_manager.initialize()


class SlotConnection(redis.Connection):
    """A connection to whichever primary serves a namespace's slot (resolved at each connect)."""

    def __init__(self, *, slot_router: SlotRouter, **kwargs: Any) -> None:
        self.slot_router = slot_router
        cast(Any, super()).__init__(**kwargs)

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Resolve the slot's primary, then connect to it."""
        if self._sock:
            return
        self.host, self.port = self.slot_router.address()
        try:
            super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self.slot_router.refresh()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """As usual; a slot that moved (MOVED, CLUSTERDOWN) drops the connection for a fresh route."""
        try:
            return super().read_response(*args, **kwargs)
        except (redis.exceptions.AskError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError) as exc:
            cast(Any, self).disconnect()
            self.slot_router.refresh()
            raise redis.exceptions.ConnectionError(f"the namespace's slot moved ({exc}); reconnecting") from exc


class AsyncSlotConnection(redis.asyncio.connection.Connection):
    """The asyncio twin of :class:`SlotConnection`."""

    def __init__(self, *, slot_router: SlotRouter, **kwargs: Any) -> None:
        self.slot_router = slot_router
        super().__init__(**kwargs)

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Resolve the slot's primary, then connect to it."""
        if self.is_connected:
            return
        self.host, self.port = self.slot_router.address()
        try:
            await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self.slot_router.refresh()
            raise


# ---------------------------------------------------------------------- endpoints
_DROP = ("connection_pool", "host", "port", "redis_connect_func", "retry", "driver_info", "himport_registry",
         "maint_notifications_config", "oss_cluster_maint_notifications_handler", "orig_host_address",
         "orig_socket_timeout", "orig_socket_connect_timeout", "path", "slot_router")
_ASYNC_KEYS = ("db", "username", "password", "socket_timeout", "socket_connect_timeout", "client_name",
               "health_check_interval", "decode_responses")


class Endpoint:
    """How to reach one namespace's primary: see the module docstring."""

    kind = "server"

    def __init__(self, main: Any, prefix: str) -> None:
        self.main = main
        self.prefix = prefix
        self._sharded: bool | None = None

    def options(self) -> dict[str, Any]:
        """Connection options of the main client (no address)."""
        kw = dict(self.main.connection_pool.connection_kwargs)
        return {k: v for k, v in kw.items() if k not in _DROP}

    def pinned(self, **overrides: Any) -> redis.Redis:
        """A ``redis.Redis`` on its own pool to the namespace's primary (see the module docstring)."""
        pool = self.main.connection_pool
        kwargs = {**pool.connection_kwargs, **overrides}
        kwargs.pop("connection_pool", None)
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))

    def asyncio(self, **overrides: Any) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` to the namespace's primary."""
        pool = self.main.connection_pool
        kw = pool.connection_kwargs
        args: dict[str, Any] = {k: kw[k] for k in _ASYNC_KEYS if kw.get(k) is not None}
        if "path" in kw:
            args["unix_socket_path"] = kw["path"]
        else:
            args["host"], args["port"] = kw.get("host", "127.0.0.1"), kw.get("port", 6379)
        if issubclass(pool.connection_class, redis.SSLConnection):
            args["ssl"] = True
        args.update(overrides)
        return redis.asyncio.Redis(**args)

    def sharded(self) -> bool:
        """True when the namespace's server is a Redis >= 7 cluster node (events use SPUBLISH)."""
        if self._sharded is None:
            conn = self.pinned()
            try:
                info = conn.info()
                major = int(str(info.get("redis_version", "0")).split(".")[0])
                self._sharded = major >= 7 and int(info.get("cluster_enabled", 0)) == 1
            finally:
                conn.close()
        return self._sharded


class ClusterEndpoint(Endpoint):
    """A namespace on a Redis Cluster: ``main`` is a ``RedisCluster``; side connections are pinned
    to the primary that serves the namespace's slot."""

    kind = "cluster"

    def __init__(self, main: Any, prefix: str) -> None:
        super().__init__(main, prefix)
        self.router = SlotRouter(main, prefix)

    def options(self) -> dict[str, Any]:
        """Connection options of the cluster's node connections."""
        kw = dict(self.main.nodes_manager.connection_kwargs)
        return {k: v for k, v in kw.items() if k not in _DROP}

    def pinned(self, **overrides: Any) -> redis.Redis:
        """A ``redis.Redis`` whose connections go to the slot's current primary."""
        kwargs = {**self.options(), **overrides}
        pool = redis.ConnectionPool(connection_class=SlotConnection, slot_router=self.router, **kwargs)
        return redis.Redis(connection_pool=pool)

    def asyncio(self, **overrides: Any) -> redis.asyncio.Redis:
        """A ``redis.asyncio.Redis`` whose connections go to the slot's current primary."""
        kw = {k: v for k, v in self.options().items() if k in _ASYNC_KEYS and v is not None}
        kw.update(overrides)
        pool = redis.asyncio.ConnectionPool(connection_class=AsyncSlotConnection, slot_router=self.router, **kw)
        return redis.asyncio.Redis(connection_pool=pool)


class SentinelEndpoint(Endpoint):
    """A namespace on a Sentinel-watched primary: every client resolves the primary through Sentinel
    at connect time, and drops a connection whose server was demoted."""

    kind = "sentinel"

    def __init__(self, main: Any, prefix: str) -> None:
        super().__init__(main, prefix)
        pool = main.connection_pool
        self.manager = pool.sentinel_manager
        self.service: str = pool.service_name
        self.sentinels = [(str(s.connection_pool.connection_kwargs["host"]),
                           int(s.connection_pool.connection_kwargs["port"])) for s in self.manager.sentinels]
        # redis-py's Sentinel stores a synchronous Retry in its sentinel_kwargs; the asyncio Sentinel
        # builds its own (an inherited sync one would be converted with a warning)
        self.sentinel_kwargs: dict[str, Any] = {k: v for k, v in (self.manager.sentinel_kwargs or {}).items()
                                                if k != "retry"}
        self.kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _DROP}

    def options(self) -> dict[str, Any]:
        """Connection options of the primary's connections."""
        return dict(self.kwargs)

    def pinned(self, **overrides: Any) -> redis.Redis:
        """A new client of the service's primary (its own pool)."""
        kwargs = {"connection_class": self.main.connection_pool.connection_class, **self.kwargs, **overrides}
        return cast(redis.Redis, self.manager.master_for(self.service, **kwargs))

    def asyncio(self, **overrides: Any) -> redis.asyncio.Redis:
        """An asyncio client of the service's primary (resolved through Sentinel)."""
        manager = _untyped.asyncio.sentinel.Sentinel(self.sentinels, sentinel_kwargs=self.sentinel_kwargs)
        kw = {k: v for k, v in self.kwargs.items() if k in _ASYNC_KEYS and v is not None}
        kw.update(overrides)
        return cast(redis.asyncio.Redis, manager.master_for(self.service, **kw))


def endpoint_of(main: Any, prefix: str) -> Endpoint:
    """The :class:`Endpoint` of a client object (``RedisCluster``, Sentinel primary, slot-pinned
    or plain ``redis.Redis``) for the namespace whose key prefix is ``prefix``."""
    if isinstance(main, redis.RedisCluster):
        return ClusterEndpoint(main, prefix)
    pool = getattr(main, "connection_pool", None)
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        return SentinelEndpoint(main, prefix)
    router = pool.connection_kwargs.get("slot_router") if pool is not None else None
    if isinstance(router, SlotRouter):
        return ClusterEndpoint(router.cluster, prefix)
    return Endpoint(main, prefix)


def namespace_client(url: str, namespace: str, **kwargs: Any) -> redis.Redis:
    """A plain ``redis.Redis`` for one namespace at ``url``: the server, Sentinel's primary, or
    (on a cluster) a client pinned to the primary that serves the namespace's slot. For code that
    needs one connection-oriented client (raw connections, ``CLIENT UNBLOCK``, transactions)."""
    from queueengine.store.keys import prefix

    main = connect(url, **kwargs)
    if isinstance(main, redis.RedisCluster):
        return ClusterEndpoint(main, prefix(namespace)).pinned(**kwargs)
    return cast(redis.Redis, main)


__all__ = [
    "TRANSIENT_ERRORS",
    "ClusterEndpoint",
    "Endpoint",
    "SentinelEndpoint",
    "SlotConnection",
    "SlotRouter",
    "Target",
    "connect",
    "endpoint_of",
    "is_transient",
    "namespace_client",
    "parse_url",
]
