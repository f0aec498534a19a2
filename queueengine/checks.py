"""System checks for the ``QUEUEENGINE`` setting and the ``OPTIONS`` of ``QueueEngineBackend``
entries of ``TASKS``: wrong values get a clear message and a hint.

They read settings only: no Redis I/O (``manage.py check`` must work with Redis down).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register

from queueengine.store.args import name_problem

KNOWN_KEYS = ("URL", "NAMESPACE", "MODE", "QUEUES", "CONCURRENCY", "PROCESSES", "SOCKET_TIMEOUT", "READ_ONLY",
              "METRICS_TOKEN", "PAGE_SIZE", "PREVIEW_BYTES", "NAMESPACES", "REQUIRE_VIEW_PERMISSION", "ENVIRONMENT",
              "LIVE", "QUEUE_NAMESPACES", "CSP", "ALLOWED_ORIGINS")
"""Every key of ``QUEUEENGINE``: the engine's (``queueengine.conf``) and the dashboard's (``jobadmin.conf``)."""
MODES = ("simple", "recoverable", "reliable")
URL_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")


def _error(msg: str, hint: str, code: int) -> Error:
    return Error(msg, hint=hint, id=f"queueengine.E{code:03d}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


Config = dict[Any, Any]
"""``settings.QUEUEENGINE`` (checked to be a dict first)."""


def _unknown_keys(config: Config) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in config:
        if key not in KNOWN_KEYS and key != "DASHBOARD":  # DASHBOARD: E007 (_dashboard_key)
            close = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(KNOWN_KEYS)}."
            messages.append(Warning(f"QUEUEENGINE has an unknown key {key!r}.", hint=hint, id="queueengine.W001"))
    return messages


def _url(config: Config) -> list[CheckMessage]:
    url = config.get("URL", "redis://127.0.0.1:6379/0")
    if isinstance(url, str) and urlsplit(url).scheme in URL_SCHEMES:
        return []
    return [_error(f"QUEUEENGINE['URL'] is not a Redis URL: {url!r}.",
                   f"Use a URL whose scheme is one of {', '.join(URL_SCHEMES)}, e.g. redis://127.0.0.1:6379/0.", 2)]


def _namespace(config: Config) -> list[CheckMessage]:
    namespace = config.get("NAMESPACE", "default")
    if (problem := name_problem(namespace, "namespace")) is None:
        return []
    return [_error(f"QUEUEENGINE['NAMESPACE'] {problem}: {namespace!r}.",
                   "A namespace follows the naming rule of every name (see README, Names): 1 to 512 characters, "
                   "no braces (it becomes the keys' Redis Cluster hash tag), no control characters.", 3)]


def _mode(config: Config) -> list[CheckMessage]:
    mode = config.get("MODE", "reliable")
    if mode in MODES:
        return []
    hint = f"Use one of {', '.join(MODES)}."
    if mode == "jobasync":
        hint += (" Job::Async's wire mode keeps no namespace: use JobManager().client/worker(\"redis\", "
                 "mode=\"jobasync\", ...) (README: Moving from Job::Async).")
    return [_error(f"QUEUEENGINE['MODE'] is {mode!r}.", hint, 4)]


def _queues(config: Config) -> list[CheckMessage]:
    queues = config.get("QUEUES", ["default"])
    if (isinstance(queues, (list, tuple)) and queues
            and all(name_problem(q, "queue") is None for q in queues)):
        return []
    return [_error(f"QUEUEENGINE['QUEUES'] must be a non-empty list of queue names: {queues!r}.",
                   'For example ["high", "default"] (strict priority order).', 5)]


def _counts(config: Config) -> list[CheckMessage]:
    return [_error(f"QUEUEENGINE[{key!r}] must be a whole number > 0: {config[key]!r}.",
                   "Remove it to use the default.", 6)
            for key in ("CONCURRENCY", "PROCESSES") if key in config and not _positive_int(config[key])]


def _flags(config: Config) -> list[CheckMessage]:
    return [_error(f"QUEUEENGINE[{key!r}] must be True or False: {config[key]!r}.",
                   "Use a boolean (default False).", 8)
            for key in ("READ_ONLY", "REQUIRE_VIEW_PERMISSION") if key in config and not isinstance(config[key], bool)]


def _socket_timeout(config: Config) -> list[CheckMessage]:
    timeout = config.get("SOCKET_TIMEOUT")
    if timeout is None or _positive_number(timeout):
        return []
    return [_error(f"QUEUEENGINE['SOCKET_TIMEOUT'] must be a number of seconds > 0 or None: {timeout!r}.",
                   "Remove it to use redis-py's default.", 10)]


def _dashboard_key(config: Config) -> list[CheckMessage]:
    if "DASHBOARD" not in config:
        return []
    return [_error("QUEUEENGINE['DASHBOARD'] is not read: the dashboard's keys sit at the top level.",
                   'Use for example QUEUEENGINE = {..., "READ_ONLY": True}.', 7)]


def _page_size(config: Config) -> list[CheckMessage]:
    if "PAGE_SIZE" not in config or (_positive_int(config["PAGE_SIZE"]) and config["PAGE_SIZE"] <= 500):
        return []
    return [_error(f"QUEUEENGINE['PAGE_SIZE'] must be a whole number from 1 to 500: {config['PAGE_SIZE']!r}.",
                   "Remove it to use the default (25).", 11)]


def _preview_bytes(config: Config) -> list[CheckMessage]:
    preview = config.get("PREVIEW_BYTES", 200)
    if isinstance(preview, int) and not isinstance(preview, bool) and preview >= 0:
        return []
    return [_error(f"QUEUEENGINE['PREVIEW_BYTES'] must be a whole number >= 0: {preview!r}.",
                   "Remove it to use the default (200).", 12)]


def _namespaces(config: Config) -> list[CheckMessage]:
    spaces = config.get("NAMESPACES")
    if spaces is None or (isinstance(spaces, (list, tuple)) and all(
            name_problem(n, "namespace") is None for n in spaces)):
        return []
    return [_error(f"QUEUEENGINE['NAMESPACES'] must be a list of namespace names: {spaces!r}.",
                   'For example ["default", "billing"].', 13)]


def _environment(config: Config) -> list[CheckMessage]:
    if isinstance(config.get("ENVIRONMENT", ""), str):
        return []
    return [_error(f"QUEUEENGINE['ENVIRONMENT'] must be a string: {config['ENVIRONMENT']!r}.",
                   'For example "production".', 14)]


def _metrics_token(config: Config) -> list[CheckMessage]:
    token = config.get("METRICS_TOKEN")
    if token is None or (isinstance(token, str) and len(token) >= 16):
        return []
    return [_error("QUEUEENGINE['METRICS_TOKEN'] must be a string of at least 16 characters.",
                   "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe())'", 9)]


def _csp(config: Config) -> list[CheckMessage]:
    csp = config.get("CSP")
    if csp is None or csp is False or (isinstance(csp, str) and csp.strip()):
        return []
    return [_error(f"QUEUEENGINE['CSP'] must be a policy string or False: {csp!r}.",
                   "Remove it for the dashboard's own policy (README \"Web hardening\").", 30)]


def _allowed_origins(config: Config) -> list[CheckMessage]:
    origins = config.get("ALLOWED_ORIGINS")
    if origins is None or (isinstance(origins, (list, tuple)) and all(
            isinstance(o, str) and re.fullmatch(r"https?://[^/\s]+/?", o) for o in origins)):
        return []
    return [_error(f"QUEUEENGINE['ALLOWED_ORIGINS'] must be a list of origins: {origins!r}.",
                   'For example ["https://ops.example.com"] (scheme://host[:port], no path).', 31)]


SETTING_CHECKS: tuple[Callable[[Config], list[CheckMessage]], ...] = (
    _unknown_keys, _url, _namespace, _mode, _queues, _counts, _flags, _socket_timeout, _dashboard_key,
    _page_size, _preview_bytes, _namespaces, _environment, _metrics_token, _csp, _allowed_origins,
)
"""The checks of ``QUEUEENGINE``, in the order their messages are reported."""


@register(Tags.compatibility)
def check_queueengine_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``settings.QUEUEENGINE``."""
    if not hasattr(settings, "QUEUEENGINE"):
        return [Info("QUEUEENGINE is not set: the engine uses its defaults, Redis at redis://127.0.0.1:6379/0 "
                     "and namespace 'default'.",
                     hint='Set QUEUEENGINE = {"URL": "redis://host:6379/0", "NAMESPACE": "mysite"} to choose.',
                     id="queueengine.I001")]
    config = getattr(settings, "QUEUEENGINE", {})
    if not isinstance(config, dict):
        return [_error(f"QUEUEENGINE must be a dict, not {type(config).__name__}.",
                       'Use QUEUEENGINE = {"URL": "redis://127.0.0.1:6379/0", "NAMESPACE": "default"}.', 1)]
    messages: list[CheckMessage] = []
    for check in SETTING_CHECKS:
        messages += check(config)
    return messages


