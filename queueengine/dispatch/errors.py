"""Errors raised by the delivery modes (subclasses of the engine's error classes)."""

from __future__ import annotations

from typing import Any

from queueengine.exceptions import InvalidArgument, JobFailed, QueueEngineError, WaitTimeout


class JobTimeout(WaitTimeout):
    """The client-side ``timeout`` of a submitted job elapsed before its result arrived."""

    def __init__(self, jid: str, timeout: float) -> None:
        super().__init__(f"job {jid} timed out after {timeout:g}s without a result (client timeout)")
        self.jid = jid
        self.timeout = timeout


class ModeMismatch(QueueEngineError):
    """The namespace was set up for another delivery mode than the one asked for."""

    def __init__(self, namespace: str, recorded: str, requested: str) -> None:
        super().__init__(
            f"namespace {namespace!r} is in mode {recorded!r}; a {requested!r} client or worker "
            f"cannot use it (use mode={recorded!r} or another namespace)"
        )
        self.namespace = namespace
        self.recorded = recorded
        self.requested = requested


def job_failed(jid: str, failure: Any) -> JobFailed:
    """The exception a client's future fails with: ``failure`` is {group, message} or a reason."""
    if not isinstance(failure, dict):
        failure = {"group": "failed", "message": str(failure)}
    return JobFailed(jid, failure)


__all__ = ["InvalidArgument", "JobFailed", "JobTimeout", "ModeMismatch", "QueueEngineError", "job_failed"]
