"""System checks of the dashboard's prerequisites: each missing piece is named, with its fix.

They read settings (and resolve ``LOGIN_URL``) only: no Redis I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

HTMX_MIDDLEWARE = "django_htmx.middleware.HtmxMiddleware"
DEFAULT_LOGIN_URL = "/accounts/login/"


def _live() -> bool:
    config = getattr(settings, "QUEUEENGINE", {})
    return not isinstance(config, dict) or config.get("LIVE", True) is not False


@register(Tags.compatibility)
def check_htmx(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The dashboard's templates use django_htmx's tags and its views ``request.htmx``."""
    messages: list[CheckMessage] = []
    if "django_htmx" not in settings.INSTALLED_APPS:
        messages.append(Error(
            "jobadmin needs 'django_htmx' in INSTALLED_APPS: without it every dashboard page fails "
            "('django_htmx' is not a registered tag library).",
            hint='Add "django_htmx" to INSTALLED_APPS (pip install "queueengine[dashboard]" installs it).',
            id="jobadmin.E001"))
    if HTMX_MIDDLEWARE not in getattr(settings, "MIDDLEWARE", []):
        messages.append(Error(
            f"jobadmin needs {HTMX_MIDDLEWARE!r} in MIDDLEWARE: the dashboard's views read request.htmx.",
            hint=f'Add MIDDLEWARE += ["{HTMX_MIDDLEWARE}"] (after the session and auth middleware).',
            id="jobadmin.E002"))
    return messages


@register(Tags.compatibility)
def check_live(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Live updates (``QUEUEENGINE["LIVE"]``, on by default) need Channels, an ASGI application
    and a channel layer."""
    if not _live():
        return []
    off = 'Or set QUEUEENGINE["LIVE"] = False to serve static pages.'
    messages: list[CheckMessage] = []
    if find_spec("channels") is None:
        messages.append(Warning(
            "QUEUEENGINE['LIVE'] is on but the 'channels' package is not installed: the dashboard cannot "
            "push live updates.", hint=f'pip install "queueengine[dashboard]". {off}', id="jobadmin.W001"))
    if not getattr(settings, "ASGI_APPLICATION", None):
        messages.append(Warning(
            "QUEUEENGINE['LIVE'] is on but ASGI_APPLICATION is not set: the live updates' websocket is "
            "served by the ASGI application of the README's asgi.py.",
            hint=f'Set ASGI_APPLICATION = "mysite.asgi.application" and serve it with daphne. {off}',
            id="jobadmin.W002"))
    if not getattr(settings, "CHANNEL_LAYERS", None):
        messages.append(Warning(
            "QUEUEENGINE['LIVE'] is on but CHANNEL_LAYERS is not set: live updates have no channel layer "
            "to travel on.",
            hint='Set CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", '
                 f'"CONFIG": {{"hosts": [QUEUEENGINE["URL"]]}}}}. {off}', id="jobadmin.W003"))
    return messages


@register(Tags.urls)
def check_login_url(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Anonymous visitors of the dashboard are sent to ``LOGIN_URL``: it must be a page."""
    from django.shortcuts import resolve_url
    from django.urls import NoReverseMatch, Resolver404, resolve

    login = getattr(settings, "LOGIN_URL", DEFAULT_LOGIN_URL)
    try:
        path = str(resolve_url(login))
    except NoReverseMatch:
        path = None
    if path is not None and "://" in path:
        return []  # another site logs users in
    try:
        if path is not None:
            resolve(path.split("?", 1)[0])
            return []
    except Resolver404:
        pass
    except Exception:  # a broken URLconf: Django's own URL checks report it
        return []
    return [Warning(
        f"LOGIN_URL ({login!r}) is not a page of this site: anonymous visitors of the dashboard are sent "
        "there and get a 404.",
        hint='Use the admin\'s login page: LOGIN_URL = "admin:login" (or point it at your own).',
        id="jobadmin.W004")]
