"""The ``QUEUEENGINE`` Django setting, read lazily with defaults.

Every attribute access reads ``django.conf.settings.QUEUEENGINE`` again, so
``override_settings`` works; keys that are missing take the class defaults below. Without
Django installed or configured, the defaults apply (the core never needs this module)::

    QUEUEENGINE = {
        "URL": "redis://127.0.0.1:6379/0",
        "NAMESPACE": "default",
        "MODE": "reliable",             # simple | recoverable | reliable
        "QUEUES": ["default"],          # what `qe_worker` works when given no -q
        "CONCURRENCY": 4,               # jobs at once per worker process
        "PROCESSES": 1,                 # worker processes started by `qe_worker`
        "SOCKET_TIMEOUT": None,         # redis-py socket timeout in seconds (None: its default)
        "READ_ONLY": False,             # the dashboard shows, but refuses every action
        "METRICS_TOKEN": None,          # a bearer token that may read /jobs/metrics (None: staff only)
        "QUEUE_NAMESPACES": {},         # queue -> namespace, to spread queues over namespaces (cluster
                                        # nodes); see queueengine.namespaces. Others are in NAMESPACE
        "NAMESPACES": None,             # every namespace in use (the dashboard switches between them)
    }

The dashboard reads its own keys of the same dict (``PAGE_SIZE``, ``PREVIEW_BYTES``,
``NAMESPACES``, ``REQUIRE_VIEW_PERMISSION``, ``ENVIRONMENT``) through ``jobadmin.conf``.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queueengine.client import Client
    from queueengine.namespaces import Namespaces


class Settings:
    """Typed, lazy view of ``settings.QUEUEENGINE``."""

    URL: str = "redis://127.0.0.1:6379/0"
    NAMESPACE: str = "default"
    MODE: str = "reliable"
    QUEUES: tuple[str, ...] = ("default",)
    CONCURRENCY: int = 4
    PROCESSES: int = 1
    SOCKET_TIMEOUT: float | None = None
    READ_ONLY: bool = False
    METRICS_TOKEN: str | None = None
    QUEUE_NAMESPACES: dict[str, str] = {}
    NAMESPACES: tuple[str, ...] | None = None

    _KEYS = ("URL", "NAMESPACE", "MODE", "QUEUES", "CONCURRENCY", "PROCESSES", "SOCKET_TIMEOUT", "READ_ONLY",
             "METRICS_TOKEN", "QUEUE_NAMESPACES", "NAMESPACES")

    @staticmethod
    def _user() -> dict[str, Any]:
        try:
            from django.conf import settings as dj
        except ImportError:
            return {}
        if not dj.configured:
            return {}
        value = getattr(dj, "QUEUEENGINE", None)
        return value if isinstance(value, dict) else {}

    def __getattribute__(self, name: str) -> Any:
        if name.isupper() and name in Settings._KEYS:
            user = Settings._user()
            if name in user:
                value = user[name]
                return tuple(value) if name == "QUEUES" else value
        return super().__getattribute__(name)

    def as_dict(self) -> dict[str, Any]:
        """Every known key with its effective value."""
        return {key: getattr(self, key) for key in self._KEYS}


settings = Settings()


def get_client(**overrides: Any) -> Client:
    """A new ``queueengine.Client`` for the configured URL and namespace; the caller closes it.

    ``overrides`` go to ``Client.from_url`` (e.g. ``worker_name=...``, ``namespace=...``). Views
    and other short-lived code should use :func:`shared_client` instead.
    """
    from queueengine.client import Client

    kwargs: dict[str, Any] = {"namespace": settings.NAMESPACE}
    if settings.SOCKET_TIMEOUT is not None:
        kwargs["socket_timeout"] = settings.SOCKET_TIMEOUT
    kwargs.update(overrides)
    return Client.from_url(settings.URL, **kwargs)


_shared: dict[tuple[Any, ...], Client] = {}
_shared_lock = threading.Lock()


def shared_client(namespace: str | None = None) -> Client:
    """The process's ``queueengine.Client`` for the configured URL and ``namespace`` (default
    ``QUEUEENGINE["NAMESPACE"]``): made on first use, then reused (one connection pool per
    process, safe to share between threads). Do not close it.

    A client is kept per URL, namespace and socket timeout, so ``override_settings`` gets a
    client of its own; after a fork the child makes new ones.
    """
    key = (os.getpid(), settings.URL, namespace or settings.NAMESPACE, settings.SOCKET_TIMEOUT)
    client = _shared.get(key)
    if client is None:
        with _shared_lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = get_client(namespace=key[2])
    return client


__all__ = ["Settings", "get_client", "settings", "shared_client"]


def namespaces(**client_kwargs: Any) -> Namespaces:
    """The namespaces of ``QUEUEENGINE`` (``queueengine.namespaces.Namespaces``): ``URL``,
    ``NAMESPACE`` (the default), ``QUEUE_NAMESPACES`` (queue -> namespace) and ``NAMESPACES``
    (listed too); one connection, one client per namespace, closed with ``close()``."""
    from queueengine.namespaces import Namespaces
    from queueengine.store.connection import connect

    kwargs: dict[str, Any] = {}
    if settings.SOCKET_TIMEOUT is not None:
        kwargs["socket_timeout"] = settings.SOCKET_TIMEOUT
    conn = connect(settings.URL, **kwargs)
    spaces = Namespaces(conn, dict(settings.QUEUE_NAMESPACES), default=settings.NAMESPACE,
                        extra=tuple(settings.NAMESPACES or ()), **client_kwargs)
    spaces.owns_connection = True
    return spaces
