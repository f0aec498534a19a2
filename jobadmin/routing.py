"""Websocket routes of the dashboard: ``<mount>/ws/live/`` (any mount point of jobadmin.urls),
and the exact Origin check that guards them.

Channels' ``AllowedHostsOriginValidator`` compares only the Origin's host with ALLOWED_HOSTS, so
a page served by another port of the same host (another app, a dev server) could open the live
socket with the operator's cookies. ``SameOriginValidator`` accepts a handshake only when its
Origin is the socket's own origin, scheme, host and port alike (``http://`` for ``ws://``,
``https://`` for ``wss://``, the Host header, default ports filled in), that host is one of
ALLOWED_HOSTS, or the Origin is listed in ``QUEUEENGINE["ALLOWED_ORIGINS"]`` (e.g.
``["https://ops.example.com"]`` behind a TLS-terminating proxy). Anything else, and a handshake
without an Origin, is refused with HTTP 403.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope, WebSocketScope
from django.urls import URLPattern, re_path

from jobadmin.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern] = [
    # Channels' URLRouter takes ASGI apps in Django's re_path; django-stubs types its views as
    # HTTP views only
    re_path(r"^(?:.*/)?ws/live/$", LiveConsumer.as_asgi(), name="jobadmin_live"),  # type: ignore[arg-type]
]

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as (scheme, host, port), default ports filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _headers(scope: WebSocketScope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


def own_origin(scope: WebSocketScope) -> tuple[str, str, int] | None:
    """The origin a browser sends for a page of this socket's own server (from its Host header)."""
    host = _headers(scope).get(b"host", b"").decode("latin-1")
    if not host:
        return None
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return origin_key(f"{scheme}://{host}")


def _host_allowed(host: str) -> bool:
    from django.conf import settings
    from django.http.request import validate_host

    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return validate_host(host, allowed)


def origin_allowed(scope: WebSocketScope) -> bool:
    """True when the handshake's Origin is the socket's own origin (on an allowed host) or an
    origin the settings list."""
    from jobadmin import conf

    raw = _headers(scope).get(b"origin")
    wanted = origin_key(raw.decode("latin-1")) if raw else None
    if wanted is None:
        return False
    extra = {origin_key(str(o)) for o in conf._user().get("ALLOWED_ORIGINS") or ()}
    if wanted in extra:
        return True
    own = own_origin(scope)
    host = wanted[1] if ":" not in wanted[1] else f"[{wanted[1]}]"
    return own is not None and wanted == own and _host_allowed(host)


class SameOriginValidator:
    """ASGI middleware: websocket handshakes from any other origin than the socket's own are refused."""

    def __init__(self, application: ASGI3Application) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            from channels.security.websocket import WebsocketDenier

            return await WebsocketDenier.as_asgi()(scope, receive, send)
        return await self.application(scope, receive, send)