BACKEND_PATH = "queueengine.tasks.QueueEngineBackend"
OPTION_KEYS = ("URL", "NAMESPACE", "TAGS", "RETRIES", "TRACK")


def check_backend_options(alias: str, options: Any) -> list[CheckMessage]:
    """Messages for a ``QueueEngineBackend``'s ``TASKS[alias]["OPTIONS"]`` (settings only)."""
    where = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(options, dict):
        return [_error(f"{where} must be a dict, not {type(options).__name__}.",
                       'For example {"TAGS": ["django"], "RETRIES": 5}.', 20)]
    messages: list[CheckMessage] = []
    for key in options:
        if key not in OPTION_KEYS:
            close = difflib.get_close_matches(str(key), OPTION_KEYS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Known options: {', '.join(OPTION_KEYS)}."
            messages.append(Warning(f"{where} has an unknown key {key!r}.", hint=hint, id="queueengine.W020"))
    if "URL" in options and (not isinstance(options["URL"], str)
                             or urlsplit(options["URL"]).scheme not in URL_SCHEMES):
        messages.append(_error(f"{where}['URL'] is not a Redis URL: {options['URL']!r}.",
                               "Remove it to use QUEUEENGINE['URL'], or give redis://host:port/db.", 21))
    if "NAMESPACE" in options and (problem := name_problem(options["NAMESPACE"], "namespace")) is not None:
        messages.append(_error(f"{where}['NAMESPACE'] {problem}: {options['NAMESPACE']!r}.",
                               "Remove it to use QUEUEENGINE['NAMESPACE'].", 22))
    tags = options.get("TAGS", [])
    if not isinstance(tags, (list, tuple)) or not all(name_problem(t, "tag") is None for t in tags):
        messages.append(_error(f"{where}['TAGS'] must be a list of tag names (README: Names): {tags!r}.",
                               'For example ["django"].', 23))
    retries = options.get("RETRIES", 5)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        messages.append(_error(f"{where}['RETRIES'] must be a whole number >= 0: {retries!r}.",
                               "It is how many lost leases a task survives (default 5).", 24))
    if not isinstance(options.get("TRACK", False), bool):
        messages.append(_error(f"{where}['TRACK'] must be True or False: {options['TRACK']!r}.",
                               "True tracks every task of this backend in the dashboard.", 25))
    return messages


FRAMEWORK_CHECKS = (("django.tasks.checks", "check_tasks"), ("django_tasks.checks", "check_tasks"))
"""The task framework's own check (Django 6, the backport): it runs every backend's ``check()``."""


def register_framework_checks() -> None:
    """Import the task framework's checks module, which registers its ``check_tasks``: Django 6
    registers it only when ``django.tasks`` is imported, which nothing does before checks run in
    a fresh project. The backport's module is imported only when Django has no ``django.tasks``."""
    from importlib import import_module

    for module in ("django.tasks.checks", "django_tasks.checks"):
        try:
            import_module(module)
        except ImportError:
            continue
        return


def _framework_checks_backends() -> bool:
    """True when the task framework's ``check_tasks`` is registered (it then runs our backends'
    ``check()``, so ours must not repeat the messages)."""
    from django.core.checks.registry import registry

    return any((getattr(check, "__module__", ""), getattr(check, "__name__", "")) in FRAMEWORK_CHECKS
               for check in registry.registered_checks)


@register(Tags.compatibility)
def check_task_backends(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check every ``QueueEngineBackend`` of ``TASKS`` when the task framework does not."""
    if _framework_checks_backends():
        return []
    tasks = getattr(settings, "TASKS", {})
    if not isinstance(tasks, dict):
        return []
    messages: list[CheckMessage] = []
    for alias, params in tasks.items():
        if isinstance(params, dict) and params.get("BACKEND") == BACKEND_PATH:
            messages += check_backend_options(str(alias), params.get("OPTIONS", {}))
    return messages
