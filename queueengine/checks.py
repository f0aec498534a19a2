"""System checks for the ``QUEUEENGINE`` setting: wrong values get a clear message and a hint.

They read settings only: no Redis I/O (``manage.py check`` must work with Redis down).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

KNOWN_KEYS = ("URL", "NAMESPACE", "MODE", "QUEUES", "CONCURRENCY", "PROCESSES", "DASHBOARD", "METRICS_TOKEN",
              "READ_ONLY", "HEARTBEAT", "SOCKET_TIMEOUT")
MODES = ("simple", "recoverable", "reliable")
URL_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _error(msg: str, hint: str, code: int) -> Error:
    return Error(msg, hint=hint, id=f"queueengine.E{code:03d}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register(Tags.compatibility)
def check_queueengine_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``settings.QUEUEENGINE``."""
    config = getattr(settings, "QUEUEENGINE", {})
    if not isinstance(config, dict):
        return [_error(f"QUEUEENGINE must be a dict, not {type(config).__name__}.",
                       'Use QUEUEENGINE = {"URL": "redis://127.0.0.1:6379/0", "NAMESPACE": "default"}.', 1)]
    messages: list[CheckMessage] = []
    for key in config:
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(KNOWN_KEYS)}."
            messages.append(Warning(f"QUEUEENGINE has an unknown key {key!r}.", hint=hint, id="queueengine.W001"))
    url = config.get("URL", "redis://127.0.0.1:6379/0")
    if not isinstance(url, str) or urlsplit(url).scheme not in URL_SCHEMES:
        messages.append(_error(
            f"QUEUEENGINE['URL'] is not a Redis URL: {url!r}.",
            f"Use a URL whose scheme is one of {', '.join(URL_SCHEMES)}, e.g. redis://127.0.0.1:6379/0.", 2))
    namespace = config.get("NAMESPACE", "default")
    if not isinstance(namespace, str) or not NAMESPACE_PATTERN.match(namespace):
        messages.append(_error(
            f"QUEUEENGINE['NAMESPACE'] must be a non-empty name of letters, digits, '.', '_' or '-': {namespace!r}.",
            "The namespace becomes a Redis Cluster hash tag, so braces, colons and spaces are not allowed.", 3))
    mode = config.get("MODE", "reliable")
    if mode not in MODES:
        messages.append(_error(f"QUEUEENGINE['MODE'] is {mode!r}.", f"Use one of {', '.join(MODES)}.", 4))
    queues = config.get("QUEUES", ["default"])
    if (not isinstance(queues, (list, tuple)) or not queues
            or not all(isinstance(q, str) and q and q.strip() == q for q in queues)):
        messages.append(_error(f"QUEUEENGINE['QUEUES'] must be a non-empty list of queue names: {queues!r}.",
                               'For example ["high", "default"] (strict priority order).', 5))
    for key in ("CONCURRENCY", "PROCESSES", "HEARTBEAT"):
        if key in config and not _positive_int(config[key]):
            messages.append(_error(f"QUEUEENGINE[{key!r}] must be a whole number > 0: {config[key]!r}.",
                                   "Remove it to use the default.", 6))
    dashboard = config.get("DASHBOARD", {})
    if not isinstance(dashboard, dict):
        messages.append(_error(f"QUEUEENGINE['DASHBOARD'] must be a dict: {dashboard!r}.",
                               'For example {"READ_ONLY": True}.', 7))
    elif "READ_ONLY" in dashboard and not isinstance(dashboard["READ_ONLY"], bool):
        messages.append(_error(f"QUEUEENGINE['DASHBOARD']['READ_ONLY'] must be True or False: "
                               f"{dashboard['READ_ONLY']!r}.", "Use a boolean.", 8))
    token = config.get("METRICS_TOKEN")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        messages.append(_error("QUEUEENGINE['METRICS_TOKEN'] must be a string of at least 16 characters.",
                               "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe())'", 9))
    return messages
