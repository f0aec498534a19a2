"""The dashboard's engine clients: one per (URL, namespace) per process, shared by threads."""

from __future__ import annotations

import threading

from django.http import HttpRequest

from jobadmin import conf
from queueengine import Client

_clients: dict[tuple[str, str], Client] = {}
_lock = threading.Lock()


def client_for(namespace: str | None = None) -> Client:
    """The shared client of ``namespace`` (default: the configured one)."""
    ns = namespace or conf.default_namespace()
    key = (conf.url(), ns)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                from queueengine.conf import get_client

                client = get_client(namespace=ns, worker_name="dashboard")
                _clients[key] = client
    return client


SESSION_KEY = "jobadmin_namespace"


def namespace_of(request: HttpRequest) -> str:
    """The namespace a request asks for (``?ns=``, remembered in the session so every link of
    the dashboard stays in it), if the dashboard may show it; else the configured one."""
    allowed = conf.namespaces()
    wanted = request.GET.get("ns") or request.POST.get("ns") or ""
    session = getattr(request, "session", None)
    if wanted in allowed:
        if session is not None and len(allowed) > 1:
            session[SESSION_KEY] = wanted
        return wanted
    remembered = session.get(SESSION_KEY) if session is not None else None
    return remembered if remembered in allowed else conf.default_namespace()


def client_of(request: HttpRequest) -> Client:
    """The engine client for this request's namespace."""
    return client_for(namespace_of(request))


def close_all() -> None:
    """Close every shared client (tests, shutdown)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
