"""The client's accessors: ``client.jobs``, ``.queues``, ``.workers``, ``.config``, ``.throttles``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

from queueengine.exceptions import JobNotFound
from queueengine.job import Job
from queueengine.operator import search as _search
from queueengine.queue import Queue
from queueengine.recurring import RecurringJob
from queueengine.store import args as _args
from queueengine.store import options
from queueengine.types import (
    ClassCount,
    FindResult,
    JobPayload,
    JobState,
    QueueCounts,
    RecurringPayload,
    Tagged,
    ThrottleInfo,
    WorkerCounts,
    WorkerDetail,
    WorkerThroughput,
)

if TYPE_CHECKING:
    from queueengine.client import Client


class Jobs:
    """``client.jobs``: look up jobs by jid, tag, tracking, failure group, completion."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getitem__(self, jid: str) -> Job | RecurringJob:
        """The job (or recurring template) with this jid; JobNotFound if there is none."""
        _args.existing_name(jid, "jid")
        raw = self.client._call("get", jid)
        if raw is not None:
            return Job(self.client, cast(JobPayload, _args.loads(raw)))
        raw = self.client._call("recur.get", jid)
        if raw is not None:
            return RecurringJob(self.client, cast(RecurringPayload, _args.loads(raw)))
        raise JobNotFound(f"job {jid} does not exist")

    def __contains__(self, jid: object) -> bool:
        return isinstance(jid, str) and bool(self.client.redis.exists(self.client.keys.job(jid)))

    def get(self, *jids: str) -> list[Job]:
        """The jobs among ``jids`` that exist, in the order given (one round trip)."""
        if not jids:
            return []
        for j in jids:
            _args.existing_name(j, "jid")
        payloads: list[JobPayload | None] = _args.loads(self.client._call("multiget", *jids))
        return [Job(self.client, p) for p in payloads if p]

    def tagged(self, tag: str, offset: int = 0, count: int = 25) -> Tagged:
        """``{"total": n, "jobs": [jid, ...]}`` for a tag, oldest tagged first."""
        _args.name(tag, "tag")
        return cast(Tagged, _args.loads(self.client._call(
            "tag", "get", tag, _args.integer(offset, "offset"), _args.integer(count, "count"))))

    def tracked(self) -> dict[str, Any]:
        """``{"jobs": [Job, ...], "expired": [jid, ...]}``."""
        raw = _args.loads(self.client._call("track"))
        return {"jobs": [Job(self.client, p) for p in raw["jobs"]], "expired": list(raw["expired"])}

    def failed(self, group: str | None = None, start: int = 0, limit: int = 25) -> dict[str, Any]:
        """No group: ``{group: count}``. With a group: ``{"total": n, "jobs": [Job, ...]}``
        (newest failure first)."""
        if group is None:
            out: dict[str, Any] = _args.loads(self.client._call("failed"))
            return out
        _args.name(group, "group")
        raw = _args.loads(self.client._call(
            "failed", group, _args.integer(start, "start"), _args.integer(limit, "limit")))
        return {"total": raw["total"], "jobs": self.get(*raw["jobs"])}

    def complete(self, offset: int = 0, count: int = 25) -> list[str]:
        """Jids of completed jobs, most recent first."""
        out: list[str] = _args.loads(self.client._call(
            "jobs", "complete", _args.integer(offset, "offset"), _args.integer(count, "count")))
        return out

    def find(self, queue: str | None = None, state: str | JobState | None = None, klass: Any = None,
             tag: str | None = None, worker: str | None = None, data: Mapping[str, Any] | None = None,
             text: str | None = None, since: float | dt.datetime | None = None,
             until: float | dt.datetime | None = None, limit: int = 25, cursor: str | None = None) -> FindResult:
        """Jobs in any state matching every filter given: ``{"jobs": [Job, ...], "cursor": str |
        None, "scanned": int}``.

        ``klass`` is a class name (or the class itself) or a prefix ending in ``*``; ``data`` maps
        dotted paths to JSON values (``{"user.id": 7}``: equality); ``text`` is a substring of the
        data's JSON; ``since``/``until`` (epoch seconds or an aware datetime) bound the time of the
        job's last change (put, pop, completion, retry, failure). Page with ``cursor`` (and the
        same arguments) until it is None: every job that matches all along is returned exactly
        once, however other jobs change meanwhile. A page may hold fewer than ``limit`` jobs with
        a cursor when the scan is not done yet (each call's work is bounded). Bad arguments raise
        InvalidArgument naming the argument. See ``queueengine.operator.search``."""
        return _search.find(self.client, queue=queue, state=state, klass=klass, tag=tag, worker=worker, data=data,
                            text=text, since=since, until=until, limit=limit, cursor=cursor)

    def classes(self, queue: str | None = None, prefix: str = "", limit: int = 50) -> list[ClassCount]:
        """The job classes in a queue (or in every queue), optionally starting with ``prefix``, in
        byte order, each with its number of jobs (any state): ``[{"klass", "count"}]``."""
        return _search.classes(self.client, queue, prefix, limit)

    def reindex(self, count: int = 1000, progress: Callable[[int], Any] | None = None) -> int:
        """Add every job record to its queue's class index (``find`` reads it): needed once for
        jobs written by a version without the index. Bounded work per call (a SCAN of about
        ``count`` keys); returns how many records it indexed."""
        return _search.reindex(self.client, count, progress)


