"""What a handler's outcome does to its job.

Returning completes the job with the return value as its result (auto-complete), unless the
job was aborted meanwhile or the handler settled it itself (completed, failed, retried, moved
or canceled it). A return value JSON cannot store fails the job saying so. An exception fails
the job in group ``<queue>-<ExceptionClass>`` with its traceback, or retries it when the
handler's retry policy names that exception. Used by :class:`queueengine.worker.runner.Runner`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from queueengine.exceptions import LostLease
from queueengine.store import jsondata
from queueengine.store.outages import warn
from queueengine.types import JobState
from queueengine.worker.handlers import RetryPolicy, failure_group, failure_message, failure_traceback

if TYPE_CHECKING:
    from queueengine.job import Job
    from queueengine.worker.ledger import Held

log = logging.getLogger("queueengine.worker")

RUNNING = JobState.RUNNING


def completion(rec: Held, result: Any) -> orjson.Fragment | None:
    """The result to complete ``rec``'s job with, as JSON; None when the job is not to be
    completed (aborted, settled by its handler, or a result JSON cannot store: then it is failed)."""
    if rec.aborted or rec.job.state != RUNNING:
        return None  # lease lost, or the handler completed/failed/retried/moved the job itself
    try:
        return orjson.Fragment(jsondata.encode(result, "result"))
    except TypeError as exc:  # UnsupportedData: NaN, a set, ... (it names the path)
        _fail_unstorable(rec.job, exc)
        return None


def _fail_unstorable(job: Job, exc: Exception) -> None:
    try:
        job.fail(f"{job.queue_name}-InvalidArgument",
                 f"the handler's return value cannot be stored as the job's result: result must be "
                 f"JSON-serialisable: {exc}")
    except Exception as error:
        warn(log, error, "could not fail job %s", job.jid)


def settle_error(rec: Held, exc: BaseException | None) -> float:
    """Fail or retry ``rec``'s job: its handler raised ``exc`` (None: the handler could not be
    found). Returns the delay of the retry it scheduled, else 0."""
    job, handler = rec.job, rec.handler
    if rec.aborted:
        log.info("job %s aborted (%s); not completing it", job.jid, rec.abort_reason)
        return 0.0
    if isinstance(exc, LostLease):
        log.warning("job %s lost its lease while running (%s); leaving it to its new owner", job.jid, exc)
        return 0.0
    if exc is not None and job.state != RUNNING:
        log.warning("job %s raised after it was settled", job.jid, exc_info=exc)
        return 0.0
    try:
        if exc is None:
            job.fail(handler.error_group or f"{job.queue_name}-failed", handler.error_message or "")
        elif handler.policy is not None and isinstance(exc, handler.policy.on):
            return _retry(job, handler.policy, exc)
        else:
            job.fail(failure_group(job.queue_name, exc), failure_message(exc), traceback=failure_traceback(exc))
    except Exception as error:
        warn(log, error, "could not record the failure of job %s", job.jid)
    return 0.0


def _retry(job: Job, policy: RetryPolicy, exc: BaseException) -> float:
    """Retry ``job`` after the policy's delay; that delay when the job went back to its queue
    (0 when its retries ran out and it failed instead)."""
    delay = policy.delay(job)
    left = job.retry(delay=delay, group=failure_group(job.queue_name, exc),
                     message=f"{failure_message(exc)}\n\n{failure_traceback(exc)}")
    return delay if left >= 0 else 0.0


__all__ = ["completion", "settle_error"]
