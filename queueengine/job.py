"""Job: one job's record, and the operations a worker or operator applies to it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import orjson

from queueengine.store import args as _args
from queueengine.types import Failure, HistoryEntry, JobPayload, JobState

if TYPE_CHECKING:
    from queueengine.client import Client
    from queueengine.queue import Queue

_LAZY = ("tracked", "dependencies", "dependents", "history")
UNCHANGED: Any = object()
"""``Job.edit``'s default: leave the field as it is (``data=None`` stores JSON null)."""


def _state(value: str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        return JobState.WAITING


def _s(v: bytes | str) -> str:
    return v.decode() if v.__class__ is bytes else v  # type: ignore[union-attr,return-value]


def _i(v: bytes | str) -> int:
    if not v:
        return 0
    try:
        return int(v)
    except ValueError:
        return int(float(v))


def _j(v: bytes | str) -> Any:
    return orjson.loads(v) if v else None


def _data(v: bytes | str | None) -> tuple[Any, str | None]:
    """A row's data and, when Python cannot read it (written around the engine, by another
    client or an older version), None and what is wrong with it."""
    try:
        return _j(v) if v else None, None
    except orjson.JSONDecodeError as exc:
        return None, unreadable_data(v or "", str(exc))


def unreadable_data(raw: bytes | str, reason: str) -> str:
    """What ``Job.data_problem`` says of stored data that cannot be read: why, and its text (cut)."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    shown = text if len(text) <= 200 else text[:200] + "..."
    return f"the job's data is not JSON that can be read ({reason}): {shown!r}"


def _jl(v: bytes | str) -> list[Any]:
    return list(orjson.loads(v) or ()) if v else []


_STATES: dict[bytes | str, JobState] = {}
for _member in JobState:
    _STATES[_member.value] = _STATES[_member.value.encode()] = _member


def _st(v: bytes | str) -> JobState:
    return _STATES.get(v, JobState.WAITING)


ROW_FIELDS: tuple[str, ...] = (
    "jid", "klass", "data", "priority", "queue", "state", "worker", "expires", "retries", "remaining",
    "time", "tags", "throttles", "failure", "exhausted", "spawned_from_jid", "backoff", "reply", "result",
    "scheduled", "trace")
"""The job row: the record fields ``pop``/``peek`` return, in this order, and ``Job.from_row``
reads. The one declaration: ``QE.ROW_FIELDS`` in ``store/lua/pop.lua`` must list the same fields
in the same order (a test compares them); readers of many rows (``client.operator.rows``) ask
Redis for exactly these."""


class Job:
    """A job as last read from Redis. Methods act on the server and keep ``state`` in step.

    ``history``, ``dependencies``, ``dependents`` and ``tracked`` are loaded on first access
    when the job came from ``pop``/``peek`` (which skip them for speed).
    """

    aborted: bool = False
    """True once the worker running this job aborted it (its lease was lost or it was canceled)."""

    def __init__(self, client: Client, payload: JobPayload, holder: str | None = None) -> None:
        self.client = client
        # the worker name this object acts as (the popper's; else the client's worker_name)
        self.holder = holder or client.worker_name
        self._load(payload)

    @classmethod
    def from_row(cls, client: Client, row: Sequence[Any], holder: str | None = None) -> Job:
        """A job from a row of ``pop``/``peek``: the values of ``ROW_FIELDS``, in order (None for
        a field the record lacks)."""
        (jid, klass, data, priority, queue, state, worker, expires, retries, remaining, time_, tags,
         throttles, failure, exhausted, spawned, backoff, reply, result, scheduled, trace) = row[:len(ROW_FIELDS)]
        job = cls.__new__(cls)
        d = job.__dict__
        d["client"] = client
        d["holder"] = holder or client.worker_name
        d["jid"] = _s(jid)
        d["klass"] = _s(klass) if klass else ""
        d["data"], d["data_problem"] = _data(data)
        d["_priority"] = _i(priority) if priority else 0
        d["queue_name"] = _s(queue) if queue else ""
        d["state"] = _st(state) if state else JobState.WAITING
        d["worker"] = _s(worker) if worker else ""
        d["expires_at"] = float(expires) if expires else 0.0
        d["original_retries"] = _i(retries) if retries else 0
        d["retries_left"] = _i(remaining) if remaining else 0
        d["time"] = float(time_) if time_ else 0.0
        d["tags"] = _jl(tags) if tags else []
        d["throttles"] = _jl(throttles) if throttles else []
        d["failure"] = _j(failure) if failure else None
        d["exhausted"] = _j(exhausted) if exhausted else None
        d["spawned_from_jid"] = _s(spawned) if spawned else None
        d["backoff"] = _j(backoff) if backoff else None
        d["reply"] = reply in (b"1", "1")
        d["result"] = _j(result) if result else None
        d["scheduled_at"] = float(scheduled) if scheduled else None
        d["trace_context"] = _j(trace) if trace else None
        d["due_at"] = None   # rows are of popped (running) or peeked (waiting) jobs
        d["_full"] = False
        return job

    def _load(self, p: JobPayload) -> None:
        self.jid: str = p["jid"]
        self.klass: str = p.get("klass", "")
        self.queue_name: str = p.get("queue", "")
        self.state: JobState = _state(p.get("state", "waiting"))
        self.worker: str = p.get("worker", "")
        self._priority: int = int(p.get("priority", 0))
        self.expires_at: float = float(p.get("expires", 0) or 0)
        self.original_retries: int = int(p.get("retries", 0))
        self.retries_left: int = int(p.get("remaining", 0))
        self.data: Any = p.get("data")
        # set when the stored data could not be read: ``data`` is None and the worker fails the job
        unreadable = p.get("data_unreadable")
        self.data_problem: str | None = None if unreadable is None else unreadable_data(
            unreadable, "NaN, Infinity, a number beyond a double, or not JSON")
        self.tags: list[str] = list(p.get("tags") or [])
        self.failure: Failure | None = p.get("failure") or None
        self.exhausted: dict[str, Any] | None = p.get("exhausted") or None
        self.spawned_from_jid: str | None = p.get("spawned_from_jid")
        self.throttles: list[str] = list(p.get("throttles") or [])
        self.backoff: dict[str, float] | None = p.get("backoff")
        self.reply: bool = bool(p.get("reply", False))
        self.result: Any = p.get("result")
        self.time: float = float(p.get("time", 0) or 0)
        self.scheduled_at: float | None = p.get("scheduled")
        self.trace_context: dict[str, str] | None = None
        """The producer's W3C trace context (``{"traceparent": ...}``) when the job was put inside a
        trace (the ``otel`` extra); read from ``pop``/``peek`` rows."""
        self.due_at: float | None = p.get("due_at")
        """When a scheduled job becomes ready (epoch seconds); None in every other state."""
        self._full = "history" in p
        if self._full:
            self._tracked = bool(p.get("tracked", False))
            self._dependencies = list(p.get("dependencies") or [])
            self._dependents = list(p.get("dependents") or [])
            self._history = list(p.get("history") or [])

    def __repr__(self) -> str:
        return f"<Job {self.jid} {self.klass} {self.state.value} in {self.queue_name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.jid == self.jid

    def __hash__(self) -> int:
        return hash(self.jid)

    # ------------------------------------------------------------------ lazy parts
    def _ensure_full(self) -> None:
        if not self._full:
            self.refresh()

    @property
    def tracked(self) -> bool:
        """Whether the job is in the tracked set."""
        self._ensure_full()
        return self._tracked

    @property
    def dependencies(self) -> list[str]:
        """Jids this job waits on."""
        self._ensure_full()
        return self._dependencies

    @property
    def dependents(self) -> list[str]:
        """Jids waiting on this job."""
        self._ensure_full()
        return self._dependents

    @property
    def history(self) -> list[HistoryEntry]:
        """History entries, oldest first: ``{"when", "what", ...}``."""
        self._ensure_full()
        return self._history

    @property
    def queue(self) -> Queue:
        """The job's queue object."""
        return self.client.queues[self.queue_name]

    @property
    def worker_name(self) -> str:
        """The worker holding the job ('' if none); qless-py's name for ``worker``."""
        return self.worker

    @property
    def klass_name(self) -> str:
        """qless-py's name for ``klass``."""
        return self.klass

    @property
    def ttl(self) -> float:
        """Seconds left on the lease (negative once expired)."""
        return self.expires_at - self.client.now()

    def refresh(self) -> Job:
        """Re-read the job from Redis (JobNotFound if it is gone)."""
        from queueengine.exceptions import JobNotFound

        raw = self.client._call("get", self.jid)
        if raw is None:
            raise JobNotFound(f"job {self.jid} does not exist")
        self._load(cast(JobPayload, _args.loads(raw)))
        return self

    # ------------------------------------------------------------------ attributes with effects
    @property
    def priority(self) -> int:
        """The job's priority (higher pops first); assigning changes it on the server."""
        return self._priority

    @priority.setter
    def priority(self, value: int) -> None:
        value = _args.priority(value)
        self.client._call("priority", self.jid, value)
        self._priority = value

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    # ------------------------------------------------------------------ lifecycle
    def complete(
        self,
        result: Any = None,
        next_queue: str | None = None,
        delay: float = 0,
        depends: Sequence[str] = (),
    ) -> str:
        """Finish the job (store ``result``) or advance it to ``next_queue``.

        Returns the new state: 'complete', or 'waiting' / 'scheduled' / 'depends' when advancing.
        Raises LostLease when another worker holds the job, WrongState when it is not running.
        """
        payload = _args.dumps(result, "result")
        nq = _args.name(next_queue, "next_queue") if next_queue is not None else ""
        d = _args.number(delay, "delay")
        deps = _args.names(depends, "depends")
        if not nq and (d > 0 or deps):
            from queueengine.exceptions import InvalidArgument

            raise InvalidArgument("delay and depends need next_queue")
        state = _args.text(
            self.client._call(
                "complete", self.jid, self.holder, self.queue_name, payload,
                nq, repr(d), orjson.dumps(deps).decode(),
            )
        )
        self.state = _state(state)
        self.result = result
        if nq:
            self.queue_name = nq
        return state

    def fail(self, group: str, message: str, traceback: str | None = None) -> str:
        """Fail the job in ``group`` with ``message`` (and an optional traceback)."""
        _args.name(group, "group")
        if not isinstance(message, str) or not (traceback is None or isinstance(traceback, str)):
            from queueengine.exceptions import InvalidArgument

            bad = ("message", message) if not isinstance(message, str) else ("traceback", traceback)
            raise InvalidArgument(f"{bad[0]} must be a string, got {bad[1]!r}")
        self.client._call(
            "fail", self.jid, self.holder, group, message, traceback or "", ""
        )
        self.state = JobState.FAILED
        return self.jid

    def retry(self, delay: float | None = None, group: str | None = None, message: str | None = None) -> int:
        """Give the job back for another attempt; returns retries left (negative: now failed).

        ``delay`` None uses the job's backoff policy (0 without one). ``group``/``message``
        record the error that caused the retry; it stays the job's failure if retries run out.
        """
        d = "" if delay is None else repr(_args.number(delay, "delay"))
        g = _args.name(group, "group") if group is not None else ""
        if message is not None and not isinstance(message, str):
            from queueengine.exceptions import InvalidArgument

            raise InvalidArgument(f"message must be a string, got {message!r}")
        left = int(
            self.client._call(
                "retry", self.jid, self.queue_name, self.holder, d, g, message or ""
            )
        )
        self.retries_left = left
        if left < 0:
            self.state = JobState.FAILED
        else:
            self.state = JobState.SCHEDULED if (delay or 0) > 0 else JobState.WAITING
        return left

    def heartbeat(self, data: Any = None) -> float:
        """Extend the lease; returns the new expiry. LostLease if it went to another worker."""
        raw = _args.dumps(data, "data") if data is not None else ""
        expires = float(self.client._call("heartbeat", self.jid, self.holder, raw))
        self.expires_at = expires
        return expires

    def cancel(self) -> list[str]:
        """Delete the job (refused when a job that is not canceled with it depends on it)."""
        out: list[str] = _args.loads(self.client._call("cancel", self.jid))
        if out:
            self.state = JobState.CANCELED
        return out

    def move(self, queue: str, delay: float = 0, depends: Sequence[str] = ()) -> str:
        """Put the job (same data, priority, tags, retries) into ``queue``; returns its new state."""
        q = self.client.queues[_args.name(queue, "queue")]
        q.requeue(
            self.klass, self.data, priority=self._priority, tags=self.tags, delay=delay,
            retries=self.original_retries, depends=depends, jid=self.jid, throttles=self.throttles,
            reply=self.reply, backoff=self.backoff,
        )
        self.queue_name = queue
        self.state = JobState.SCHEDULED if delay > 0 else JobState.WAITING
        if depends:
            self.refresh()
        return self.state.value

    requeue = move

    def release(self) -> None:
        """Hand the running job back to its queue, at the front of its priority band, without
        spending a retry (for a worker shutting down)."""
        self.client._call("release", self.jid, self.holder)
        self.state = JobState.WAITING
        self.worker = ""

    def timeout(self) -> None:
        """Expire the lease now: the next pop reclaims the job (no retry is spent)."""
        self.client._call("timeout", self.jid)
        self.state = JobState.STALLED

    def tag(self, *tags: str) -> list[str]:
        """Add tags; returns the job's tags."""
        out: list[str] = _args.loads(self.client._call("tag", "add", self.jid, *_args.names(tags, "tags")))
        self.tags = out
        return out

    def untag(self, *tags: str) -> list[str]:
        """Remove tags; returns the job's tags."""
        out: list[str] = _args.loads(self.client._call("tag", "remove", self.jid, *_args.names(tags, "tags")))
        self.tags = out
        return out

    def track(self) -> None:
        """Add the job to the tracked set."""
        self.client._call("track", "track", self.jid)
        if self._full:
            self._tracked = True

    def untrack(self) -> None:
        """Remove the job from the tracked set."""
        self.client._call("track", "untrack", self.jid)
        if self._full:
            self._tracked = False

    def log(self, message: str, **data: Any) -> None:
        """Append a history entry ``{"what": message, "when": now, **data}``."""
        if not isinstance(message, str) or not message:
            from queueengine.exceptions import InvalidArgument

            raise InvalidArgument("message must be a non-empty string")
        self.client._call("log", self.jid, message, _args.dumps(data, "data") if data else "")
        self._full = False

    def depend(self, *jids: str) -> None:
        """Add dependencies (only while the job is in the depends state)."""
        self.client._call("depends", self.jid, "on", *_args.names(jids, "jids"))
        self._full = False

    def undepend(self, *jids: str, all: bool = False) -> None:  # noqa: A002 - qless-py's name
        """Remove dependencies (``all=True``: every one); with none left the job is released."""
        args = ["all"] if all else _args.names(jids, "jids")
        self.client._call("depends", self.jid, "off", *args)
        self.refresh()

    def edit(self, *, data: Any = UNCHANGED, priority: int | None = None, delay: float | None = None,
             tags: Sequence[str] | None = None) -> str:
        """Change a waiting or scheduled job in place, atomically: its ``data``, ``priority``,
        ``delay`` (seconds from now until it is ready: 0 makes it ready now, more makes a waiting
        job scheduled) and ``tags`` (the new list). Arguments left out stay as they are. Returns
        the new state; WrongState for a job in any other state (nothing changes)."""
        raw = "" if data is UNCHANGED else _args.dumps(data, "data")
        p = "" if priority is None else _args.priority(priority)
        d = "" if delay is None else repr(_args.number(delay, "delay"))
        t = "" if tags is None else orjson.dumps(_args.names(tags, "tags")).decode()
        if raw == "" and p == "" and d == "" and t == "":
            from queueengine.exceptions import InvalidArgument

            raise InvalidArgument("nothing to edit: give data, priority, delay or tags")
        state = _args.text(self.client._call("edit", self.jid, raw, p, d, t))
        self.refresh()
        return state
