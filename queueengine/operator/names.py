"""Name and value checks for operator forms: the engine's own rule, public.

The rule (what a queue, jid, tag, failure group, worker, throttle or config option may hold) is
the docstring of ``queueengine/store/keys.py``; these functions apply it exactly as every engine
command does, so a dashboard form refuses what the engine would refuse, with the same message,
before anything is sent.
"""

from __future__ import annotations

from typing import Any

from queueengine.store import args as _args


def check_name(value: Any, what: str, existing: bool = False) -> str:
    """``value`` when it is a legal name for ``what`` (``"queue"``, ``"jid"``, ``"tag"``,
    ``"group"``, ``"option"``, ...), else ``InvalidArgument`` naming ``what``.

    ``existing=True``: a name that may already be in Redis (written before the rule, or by
    another client) and is only read, moved out of or deleted: any non-empty string but the
    reserved suffixes (``:history`` for a jid, ...)."""
    return _args.existing_name(value, what) if existing else _args.name(value, what)


def check_names(values: Any, what: str, existing: bool = False) -> list[str]:
    """Distinct names in the order given, each checked as ``check_name`` does; a lone string
    (almost always a mistake) is refused too."""
    return _args.names(values, what, _args.existing_name if existing else _args.name)


def check_priority(value: Any) -> int:
    """A priority (an int from -4095 to 4095; higher pops first), else ``InvalidArgument``
    naming ``priority``."""
    return _args.priority(value)


__all__ = ["check_name", "check_names", "check_priority"]
