"""The engine's known config options: meaning, type, default and range of each.

``client.config[name] = value`` checks a known option here before anything reaches Redis, and
``lua/config.lua`` checks it again with the same table (``QE.config_spec``), so a raw call is
refused the same way; both raise ``InvalidArgument`` and change nothing. Per-queue options are
``<queue>-heartbeat``, ``<queue>-max-concurrency`` and ``<queue>-max-queue-length``. Any other
name is free-form (applications keep their own settings there): a str, an int or a finite float.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from queueengine.exceptions import InvalidArgument

Kind = Literal["integer", "number", "text"]

DECADE = 315_360_000
"""Ten years: the longest duration (recoverable mode leases its claims for exactly this long)."""
COUNT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Option:
    """One known option. ``name`` is the option itself or, for a per-queue option, its form
    (``<queue>-heartbeat``); ``default`` is the stored text (None: falls back to another option)."""

    name: str
    kind: Kind
    default: str | None
    meaning: str
    minimum: float = 0
    maximum: float = COUNT
    positive: bool = False
    """True: the value must be > minimum (a lease of 0 s would stall every job at once)."""

    @property
    def type_name(self) -> str:
        """``integer``, ``number`` or ``text``."""
        return self.kind

    @property
    def range_text(self) -> str:
        """The accepted range, as an operator reads it (``> 0 and <= 31536000``)."""
        if self.kind == "text":
            return f"1 to {int(self.maximum)} bytes"
        low = f"> {int(self.minimum)}" if self.positive else f">= {int(self.minimum)}"
        return f"{low} and <= {int(self.maximum)}"


def _opt(name: str, kind: Kind, default: str | None, meaning: str, **bounds: Any) -> Option:
    return Option(name, kind, default, meaning, **bounds)


KNOWN: dict[str, Option] = {o.name: o for o in (
    _opt("application", "text", "queueengine", "The application's name (Qless showed it as the web UI title); "
         "informational", maximum=200),
    _opt("heartbeat", "number", "60", "Lease length in seconds: a job not heartbeaten or finished "
         "within it is stalled and handed out again", positive=True, maximum=DECADE),
    _opt("grace-period", "number", "10", "Seconds an expired lease's worker is given (after a "
         "lock_lost notice) before the job goes to another worker; 0 = none", maximum=DECADE),
    _opt("jobs-history", "integer", "604800", "Seconds completed jobs are kept; 0 = deleted at once",
         maximum=DECADE),
    _opt("jobs-history-count", "integer", "50000", "Most completed jobs kept (oldest deleted first)"),
    _opt("max-job-history", "integer", "100", "Most history entries per job (the first is always "
         "kept); 0 = no cap"),
    _opt("max-worker-age", "integer", "86400", "Seconds after which an unseen worker is forgotten; "
         "0 = never", maximum=DECADE),
    _opt("stats-history", "integer", "30", "Days a day's queue stats are kept; 0 = forever",
         maximum=3650),
    _opt("histogram-history", "integer", "7", "Days of histograms kept (declared by Qless, kept for "
         "compatibility)", maximum=3650),
    _opt("failed-history", "integer", "0", "Seconds failed jobs are kept; 0 = forever", maximum=DECADE),
    _opt("failed-history-count", "integer", "0", "Most failed jobs kept; 0 = no limit"),
    _opt("housekeeping-batch", "integer", "100", "Most items one housekeeping step handles per call",
         minimum=1, maximum=100_000),
    _opt("max-payload-bytes", "integer", "0", "Largest job data (bytes of JSON) put accepts; "
         "0 = no limit", maximum=536_870_912),
    _opt("max-queue-length", "integer", "0", "Most jobs one queue holds (put raises QueueFull); "
         "0 = no limit"),
    _opt("metrics", "integer", "1", "1: record metrics as time series (per-minute and per-hour counts and "
         "wait/run histograms per queue and class, client.metrics); 0: off", maximum=1),
    _opt("metrics-minutes", "integer", "1440", "Minutes per-minute metrics are kept (1440: 24 hours)",
         minimum=1, maximum=10_080),
    _opt("metrics-hours", "integer", "720", "Hours per-hour metrics are kept (720: 30 days)",
         minimum=1, maximum=8_784),
)}
"""Namespace-wide options, by name (as ``QE.config_spec`` in lua/config.lua)."""

PER_QUEUE: dict[str, Option] = {o.name.removeprefix("<queue>-"): o for o in (
    _opt("<queue>-heartbeat", "number", None, "Lease length in seconds for this queue's jobs "
         "(instead of heartbeat)", positive=True, maximum=DECADE),
    _opt("<queue>-max-concurrency", "integer", "0", "Most jobs of this queue running at once; "
         "0 = no limit"),
    _opt("<queue>-max-queue-length", "integer", None, "Most jobs this queue holds (instead of "
         "max-queue-length); 0 = no limit"),
)}
"""Per-queue options, by suffix: ``<queue>-<suffix>``."""

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def lookup(name: str) -> Option | None:
    """The known option ``name`` is (or the per-queue form it matches); None when free-form."""
    known = KNOWN.get(name)
    if known is not None:
        return known
    for suffix, option in PER_QUEUE.items():
        if len(name) > len(suffix) + 1 and name.endswith("-" + suffix):
            return option
    return None


def canonical(value: float) -> str:
    """The shortest decimal text that reads back as ``value`` (``60``, ``0.5``), as Lua writes it."""
    if value == math.floor(value):
        return str(int(value))
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value:
            return text
    return f"{value:.17g}"


def _parse(name: str, option: Option, value: Any) -> float:
    what = "an integer" if option.kind == "integer" else "a number"
    number: float | None = None
    if isinstance(value, str):
        pattern = _INTEGER if option.kind == "integer" else _NUMBER
        if pattern.fullmatch(value):
            number = int(value) if option.kind == "integer" else float(value)
    elif (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and option.kind == "number"):
        number = value
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        raise InvalidArgument(f"{name} must be {what}, got {value!r}")
    if number < option.minimum or (option.positive and number <= option.minimum) or number > option.maximum:
        raise InvalidArgument(f"{name} must be {what} {option.range_text}, got {value!r}")
    return number


def _size(text: str) -> float:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: not storable text
        return math.inf


def check(name: str, value: Any) -> str:
    """The text to store for ``name = value``; InvalidArgument (naming the option) when a known
    option gets the wrong type or a value out of range, or a free-form one a value that is
    not a str, an int or a finite float (a bool is stored as 0 or 1)."""
    option = lookup(name)
    if option is None:
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, str):
            return value
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            return repr(value)
        raise InvalidArgument(f"config values must be str or finite numbers, got {name} = {value!r}")
    if option.kind == "text":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value or _CONTROL.search(value) or _size(value) > option.maximum:
            raise InvalidArgument(f"{name} must be text of 1 to {int(option.maximum)} bytes without "
                                  f"control characters, got {value!r}")
        return value
    return canonical(_parse(name, option, value))


__all__ = ["KNOWN", "PER_QUEUE", "Option", "canonical", "check", "lookup"]
