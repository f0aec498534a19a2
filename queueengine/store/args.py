"""Argument checks shared by the Python API: fail early with InvalidArgument naming the argument."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from queueengine.exceptions import InvalidArgument
from queueengine.store import jsondata as _jsondata

PRIORITY_LIMIT = 4095
"""|priority| <= 4095: the work score (-priority * 2^40 + sequence) stays exact in a double."""


NAME_MAX = 512
"""The longest name, in characters (Unicode code points)."""

_BAD_CHAR = re.compile("[{}\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""Characters no name may hold: braces (the namespace's hash tag), C0 and C1 control
characters, DEL, the line and paragraph separators, and lone surrogates (not encodable)."""

_EDGE_SPACE = frozenset(" \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                        "\u202f\u205f\u3000")
"""The space separators (Unicode category Zs): no name begins or ends with one."""

JID_ARGS = frozenset({"jid", "jids", "depends", "dependency"})
"""Arguments that name jobs: a jid may not end in a sub-key of its record (``j:<jid>:history``)."""
JID_SUFFIXES = (":history", ":dependencies", ":dependents")
THROTTLE_ARGS = frozenset({"throttle", "throttles"})
"""Arguments that name throttles: a throttle may not end in a sub-key (``th:<name>:locks``)."""
THROTTLE_SUFFIXES = (":locks", ":pending")


def name_problem(value: Any, arg: str) -> str | None:
    """Why ``value`` is not a legal name for the argument ``arg`` (None when it is); the rule
    of the keys.py docstring, identical to ``QE.name`` in lua/base.lua."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters"
    bad = _BAD_CHAR.search(value)
    if bad:
        return f"must not hold {bad.group()!r} (braces and control characters are not allowed)"
    if value[0] in _EDGE_SPACE or value[-1] in _EDGE_SPACE:
        return "must not begin or end with a space"
    suffixes = JID_SUFFIXES if arg in JID_ARGS else THROTTLE_SUFFIXES if arg in THROTTLE_ARGS else ()
    if suffixes and value.endswith(suffixes):
        return f"must not end in {value[value.rindex(':'):]!r} (the name of one of its keys)"
    return None


def name(value: Any, arg: str) -> str:
    """A legal name (queue, jid, tag, group, worker, throttle, namespace; see keys.py), else
    InvalidArgument naming ``arg``."""
    problem = name_problem(value, arg)
    if problem is not None:
        raise InvalidArgument(f"{arg} {problem}, got {value!r}")
    return value  # type: ignore[no-any-return]


def existing_name(value: Any, arg: str) -> str:
    """A name that may already be in Redis (written before the rule, or by another client), for
    calls that only read or delete it: any non-empty string but the reserved suffixes (as
    ``QE.existing_name``)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{arg} must be a non-empty string, got {value!r}")
    suffixes = JID_SUFFIXES if arg in JID_ARGS else THROTTLE_SUFFIXES if arg in THROTTLE_ARGS else ()
    if suffixes and value.endswith(suffixes):
        raise InvalidArgument(f"{arg} must not end in {value[value.rindex(':'):]!r}, got {value!r}")
    return value


def names(values: Any, arg: str, check: Callable[[Any, str], str] = name) -> list[str]:
    """A sequence of distinct names, each passing ``check`` (a lone string is refused: it is
    almost always a mistake)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{arg} must be a sequence of strings, got {values!r}")
    out: list[str] = []
    for v in values:
        n = check(v, arg)
        if n not in out:
            out.append(n)
    return out


def number(value: Any, arg: str, minimum: float | None = 0.0) -> float:
    """A finite real number >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{arg} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{arg} must be >= {minimum:g}, got {value!r}")
    return float(value)


def integer(value: Any, arg: str, minimum: int | None = 0, maximum: int | None = None) -> int:
    """A whole number in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{arg} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{arg} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidArgument(f"{arg} must be <= {maximum}, got {value!r}")
    return value


def priority(value: Any) -> int:
    """A priority in [-4095, 4095]; higher pops first."""
    return integer(value, "priority", -PRIORITY_LIMIT, PRIORITY_LIMIT)


def dumps(value: Any, arg: str) -> str:
    """JSON text of value (orjson); UnsupportedData (an InvalidArgument) naming the path
    (``data.items[2]``) when JSON cannot carry it faithfully (queueengine/store/jsondata.py)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError as exc:
        raise _jsondata.refused(value, arg, exc) from None
    if "null" in text:  # None, or a NaN/infinity that orjson wrote as null (str `in` is cheap)
        _jsondata.check_nulls(value, arg)
    return text


def klass_path(klass: Any) -> str:
    """The dotted path of a job class or function (a str is taken as is)."""
    if isinstance(klass, str):
        if not klass:
            raise InvalidArgument("klass must be a non-empty string")
        return klass
    module = getattr(klass, "__module__", None)
    qual = getattr(klass, "__qualname__", None)
    if not module or not qual:
        raise InvalidArgument(f"klass must be a dotted path, a class or a function, got {klass!r}")
    return f"{module}.{qual}"


def backoff(value: Any) -> str:
    """JSON of a backoff policy: a dict with base (s), factor (>= 1), max (s; 0 = no cap)."""
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise InvalidArgument(f"backoff must be a dict with base, factor, max, got {value!r}")
    unknown = set(value) - {"base", "factor", "max"}
    if unknown:
        raise InvalidArgument(f"backoff has unknown keys {sorted(unknown)}")
    base = number(value.get("base", 0), "backoff.base")
    factor = number(value.get("factor", 2), "backoff.factor", 1.0)
    cap = number(value.get("max", 0), "backoff.max")
    return orjson.dumps({"base": base, "factor": factor, "max": cap}).decode()


def loads(raw: Any) -> Any:
    """Decode a JSON reply (bytes or str)."""
    return orjson.loads(raw)


def text(raw: Any) -> str:
    """A reply as str."""
    if isinstance(raw, bytes):
        return raw.decode()
    return str(raw)
