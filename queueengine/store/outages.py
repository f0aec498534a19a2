"""Riding out Redis outages (a restart, a failover, a freeze): what is retried, and how it is said.

The engine retries only what is safe to repeat. A ``Client`` retries reads and puts for up to
``client.retry_for`` seconds (:data:`RETRY_FOR` by default) with redis-py's own ``Retry`` and an
exponential backoff; a put is repeated *create-only* (its ``unique`` flag set), so a repeat of a
put whose first try went through changes nothing, even when a worker ran the job meanwhile.
Everything else (pops, completions, heartbeats, moves...) is left to its caller: the workers back
off and try again, completions and outcomes are retried for a bounded time. Expected outage
conditions are logged in one line (:func:`warn`); their tracebacks go to DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from queueengine.exceptions import DuplicateJob
from queueengine.store.connection import is_transient

T = TypeVar("T")
_log = logging.getLogger("queueengine.client")

RETRY_FOR = 5.0
"""Default seconds a repeat-safe command is retried through an outage (``Client.retry_for``)."""

REPEAT_SAFE_READS = frozenset({
    "get", "multiget", "peek", "jobs", "queues", "workers", "stats", "length", "failed", "next_due",
    "config.get", "recur.get", "throttle.get", "throttle.locks", "throttle.pending",
    "view.jobs", "view.queues", "view.groups", "view.workers", "view.job", "view.recurring",
    "view.tracked_states", "view.tags",
    "metrics.series", "metrics.classes", "metrics.groups", "metrics.backlog", "metrics.totals",
    "find", "find.classes", "find.match", "worker.throughput",
})
"""Lua commands that only read (``peek`` may also spawn and promote what is due, ``metrics.totals``
fold finished hours into running totals: both idempotent)."""

REPEAT_SAFE_WRITES = frozenset({"worker.register", "worker.beat", "worker.deregister"})
"""Writes whose repeat leaves Redis as one call would (a worker's registry entry)."""

_UNIQUE_AT = {"put": 10, "put_batch": 9}
"""Where a put's ``unique`` flag sits in its Lua arguments (``put_many``: 8 into each 12-field row
after the three leading arguments)."""


def repeat_safe(command: str) -> bool:
    """Whether the engine retries this Lua command through an outage (reads, puts, and a worker's
    registry writes)."""
    return (command in REPEAT_SAFE_READS or command in REPEAT_SAFE_WRITES or command in _UNIQUE_AT
            or command == "put_many")


def repeat_args(command: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments of a repeat: a put is sent again *create-only* (``unique``), so when its
    first try went through, the repeat changes nothing (it answers DuplicateJob instead), even
    if a worker already ran the job."""
    if command == "put_many":
        out = list(args)
        for i in range(3 + 8, len(out), 12):
            out[i] = 1
        return tuple(out)
    at = _UNIQUE_AT.get(command)
    if at is None:
        return args
    return (*args[:at], 1, *args[at + 1:])


def outage_retry(seconds: float, base: float = 0.05, cap: float = 1.0) -> Retry:
    """A redis-py ``Retry`` that keeps trying for about ``seconds`` (exponential backoff from
    ``base`` up to ``cap`` seconds between tries) on any error: give it ``is_retryable=is_transient``
    (see :func:`call_retrying`). ``seconds <= 0``: no retry."""
    tries, waited = 0, 0.0
    backoff = ExponentialBackoff(cap=cap, base=base)
    while seconds > 0 and waited < seconds:
        tries += 1
        waited += backoff.compute(tries)
    return Retry(backoff, tries, supported_errors=(Exception,))


def call_retrying(retry: Retry, do: Callable[[], T], on_retry: Callable[[Exception], None] | None = None) -> T:
    """``do()``, repeated per ``retry`` while it fails with an outage error (:func:`is_transient`);
    any other error, or the last outage error, is raised. ``on_retry(exc)`` runs before each wait."""
    return retry.call_with_retry(do, on_retry or (lambda exc: None), is_retryable=is_transient)


def repeat_call(send: Callable[[tuple[Any, ...]], Any], command: str, args: tuple[Any, ...],
                first: BaseException, seconds: float) -> Any:
    """Retry a repeat-safe Lua command (:func:`repeat_safe`) whose first try failed with ``first``,
    for up to ``seconds``: ``send(args)`` makes one try. A put is repeated create-only, so
    DuplicateJob then means its first try (or an earlier put of the caller's jid) stored it."""
    _log.warning("Redis unreachable (%s: %s); retrying %s for up to %gs", type(first).__name__, first,
                 command, seconds)
    again = repeat_args(command, args)

    def do() -> Any:
        try:
            return send(again)
        except DuplicateJob:
            if again is args:
                raise
            return None
    return call_retrying(outage_retry(seconds), do)


def warn(logger: logging.Logger, exc: BaseException, message: str, *args: Any) -> None:
    """Log a failure at WARNING: one line (the error's class and text) when it is an expected
    outage condition (:func:`is_transient`), with its traceback at DEBUG; with the traceback
    otherwise (a bug or a refusal is worth the stack)."""
    if is_transient(exc):
        logger.warning(message + ": %s: %s", *args, type(exc).__name__, exc)
        logger.debug("traceback of the above", exc_info=exc)
    else:
        logger.warning(message, *args, exc_info=exc)


__all__ = ["REPEAT_SAFE_READS", "RETRY_FOR", "call_retrying", "outage_retry", "repeat_args", "repeat_call",
           "repeat_safe", "warn"]
