"""Queue: put, pop, peek, recur, pause, counts, stats and listings of one queue."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast, overload

import orjson

from queueengine import tracing
from queueengine.exceptions import InvalidArgument, UnsupportedData
from queueengine.job import Job
from queueengine.store import args as _args
from queueengine.types import MetricsSeries, QueueCounts, QueueStats

if TYPE_CHECKING:
    from queueengine.client import Client

PUT_BATCH = 1000
"""Jobs per Lua call in ``put_many`` (all calls go out in one pipeline)."""

_PUT_KEYS = frozenset({"klass", "data", "priority", "tags", "delay", "retries", "depends", "jid", "unique",
                       "throttles", "reply", "backoff"})


def put_fields(
    klass: Any,
    data: Any,
    priority: int = 0,
    tags: Sequence[str] = (),
    delay: float = 0,
    retries: int = 5,
    depends: Sequence[str] = (),
    jid: str | None = None,
    unique: bool = False,
    throttles: Sequence[str] = (),
    reply: bool = False,
    backoff: Mapping[str, float] | None = None,
) -> list[Any]:
    """The 12 Lua put fields of one job, checked (InvalidArgument names the bad argument)."""
    jid = os.urandom(16).hex() if jid is None else _args.name(jid, "jid")
    d = 0.0 if delay == 0 else _args.number(delay, "delay")
    deps = _args.names(depends, "depends") if depends else []
    if jid in deps:
        raise InvalidArgument("depends: a job cannot depend on itself")
    if not isinstance(unique, bool):
        raise InvalidArgument(f"unique must be a bool, got {unique!r}")
    if not isinstance(reply, bool):
        raise InvalidArgument(f"reply must be a bool, got {reply!r}")
    return [
        jid,
        _args.klass_path(klass),
        _args.dumps(data, "data"),
        d,
        _args.priority(priority),
        orjson.dumps(_args.names(tags, "tags")).decode() if tags else "[]",
        _args.integer(retries, "retries"),
        orjson.dumps(deps).decode() if deps else "[]",
        1 if unique else 0,
        orjson.dumps(_args.names(throttles, "throttles")).decode() if throttles else "[]",
        1 if reply else 0,
        _args.backoff(dict(backoff) if isinstance(backoff, Mapping) else backoff),
    ]


class QueueJobs:
    """Jids of one queue by state, paginated: ``q.jobs.running(offset, count)`` and so on."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def _list(self, state: str, offset: int, count: int) -> list[str]:
        _args.integer(offset, "offset")
        _args.integer(count, "count")
        out: list[str] = _args.loads(self.queue.client._call("jobs", state, self.queue.name, offset, count))
        return out

    def running(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jobs with a live lease."""
        return self._list("running", offset, count)

    def stalled(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jobs whose lease expired (not reclaimed yet)."""
        return self._list("stalled", offset, count)

    def waiting(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jobs ready to pop, in pop order."""
        return self._list("waiting", offset, count)

    def scheduled(self, offset: int = 0, count: int = 25) -> list[str]:
        """Delayed jobs, by ready time."""
        return self._list("scheduled", offset, count)

    def depends(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jobs waiting on dependencies."""
        return self._list("depends", offset, count)

    def recurring(self, offset: int = 0, count: int = 25) -> list[str]:
        """Recurring templates, by next spawn time."""
        return self._list("recurring", offset, count)

    def throttled(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jobs waiting for a throttle slot."""
        return self._list("throttled", offset, count)


def _put_rows(jobs: Iterable[Mapping[str, Any] | Sequence[Any]]) -> list[list[Any]]:
    """The checked ``put`` fields of each job of ``put_many``, in order (a new jid each)."""
    rows: list[list[Any]] = []
    templates: dict[Any, list[Any]] = {}   # klass -> the checked default fields of a pair
    urandom, dumps = os.urandom, _args.dumps
    try:
        for i, item in enumerate(jobs):
            if item.__class__ is tuple and len(item) == 2:   # (klass, data): the common case, fast
                klass, data = item
                try:
                    row = templates[klass].copy()
                except (KeyError, TypeError):
                    row = put_fields(klass, None)
                    with contextlib.suppress(TypeError):
                        templates[klass] = row.copy()
                row[0] = urandom(16).hex()
                row[2] = dumps(data, "data")
                rows.append(row)
            else:
                rows.append(_put_row(i, item))
    except UnsupportedData as exc:  # name the job (the one after the rows made): jobs[3]: data.v ...
        raise UnsupportedData(f"jobs[{len(rows)}]: {exc}") from None
    return rows


def _put_row(i: int, item: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    """The ``put`` fields of ``jobs[i]`` given as a mapping of put arguments or a pair."""
    if isinstance(item, Mapping):
        unknown = set(item) - _PUT_KEYS
        if unknown:
            raise InvalidArgument(f"jobs[{i}]: unknown put arguments {sorted(unknown)}")
        if "klass" not in item or "data" not in item:
            raise InvalidArgument(f"jobs[{i}]: klass and data are required")
        return put_fields(**item)
    if isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 2:
        return put_fields(item[0], item[1])
    raise InvalidArgument(f"jobs[{i}] must be a mapping of put arguments or a (klass, data) pair")


def _put_calls(worker: str, queue: str, rows: list[list[Any]]) -> list[tuple[str, list[Any]]]:
    """The Lua calls that put ``rows`` (``PUT_BATCH`` jobs each): ``put_batch`` when every job of
    a call shares its klass and options (sent once, then jid and data per job), else ``put_many``."""
    calls: list[tuple[str, list[Any]]] = []
    for start in range(0, len(rows), PUT_BATCH):
        chunk = rows[start:start + PUT_BATCH]
        args: list[Any] = [worker, queue, len(chunk)]
        shared = chunk[0][3:]
        if all(r[1] == chunk[0][1] and r[3:] == shared for r in chunk):
            args.append(chunk[0][1])
            args.extend(shared)
            for r in chunk:
                args.extend((r[0], r[2]))
            calls.append(("put_batch", args))
        else:
            for r in chunk:
                args.extend(r)
            calls.append(("put_many", args))
    return calls


class Queue:
    """One named queue of a client's namespace."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = _args.name(name, "queue")
        self.jobs = QueueJobs(self)

    def __repr__(self) -> str:
        return f"<Queue {self.name}>"

    def put(
        self,
        klass: Any,
        data: Any,
        priority: int = 0,
        tags: Sequence[str] = (),
        delay: float = 0,
        retries: int = 5,
        depends: Sequence[str] = (),
        jid: str | None = None,
        unique: bool = False,
        throttles: Sequence[str] = (),
        reply: bool = False,
        backoff: Mapping[str, float] | None = None,
    ) -> str:
        """Put a job; returns its jid. An existing jid is moved here unless ``unique=True``
        (then DuplicateJob). ``backoff={"base": s, "factor": f, "max": s}`` spaces out retries."""
        fields = put_fields(klass, data, priority, tags, delay, retries, depends, jid, unique, throttles,
                            reply, backoff)
        if reply:
            fields[10] = self.client._reply_arg(fields[0])
        with tracing.send(self.name, fields[0]) as trace:   # the otel extra's producer span
            self.client._call("put", self.client.worker_name, self.name, *fields, *trace)
        return cast(str, fields[0])

    def requeue(self, klass: Any, data: Any, **options: Any) -> str:
        """Like ``put`` for an existing ``jid`` (JobNotFound when it does not exist)."""
        if options.get("jid") is None:
            raise InvalidArgument("jid is required for requeue")
        fields = put_fields(klass, data, **options)
        self.client._call("requeue", self.client.worker_name, self.name, *fields)
        return cast(str, fields[0])

    def put_many(self, jobs: Iterable[Mapping[str, Any] | Sequence[Any]]) -> list[str]:
        """Put many jobs in one round trip; returns their jids in order.

        Each item is a mapping of ``put`` arguments (``klass``, ``data``, ...) or a
        ``(klass, data)`` pair. Every job is checked before anything is sent; each Lua call
        (``PUT_BATCH`` jobs) is atomic and all calls go out in one pipeline.
        """
        rows = _put_rows(jobs)
        if not rows:
            return []
        calls = _put_calls(self.client.worker_name, self.name, rows)
        self._send_puts(calls, [cast(str, r[0]) for r in rows])
        return [cast(str, r[0]) for r in rows]

    def _send_puts(self, calls: list[tuple[str, list[Any]]], jids: list[str]) -> None:
        """Send put_many's Lua calls (one pipeline), inside the otel extra's producer span."""
        with tracing.send(self.name, jids[0] if len(jids) == 1 else None, len(jids)) as trace:
            if trace:
                calls = [(command, [*args, *trace]) for command, args in calls]
            if len(calls) == 1:
                self.client._call(calls[0][0], *calls[0][1])
            else:
                self.client._pipeline_calls(calls, raise_errors=True)

    @overload
    def pop(self, count: None = None) -> Job | None: ...
    @overload
    def pop(self, count: int) -> list[Job]: ...

    def pop(self, count: int | None = None) -> Job | None | list[Job]:
        """Lease the next job (None if none), or up to ``count`` jobs as a list."""
        jobs = self.client.pop_from([self.name], 1 if count is None else count)
        if count is None:
            return jobs[0] if jobs else None
        return jobs

    @overload
    def peek(self, count: None = None) -> Job | None: ...
    @overload
    def peek(self, count: int) -> list[Job]: ...

    def peek(self, count: int | None = None) -> Job | None | list[Job]:
        """The next waiting job(s) without leasing them (due scheduled/recurring jobs are
        promoted first, as in Qless)."""
        n = 1 if count is None else _args.integer(count, "count")
        jobs = [Job.from_row(self.client, row) for row in self.client._call("peek", self.name, n)]
        if count is None:
            return jobs[0] if jobs else None
        return jobs

    def pause(self) -> None:
        """Stop handing out this queue's jobs (put, complete, heartbeat still work)."""
        self.client._call("pause", self.name)

    def unpause(self) -> None:
        """Resume handing out jobs."""
        self.client._call("unpause", self.name)

    @property
    def paused(self) -> bool:
        """Whether the queue is paused."""
        return self.counts["paused"]

    @property
    def counts(self) -> QueueCounts:
        """``{name, waiting, running, stalled, scheduled, depends, recurring, throttled, paused}``."""
        return cast(QueueCounts, _args.loads(self.client._call("queues", self.name)))

    def stats(self, date: float | None = None) -> QueueStats:
        """Wait/run statistics (148-bucket histograms) and failure counters of the UTC day
        containing ``date`` (Unix seconds; default today)."""
        d = "" if date is None else repr(_args.number(date, "date", None))
        return cast(QueueStats, _args.loads(self.client._call("stats", self.name, d)))

    def metrics(self, klass: str | None = None, since: float | None = None, until: float | None = None,
                step: int | None = None) -> MetricsSeries:
        """This queue's metrics as time series: ``client.metrics(queue=<this queue>, ...)``."""
        return self.client.metrics(queue=self.name, klass=klass, since=since, until=until, step=step)

    def __len__(self) -> int:
        """Leased + waiting + scheduled + throttled jobs (Qless ``length``)."""
        return int(self.client._call("length", self.name))

    def recur(
        self,
        klass: Any,
        data: Any,
        interval: float | None = None,
        offset: float = 0,
        cron: str | None = None,
        backlog: int = 0,
        priority: int = 0,
        tags: Sequence[str] = (),
        retries: int = 5,
        jid: str | None = None,
        throttles: Sequence[str] = (),
        backoff: Mapping[str, float] | None = None,
    ) -> str:
        """Create (or replace) a recurring job; returns the template's jid.

        Give ``interval`` seconds (first spawn at now + offset) or a five-field ``cron``
        expression in UTC (first spawn at the first match >= now + offset). Missed spawns are
        caught up; ``backlog`` > 0 keeps at most backlog + 1 of them.
        """
        if (interval is None) == (cron is None):
            raise InvalidArgument("give exactly one of interval or cron")
        if interval is not None:
            spec, value = "interval", repr(_args.number(interval, "interval"))
            if float(value) <= 0:
                raise InvalidArgument(f"interval must be > 0, got {interval!r}")
        else:
            if not isinstance(cron, str) or not cron.strip():
                raise InvalidArgument(f"cron must be a cron expression, got {cron!r}")
            spec, value = "cron", cron.strip()
        jid = uuid.uuid4().hex if jid is None else _args.name(jid, "jid")
        self.client._call(
            "recur", self.name, jid, _args.klass_path(klass), _args.dumps(data, "data"), spec, value,
            repr(_args.number(offset, "offset")), _args.priority(priority),
            orjson.dumps(_args.names(tags, "tags")).decode(), _args.integer(retries, "retries"),
            _args.integer(backlog, "backlog"), orjson.dumps(_args.names(throttles, "throttles")).decode(),
            _args.backoff(dict(backoff) if isinstance(backoff, Mapping) else backoff),
        )
        return jid

    @property
    def heartbeat(self) -> float:
        """Lease length of this queue (``<queue>-heartbeat``, else ``heartbeat``)."""
        v = self.client.config.get(f"{self.name}-heartbeat")
        if v is None:
            v = self.client.config.get("heartbeat", 60)
        return float(v)

    @heartbeat.setter
    def heartbeat(self, seconds: float) -> None:
        self.client.config[f"{self.name}-heartbeat"] = _args.number(seconds, "heartbeat")

    @property
    def max_concurrency(self) -> int:
        """Most jobs of this queue running at once (``<queue>-max-concurrency``; 0 = no limit)."""
        return int(self.client.config.get(f"{self.name}-max-concurrency", 0) or 0)

    @max_concurrency.setter
    def max_concurrency(self, value: int) -> None:
        self.client.config[f"{self.name}-max-concurrency"] = _args.integer(value, "max_concurrency")

    def forget(self) -> None:
        """Drop the queue from the registry (its jobs are untouched)."""
        self.client._call("queue.forget", self.name)