class Queues:
    """``client.queues``: ``queues[name]`` and ``queues.counts``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getitem__(self, name: str) -> Queue:
        return Queue(self.client, name)

    def __iter__(self) -> Iterator[Queue]:
        return iter([Queue(self.client, c["name"]) for c in self.counts])

    @property
    def counts(self) -> list[QueueCounts]:
        """Counts of every known queue, in order of first use."""
        return cast(list[QueueCounts], _args.loads(self.client._call("queues")))


class Workers:
    """``client.workers``: the worker registry."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def counts(self) -> list[WorkerCounts]:
        """``[{name, jobs, stalled, last_seen, info}]``, most recently seen first (workers
        unseen for ``max-worker-age`` are pruned first)."""
        return cast(list[WorkerCounts], _args.loads(self.client._call("workers")))

    def __getitem__(self, name: str) -> WorkerDetail:
        """``{"jobs": [jid], "stalled": [jid], "info": {...}, "last_seen": float | None}``."""
        return cast(WorkerDetail, _args.loads(self.client._call("workers", _args.name(name, "worker"))))

    def register(self, name: str, info: dict[str, Any]) -> None:
        """Announce a worker (host, pid, queues, started, concurrency, mode ...)."""
        self.client._call("worker.register", _args.name(name, "worker"), _args.dumps(info, "info"))

    def beat(self, name: str) -> None:
        """An idle worker says it is alive (last_seen = now)."""
        self.client._call("worker.beat", _args.name(name, "worker"))

    def deregister(self, *names: str) -> None:
        """Forget workers."""
        self.client._call("worker.deregister", *_args.names(names, "names"))

    def throughput(self, name: str, minutes: int = 60) -> WorkerThroughput:
        """Jobs the worker completed, and its jobs that failed, per minute over the last
        ``minutes`` (at most 120), oldest minute first."""
        minutes = _args.integer(minutes, "minutes", 1, 120)
        return cast(WorkerThroughput, _args.loads(self.client._call(
            "worker.throughput", _args.existing_name(name, "worker"), minutes)))


ConfigOption = options.Option
"""A known option's meaning, type (``kind``), default (stored text; None: another option's
value applies), range and ``range_text``; per-queue ones are named ``<queue>-<suffix>``."""


@dataclass(frozen=True)
class ConfigEntry:
    """One option as a config page shows it: its ``value`` (the stored text, else the default's,
    "" when it has none), whether it is ``stored`` in Redis, and what it is (``option``: None for
    a free-form option the engine does not read)."""

    name: str
    value: str
    stored: bool
    option: ConfigOption | None

    @property
    def known(self) -> bool:
        """True for an engine option (or a per-queue form of one), False for a free-form one."""
        return self.option is not None


def _decode_value(raw: Any) -> Any:
    text = _args.text(raw)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


