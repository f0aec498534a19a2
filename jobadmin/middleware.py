"""Web hardening for the dashboard: a Content-Security-Policy and a clear 503 while Redis is away.

Add both to ``MIDDLEWARE`` (after ``SecurityMiddleware``)::

    "jobadmin.middleware.ContentSecurityPolicyMiddleware",
    "jobadmin.middleware.RedisUnavailableMiddleware",

The policy covers the dashboard's own URLs (where ``jobadmin.urls`` is mounted) and nothing
else: the Django admin and the project's other pages keep whatever policy the project gives
them. It allows scripts, styles, images and websockets from the dashboard's own origin only,
no inline script or style (the dashboard has none: behaviour lives in ``dashboard.js``, looks
in ``dashboard.css``, and htmx's own indicator style is switched off by a meta tag).
``QUEUEENGINE["CSP"]`` replaces the policy with the project's own string, or turns it off with
``False``; a response that already carries the header keeps it. With DEBUG on, Django's
technical 404/500 pages (inline styles) go out without it.

A dashboard request that fails because Redis does not answer gets a 503: an HTML page naming
the Redis URL (password hidden) and what to do, or JSON for the API and the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from jobadmin import conf

log = logging.getLogger(__name__)

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
          "connect-src 'self' {ws}; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
"""The dashboard's policy; ``{ws}`` is the page's own websocket origin (``ws(s)://<host>``)."""

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
"""What Redis being away looks like (refused, reset, timed out, still loading its data)."""


@lru_cache(maxsize=1)
def _mount() -> str:
    """The URL prefix under which jobadmin.urls is mounted (``/jobs/`` in this project)."""
    try:
        return reverse("jobadmin:overview")
    except NoReverseMatch:
        return "/jobs/"


def is_dashboard(request: HttpRequest) -> bool:
    """True for a request to one of the dashboard's URLs."""
    return request.path.startswith(_mount())


def _is_machine_read(request: HttpRequest) -> bool:
    """The JSON API and the Prometheus metrics answer machines: errors go out as JSON."""
    tail = request.path[len(_mount()):]
    return tail.startswith(("api/", "metrics"))


def policy_for(request: HttpRequest) -> str | None:
    """The Content-Security-Policy of a dashboard response (None: send none)."""
    custom = conf._user().get("CSP")
    if custom is False:
        return None
    if isinstance(custom, str) and custom.strip():
        return custom.strip()
    ws = ("wss://" if request.is_secure() else "ws://") + request.get_host()
    return POLICY.format(ws=ws)


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to show on a page)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


class ContentSecurityPolicyMiddleware:
    """Adds the dashboard's Content-Security-Policy to every response of its URLs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code in (404, 500) and "text/html" in response.get("Content-Type", ""):
            return response  # Django's technical error pages (DEBUG only) have inline styles and scripts
        if is_dashboard(request) and "Content-Security-Policy" not in response:
            policy = policy_for(request)
            if policy:
                response["Content-Security-Policy"] = policy
        return response


class RedisUnavailableMiddleware:
    """Turns a dashboard request that failed because Redis is away into a 503 that says so."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A 503 page (or JSON) for Redis errors on dashboard URLs; anything else goes on."""
        if not isinstance(exception, REDIS_DOWN) or not is_dashboard(request):
            return None
        url = redacted_url(conf.url())
        error = f"{type(exception).__name__}: {exception}"
        log.warning("dashboard: Redis at %s is unreachable (%s): %s answered 503", url, error, request.path)
        if _is_machine_read(request):
            response: HttpResponse = JsonResponse(
                {"error": "redis unavailable", "redis_url": url, "detail": error,
                 "hint": "start Redis there, or set REDIS_URL (QUEUEENGINE['URL']) to a reachable server"},
                status=503)
        else:
            response = TemplateResponse(request, "jobadmin/redis_down.html",
                                        {"redis_url": url, "error": error, "redis_down": True}, status=503)
            response.render()
        response["Retry-After"] = "5"
        response["Cache-Control"] = "no-store"
        return response
