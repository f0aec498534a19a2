"""What the ``qe_*`` management commands share: the worker's default queues and logging setup.

Logging is configured only when a command runs as its own process (``manage.py qe_worker``),
never when it is called in-process (``call_command``), so a host process keeps its own setup.
"""

from __future__ import annotations

import logging
from typing import Any

from queueengine.conf import Settings, settings

BACKEND_PATH = "queueengine.tasks.QueueEngineBackend"
LOGGERS = ("queueengine", "django.tasks")
"""The loggers a worker's lines come from: the engine's and Django's task signals' (6.x)."""
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def default_queues() -> list[str]:
    """The queues ``qe_worker`` works when given no ``-q``: ``QUEUEENGINE["QUEUES"]`` when set,
    else the ``QUEUES`` of the ``TASKS`` entries that use ``QueueEngineBackend`` (in order, each
    once; a backend with its own ``OPTIONS`` URL or NAMESPACE lives elsewhere and is skipped; an
    empty allow-list counts as ``["default"]``), else ``["default"]``."""
    if "QUEUES" in Settings._user():
        return list(settings.QUEUES)
    try:
        from django.conf import settings as dj
    except ImportError:
        return list(settings.QUEUES)
    tasks = getattr(dj, "TASKS", None) if dj.configured else None
    found: list[str] = []
    if isinstance(tasks, dict):
        for params in tasks.values():
            if not isinstance(params, dict) or params.get("BACKEND") != BACKEND_PATH:
                continue
            options = params.get("OPTIONS") or {}
            if isinstance(options, dict) and (options.get("URL") or options.get("NAMESPACE")):
                continue
            queues = params.get("QUEUES", ["default"])
            for queue in (queues if isinstance(queues, (list, tuple)) and queues else ["default"]):
                if isinstance(queue, str) and queue not in found:
                    found.append(queue)
    return found or list(settings.QUEUES)


class _NotShownElsewhere(logging.Filter):
    """Passes a record only if no handler between its logger and the root would show it (Django's
    ``django`` logger has a console handler of its own when DEBUG is on): each line once."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        root = logging.getLogger()
        while logger is not None and logger is not root:
            for handler in logger.handlers:
                if record.levelno >= handler.level and handler.filter(record):
                    return False
            if not logger.propagate:
                return False
            logger = logger.parent
        return True


def configure_logging(command: Any, verbosity: int) -> None:
    """Set up logging for a command running as its own process: verbosity 0 shows warnings and
    errors only, 1 (the default) info, 2 and more debug. When the project's ``LOGGING`` gave the
    root logger a handler, that handler shows the lines; else one is added that skips lines a
    handler of Django's already shows. Does nothing for an in-process ``call_command``."""
    if not getattr(command, "_called_from_command_line", False):
        return
    level = logging.WARNING if verbosity < 1 else logging.INFO if verbosity == 1 else logging.DEBUG
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(_NotShownElsewhere())
        root.addHandler(handler)
        if root.level > level:
            root.setLevel(level)


__all__ = ["configure_logging", "default_queues"]
