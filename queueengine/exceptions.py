"""Typed errors of the engine.

Every error the Lua library raises carries a kind (``QE:<Kind>: ...``) that maps to one of
these classes; ``location`` names the Lua source line (``job.lua:37``) that raised it.
"""

from __future__ import annotations

from typing import Any


class QueueEngineError(Exception):
    """Base class of every engine error."""

    def __init__(self, message: str = "", *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location:
            return f"{self.message} [{self.location}]"
        return self.message


class InvalidArgument(QueueEngineError, ValueError):
    """An argument is malformed or out of range; the message names the argument."""


class UnsupportedData(InvalidArgument, TypeError):
    """Job data (or a result) that JSON cannot carry faithfully: NaN, infinity, an integer
    beyond 64 bits, a non-string object key, a set, bytes, an arbitrary object. The message
    names the path (``data.items[2]``). Also a ``TypeError``, the class ``django.tasks``
    raises for an argument it cannot store."""


class JobNotFound(QueueEngineError, LookupError):
    """The job (or recurring template) does not exist (never did, canceled or expired)."""


class LostLease(QueueEngineError):
    """The job's lease belongs to another worker (it was reclaimed and handed out again)."""


class WrongState(QueueEngineError):
    """The job is not in a state that allows the operation (e.g. completing a waiting job)."""


class DuplicateJob(QueueEngineError):
    """``put(..., unique=True)`` found a job with that jid already."""


class ScriptError(QueueEngineError):
    """An unexpected error inside the Lua library (a bug): ``location`` says where."""


class WaitTimeout(QueueEngineError, TimeoutError):
    """``Client.wait`` / ``await_result`` gave up before the job finished."""


class JobFailed(QueueEngineError):
    """The awaited job failed; carries its failure group, message and traceback."""

    def __init__(self, jid: str, failure: dict[str, Any] | None) -> None:
        failure = dict(failure or {})
        self.jid = jid
        self.failure = failure
        self.group: str = str(failure.get("group", ""))
        self.failure_message: str = str(failure.get("message", ""))
        self.traceback: str | None = failure.get("traceback")
        super().__init__(f"job {jid} failed in group {self.group!r}: {self.failure_message}")


class QueueFull(QueueEngineError):
    """``put`` refused: the queue holds its configured maximum number of jobs
    (``max-queue-length`` / ``<queue>-max-queue-length``). Nothing was written."""


class OutOfMemory(QueueEngineError):
    """Redis reached ``maxmemory`` and refuses writes (policy ``noeviction``). Nothing was written."""


KINDS: dict[str, type[QueueEngineError]] = {
    "InvalidArgument": InvalidArgument,
    "JobNotFound": JobNotFound,
    "LostLease": LostLease,
    "WrongState": WrongState,
    "DuplicateJob": DuplicateJob,
    "QueueFull": QueueFull,
}

__all__ = [
    "DuplicateJob",
    "InvalidArgument",
    "JobFailed",
    "JobNotFound",
    "LostLease",
    "OutOfMemory",
    "QueueEngineError",
    "QueueFull",
    "ScriptError",
    "WaitTimeout",
    "WrongState",
]