class Config(MutableMapping[str, Any]):
    """``client.config``: Qless options, dict-like. Values read back JSON-decoded when they
    parse (``"60"`` -> 60), else as strings; defaults appear for unset options.

    Known options (``queueengine.store.options``) are checked before anything reaches Redis, and
    again in Lua: a value of the wrong type or out of range raises InvalidArgument and changes
    nothing. Other names are free-form (str or finite numbers)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def all(self) -> dict[str, Any]:
        """Every option: defaults overlaid with stored values."""
        raw: dict[str, str] = _args.loads(self.client._call("config.get"))
        return {k: _decode_value(v) for k, v in raw.items()}

    def stored(self, decode: bool = True) -> dict[str, Any]:
        """Only the options set in Redis (no defaults), decoded as ``all()`` does (with
        ``decode=False``: the stored text)."""
        raw: dict[str, str] = _args.loads(self.client._call("config.stored"))
        if not decode:
            return raw
        return {k: _decode_value(v) for k, v in raw.items()}

    def options(self) -> list[ConfigEntry]:
        """Every known namespace-wide option and every stored one (per-queue and free-form
        included), by name, with its value, whether it is stored and what it is: a config page
        in one round trip."""
        stored: dict[str, str] = _args.loads(self.client._call("config.stored"))
        values = {name: option.default or "" for name, option in options.KNOWN.items()}
        values.update(stored)
        return [ConfigEntry(name, value, name in stored, options.lookup(name)) for name, value in sorted(values.items())]

    @staticmethod
    def per_queue_options() -> list[ConfigOption]:
        """The per-queue option forms (``<queue>-heartbeat``, ...), for a page that explains them."""
        return list(options.PER_QUEUE.values())

    @staticmethod
    def describe(name: str) -> ConfigOption | None:
        """The meaning, type, default and range of a known option (or of the per-queue form
        it matches, e.g. ``reports-heartbeat``); None for a free-form option."""
        return options.lookup(name)

    def __getitem__(self, key: str) -> Any:
        raw = self.client._call("config.get", _args.name(key, "option"))
        if raw is None:
            raise KeyError(key)
        return _decode_value(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        name = _args.name(key, "option")
        self.client._call("config.set", name, options.check(name, value))

    def __delitem__(self, key: str) -> None:
        if key not in self.all():
            raise KeyError(key)
        self.client._call("config.unset", _args.name(key, "option"))

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set several options; every value is checked first, so one bad value changes nothing."""
        pairs = list(other.items() if isinstance(other, Mapping) else other) + list(kwargs.items())
        checked = [(_args.name(k, "option"), v) for k, v in pairs]
        texts = [(k, options.check(k, v)) for k, v in checked]
        for name, text in texts:
            self.client._call("config.set", name, text)

    def clear(self) -> None:
        """Every option back to its default (free-form ones removed): one call, one event."""
        self.client._call("config.clear")

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())


class Throttle:
    """A named throttle: ``client.throttles["api"].maximum = 3`` (0 = unlimited)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = _args.name(name, "throttle")

    def info(self) -> ThrottleInfo:
        """``{name, maximum, locks, pending}``."""
        return cast(ThrottleInfo, _args.loads(self.client._call("throttle.get", self.name)))

    @property
    def maximum(self) -> int:
        """Most jobs holding this throttle at once."""
        return self.info()["maximum"]

    @maximum.setter
    def maximum(self, value: int) -> None:
        self.client._call("throttle.set", self.name, _args.integer(value, "maximum"))

    def locks(self) -> list[str]:
        """Jids holding a slot."""
        out: list[str] = _args.loads(self.client._call("throttle.locks", self.name))
        return out

    def pending(self) -> list[str]:
        """Jids waiting for a slot."""
        out: list[str] = _args.loads(self.client._call("throttle.pending", self.name))
        return out

    def delete(self) -> None:
        """Remove the throttle; its waiting jobs go back to their queues."""
        self.client._call("throttle.delete", self.name)


class Throttles:
    """``client.throttles[name]``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getitem__(self, name: str) -> Throttle:
        return Throttle(self.client, name)
