"""Bulk operations on a selection of jobs: retry, move, requeue, cancel, time out, priority, tags.

Each is one call for its caller (``client.operator.retry(jids)``) and at most two round trips
inside: the jobs' rows (when the operation depends on their state) and one pipeline of engine
commands, one per job, so one job's refusal never blocks the others. Every argument is checked
before anything is written. The result says which jobs were done and, for every other one, why
not (``"not found"``, ``"not failed (waiting)"``, ``"running (time it out first)"``, ``"other
jobs depend on it"``, or the engine's own message).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from queueengine.exceptions import InvalidArgument, JobNotFound, WrongState
from queueengine.job import Job
from queueengine.operator.rows import read_rows
from queueengine.queue import put_fields
from queueengine.store import args as _args
from queueengine.types import JobState

if TYPE_CHECKING:
    from queueengine.client import Client

NOT_FOUND = "not found"
RUNNING = "running (time it out first)"
GONE = "not found or complete"
DEPENDED_ON = "other jobs depend on it"


@dataclass
class BulkResult:
    """What one bulk operation did: ``done`` (jids, in the order given) and ``skipped``
    ((jid, reason) pairs: jobs not found first, then the others in the order given)."""

    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


Refusal = Callable[[Job], str]
"""Why a job must be left alone ("" when it may be acted on)."""


def _reason(error: Exception) -> str:
    return NOT_FOUND if isinstance(error, JobNotFound) else str(error)


def _pipelined(client: Client, calls: Sequence[tuple[str, str, Sequence[Any]]], result: BulkResult,
               reason: Callable[[str, Exception], str] = lambda jid, exc: _reason(exc)) -> BulkResult:
    """Run (jid, command, args) calls in one pipeline; each error becomes a skip."""
    replies = client.store.call_many([(command, args) for _, command, args in calls], raise_errors=False) \
        if calls else []
    for (jid, _, _), reply in zip(calls, replies, strict=True):
        if isinstance(reply, Exception):
            result.skipped.append((jid, reason(jid, reply)))
        else:
            result.done.append(jid)
    return result


def requeue_where(client: Client, jids: Sequence[str], queue: str | None, refuse: Refusal) -> BulkResult:
    """Put the jobs among ``jids`` that ``refuse`` lets through back to waiting, into ``queue``
    or each into its own, keeping data, priority, tags, retries, throttles, reply and backoff."""
    found, missing = read_rows(client, jids)
    result = BulkResult(skipped=[(jid, NOT_FOUND) for jid in missing])
    calls: list[tuple[str, str, Sequence[Any]]] = []
    for jid in jids:
        job = found.get(jid)
        if job is None:
            continue
        why = refuse(job)
        if why:
            result.skipped.append((jid, why))
            continue
        try:
            fields = put_fields(job.klass, job.data, priority=job.priority, tags=job.tags,
                                retries=job.original_retries, jid=job.jid, throttles=job.throttles,
                                reply=job.reply, backoff=job.backoff)
        except InvalidArgument as exc:  # a record another client wrote that the rule refuses
            result.skipped.append((jid, str(exc)))
            continue
        calls.append((jid, "requeue", (client.worker_name, queue or job.queue_name, *fields)))
    return _pipelined(client, calls, result)


def not_failed(job: Job) -> str:
    """Retry acts on failed jobs only."""
    return "" if job.state is JobState.FAILED else f"not failed ({job.state.value})"


def running(job: Job) -> str:
    """A running job keeps its worker's lease: time it out first."""
    return RUNNING if job.state is JobState.RUNNING else ""


def cancel(client: Client, jids: Sequence[str]) -> BulkResult:
    """Cancel together when possible; when some are dependencies of jobs not being canceled,
    cancel one by one (in one pipeline, in order) and skip those."""
    if not jids:
        return BulkResult()
    try:
        canceled = set(client.cancel(*jids))
    except WrongState:
        calls = [(jid, "cancel", (jid,)) for jid in jids]
        replies = client.store.call_many([(c, a) for _, c, a in calls], raise_errors=False)
        result = BulkResult()
        for jid, reply in zip(jids, replies, strict=True):
            if isinstance(reply, WrongState):
                result.skipped.append((jid, DEPENDED_ON))
            elif isinstance(reply, Exception):
                result.skipped.append((jid, _reason(reply)))
            elif jid in _args.loads(reply):
                result.done.append(jid)
            else:
                result.skipped.append((jid, GONE))
        return result
    return BulkResult(done=[jid for jid in jids if jid in canceled],
                      skipped=[(jid, GONE) for jid in jids if jid not in canceled])


def timeout(client: Client, jids: Sequence[str]) -> BulkResult:
    """Expire running jobs' leases now (the next pop hands them out again, no retry spent)."""
    found, missing = read_rows(client, jids)
    result = BulkResult(skipped=[(jid, NOT_FOUND) for jid in missing])
    calls: list[tuple[str, str, Sequence[Any]]] = [(jid, "timeout", (jid,)) for jid in jids if jid in found]

    def why(jid: str, exc: Exception) -> str:
        return f"not running ({found[jid].state.value})" if isinstance(exc, WrongState) else _reason(exc)

    return _pipelined(client, calls, result, why)


def set_priority(client: Client, jids: Sequence[str], priority: int) -> BulkResult:
    """Give each job ``priority`` (its place in the queue follows; FIFO within a priority kept)."""
    return _pipelined(client, [(jid, "priority", (jid, priority)) for jid in jids], BulkResult())


def tag(client: Client, jids: Sequence[str], tags: Sequence[str], add: bool) -> BulkResult:
    """Add (or remove) ``tags`` on each job."""
    action = "add" if add else "remove"
    return _pipelined(client, [(jid, "tag", (action, jid, *tags)) for jid in jids], BulkResult())


__all__ = ["BulkResult", "cancel", "not_failed", "requeue_where", "running", "set_priority", "tag", "timeout"]
