"""Argument checks shared by the Python API: fail early with InvalidArgument naming the argument."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import orjson

from queueengine import _jsondata
from queueengine.exceptions import InvalidArgument

PRIORITY_LIMIT = 4095
"""|priority| <= 4095: the work score (-priority * 2^40 + sequence) stays exact in a double."""


_BAD_NAME = re.compile(r"[{}\x00-\x1f\x7f]")
"""What a name may not hold: braces (the key's hash tag) and control characters (as lua/base.lua)."""


def name(value: Any, arg: str) -> str:
    """A non-empty name without braces or control characters (queues, jids, tags, groups)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{arg} must be a non-empty string, got {value!r}")
    if len(value) > 512 or _BAD_NAME.search(value):
        raise InvalidArgument(f"{arg} must be at most 512 characters without braces or control characters, got {value!r}")
    return value


def names(values: Any, arg: str) -> list[str]:
    """A sequence of names (a lone string is refused: it is almost always a mistake)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{arg} must be a sequence of strings, got {values!r}")
    out: list[str] = []
    for v in values:
        n = name(v, arg)
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
    (``data.items[2]``) when JSON cannot carry it faithfully (queueengine/_jsondata.py)."""
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
