"""Job data as JSON, refused when JSON cannot carry it faithfully.

Accepted: dicts with str keys, lists and tuples (read back as lists), str, bool, None, ints in
[-2**63, 2**64) and finite floats, plus what orjson writes natively (datetime/date/time as ISO
text, UUID as text, enums as their value, dataclasses as objects). Refused with
``UnsupportedData`` (an ``InvalidArgument`` and a ``TypeError``) naming the path: NaN and
±infinity (orjson would silently write ``null``), integers beyond 64 bits, non-str keys, sets,
bytes, other objects, text with lone surrogates, nesting deeper than 255 levels.

Cost on the put path: one ``orjson.dumps``; only output containing ``null`` (None, or a NaN
or infinity orjson turned into null) is walked again to tell them apart.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import orjson

from queueengine.exceptions import UnsupportedData

MAX_DEPTH = 255
"""Deepest nesting orjson writes (and the walk follows)."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACCEPTED = ("JSON carries dicts with str keys, lists, str, int within 64 bits, finite float, "
             "bool and None")


def step(path: str, key: str) -> str:
    """``path.key``, or ``path["odd key"]`` when the key is not a plain identifier."""
    return f"{path}.{key}" if _KEY.fullmatch(key) else f"{path}[{orjson.dumps(key).decode()}]"


def _text_problem(text: str, path: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{path} is text with a lone surrogate, which is not valid UTF-8"
    return None


def _mapping_problem(value: Any, path: str, depth: int) -> str | None:
    for key, item in value.items():
        if not isinstance(key, str):
            return (f"{path} has the key {key!r} ({type(key).__name__}): JSON object keys must be "
                    f"strings")
        found = _text_problem(key, path) or problem(item, step(path, key), depth + 1)
        if found:
            return found
    return None


def _sequence_problem(value: list[Any] | tuple[Any, ...], path: str, depth: int) -> str | None:
    for i, item in enumerate(value):
        found = problem(item, f"{path}[{i}]", depth + 1)
        if found:
            return found
    return None


def problem(value: Any, path: str, depth: int = 0) -> str | None:
    """What JSON cannot carry in ``value`` (the first thing found, with its path), or None."""
    if value is None or value is True or value is False:
        return None
    if depth > MAX_DEPTH:
        where = path if len(path) <= 80 else path[:80] + "..."
        return f"{where} is nested more than {MAX_DEPTH} levels deep (or contains itself)"
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, float):
        return None if math.isfinite(value) else (
            f"{path} is {value!r}: JSON has no NaN or infinity (use None or a string)")
    if isinstance(value, int):
        return None if -(2**63) <= value < 2**64 else f"{path} is an integer beyond 64 bits"
    if isinstance(value, dict):
        return _mapping_problem(value, path, depth)
    if isinstance(value, (list, tuple)):
        return _sequence_problem(value, path, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _mapping_problem(fields, path, depth)
    if isinstance(value, orjson.Fragment):
        return None  # JSON already (checked when it was made)
    try:
        orjson.dumps(value)
    except TypeError:
        return f"{path} is of type {type(value).__name__}, which JSON cannot carry ({_ACCEPTED})"
    return None


def refused(value: Any, arg: str, exc: Exception | None = None) -> UnsupportedData:
    """The error for ``value`` that orjson refused (or wrote as null): names the first bad path."""
    found = problem(value, arg)
    if found is None:
        found = f"{arg} cannot be written as JSON: {exc}"
    return UnsupportedData(found)


_PLAIN = (str, int, bool, type(None))


def _nonfinite(value: Any) -> bool:
    """True when ``value`` (which orjson wrote) holds a NaN or an infinity anywhere: a fast scan
    of the plain JSON types; anything else gets the full walk."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return not math.isfinite(value)
    elif kind in _PLAIN or kind is orjson.Fragment:  # a Fragment is JSON already (see problem)
        return False
    else:
        return problem(value, "") is not None
    for item in items:
        kind = type(item)
        if kind is float:
            if item - item != 0.0:  # NaN - NaN and inf - inf are NaN
                return True
        elif kind is not str and kind is not int and item is not None and kind is not bool and _nonfinite(item):
            return True
    return False


def check_nulls(value: Any, arg: str) -> None:
    """After orjson wrote ``null``: UnsupportedData if it stands for a NaN or an infinity."""
    if _nonfinite(value):
        raise UnsupportedData(problem(value, arg) or f"{arg} holds a NaN or an infinity")


def encode(value: Any, arg: str) -> bytes:
    """JSON bytes of ``value``; UnsupportedData naming the path when JSON cannot carry it."""
    if value is None:  # the common result of a handler: no walk for its null
        return b"null"
    try:
        out = orjson.dumps(value)
    except TypeError as exc:
        raise refused(value, arg, exc) from None
    if out.find(b"null") != -1:  # None, or a NaN/infinity orjson wrote as null (find: faster than in)
        check_nulls(value, arg)
    return out


__all__ = ["MAX_DEPTH", "check_nulls", "encode", "problem", "refused", "step"]
