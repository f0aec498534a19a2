"""Read-only views for dashboards: ``client.views`` (the ``view.*`` commands of ``lua/views.lua``).

Each view answers one page in one Lua call: lists are paginated, job data is cut to a preview
and nothing walks a whole set. Several views can share one round trip::

    batch = client.views.batch()
    queues = batch.queues()
    groups = batch.groups(count=10)
    batch.run()                    # one pipelined round trip
    queues.value, groups.value
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar, cast

from queueengine.exceptions import InvalidArgument, QueueEngineError
from queueengine.store import args as _args
from queueengine.types import JobPayload, QueueCounts, QueueStats, ThrottleInfo

if TYPE_CHECKING:
    from queueengine.client import Client

T = TypeVar("T")

LIST_KINDS = frozenset({"waiting", "running", "stalled", "scheduled", "depends", "recurring", "throttled",
                        "complete", "failed", "tagged", "tracked", "worker"})
"""What ``jobs()`` can list: a queue's state set (name = queue), ``complete``, ``failed``
(name = group, or empty for every failed job), ``tagged`` (name = tag), ``tracked``, ``worker``
(name = worker)."""

QUEUE_KINDS = frozenset({"waiting", "running", "stalled", "scheduled", "depends", "recurring", "throttled"})
FILTER_KEYS = frozenset({"klass", "queue", "state", "worker", "tag"})


class FailureSummary(TypedDict):
    """A failure as lists show it (message cut to 300 bytes)."""

    group: str
    message: str
    when: float
    queue: str


class JobSummary(TypedDict, total=False):
    """One row of a job list; ``data`` is a preview of the JSON text, ``data_size`` its length."""

    jid: str
    klass: str
    queue: str
    state: str
    worker: str
    priority: int
    tags: list[str]
    time: float
    expires: float
    scheduled: float | None
    due_at: float | None
    retries: int
    remaining: int
    data: str
    data_size: int
    failure: FailureSummary | None
    missing: bool
    # recurring templates
    type: str
    interval: float | None
    cron: str | None
    count: int
    backlog: int
    next: float | None


class JobPage(TypedDict):
    """A page of a list: ``next`` is the offset of the following page (None at the end)."""

    total: int
    offset: int
    count: int
    filtered: bool
    scanned: int
    next: int | None
    jobs: list[JobSummary]


class QueueView(QueueCounts):
    """A queue's counts plus the oldest waiting job's time, today's totals and per-minute
    throughput (``done`` / ``failed_per_minute``, oldest minute first)."""

    oldest: float | None
    today: dict[str, int]
    done: list[int]
    failed_per_minute: list[int]
    max_concurrency: int


class GroupView(TypedDict):
    """A failure group: size, first and last failure, the newest failure's message."""

    group: str
    count: int
    first_seen: float
    last_seen: float
    message: str
    queue: str
    klass: str
    sample: str


class GroupPage(TypedDict):
    """``{"total": groups, "groups": [...]}``, largest groups first."""

    total: int
    groups: list[GroupView]


class WorkerJob(TypedDict):
    """A job a worker holds: ``started`` is when it was popped, ``expires`` its lease."""

    jid: str
    klass: str
    queue: str
    started: float
    expires: float


class WorkerView(TypedDict):
    """A registered worker, with up to ``jobs_each`` of its jobs."""

    name: str
    last_seen: float
    info: dict[str, Any]
    running: int
    stalled: int
    jobs: list[WorkerJob]


class WorkerPage(TypedDict):
    """``{"total": workers, "workers": [...]}``, most recently seen first."""

    total: int
    workers: list[WorkerView]


class JobView(TypedDict):
    """A whole job (or a recurring template) with its dependencies both ways summarised."""

    job: JobPayload | None
    recurring: JobSummary | None
    dependencies: list[JobSummary]
    dependents: list[JobSummary]


class TrackedStates(TypedDict):
    """States of the most recently tracked jobs (``sampled`` of ``total``)."""

    total: int
    sampled: int
    states: dict[str, int]


@dataclass
class Deferred(Generic[T]):
    """A view's answer, filled in by ``ViewBatch.run()``."""

    command: str
    args: tuple[Any, ...]
    _value: Any = field(default=None, repr=False)
    _done: bool = False

    @property
    def value(self) -> T:
        """The decoded answer (raises the view's error, or if the batch has not run)."""
        if not self._done:
            raise QueueEngineError("the view batch has not run yet")
        if isinstance(self._value, Exception):
            raise self._value
        return cast(T, self._value)


def _page_args(offset: int, count: int) -> tuple[int, int]:
    offset = _args.integer(offset, "offset")
    count = _args.integer(count, "count")
    if offset < 0:
        raise InvalidArgument(f"offset must be >= 0, got {offset}")
    if not 1 <= count <= 500:
        raise InvalidArgument(f"count must be between 1 and 500, got {count}")
    return offset, count


def _filters_arg(filters: Mapping[str, str] | None) -> str:
    if not filters:
        return ""
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise InvalidArgument(f"filters: unknown keys {sorted(unknown)} (use {sorted(FILTER_KEYS)})")
    clean: dict[str, str] = {}
    for key, value in filters.items():
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"filters: {key} must be a non-empty string, got {value!r}")
        clean[key] = value
    return _args.dumps(clean, "filters")


class ViewBatch:
    """Collects views and runs them in one pipelined round trip."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._pending: list[Deferred[Any]] = []

    def _add(self, command: str, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred(command, args)
        self._pending.append(d)
        return d

    def run(self) -> None:
        """Send every collected view at once; errors stay with their Deferred."""
        if not self._pending:
            return
        calls = [(d.command, d.args) for d in self._pending]
        results: list[Any]
        if len(calls) == 1:
            command, args = calls[0]
            try:
                results = [self.client._call(command, *args)]
            except QueueEngineError as exc:
                results = [exc]
        else:
            results = self.client._pipeline_calls(calls, raise_errors=False)
        for d, raw in zip(self._pending, results, strict=True):
            d._value = raw if isinstance(raw, Exception) else _args.loads(raw)
            d._done = True
        self._pending = []

    # ------------------------------------------------------------------ the views
    def jobs(self, kind: str, name: str = "", offset: int = 0, count: int = 25, trunc: int = 200,
             filters: Mapping[str, str] | None = None, scan_cap: int = 5000) -> Deferred[JobPage]:
        """A page of a list (see ``LIST_KINDS``); with ``filters`` (klass, queue, state, worker,
        tag; a value ending in ``*`` matches a prefix) at most ``scan_cap`` entries are looked at."""
        if kind not in LIST_KINDS:
            raise InvalidArgument(f"kind must be one of {sorted(LIST_KINDS)}, got {kind!r}")
        if kind in QUEUE_KINDS or kind in ("tagged", "worker"):
            _args.existing_name(name, {"tagged": "tag", "worker": "worker"}.get(kind, "queue"))
        elif kind == "failed" and name:
            _args.existing_name(name, "group")
        offset, count = _page_args(offset, count)
        trunc = _args.integer(trunc, "trunc")
        if not 0 <= trunc <= 1_048_576:
            raise InvalidArgument(f"trunc must be between 0 and 1048576, got {trunc}")
        scan_cap = _args.integer(scan_cap, "scan_cap")
        if not 1 <= scan_cap <= 20_000:
            raise InvalidArgument(f"scan_cap must be between 1 and 20000, got {scan_cap}")
        return self._add("view.jobs", kind, name or "", offset, count, trunc, _filters_arg(filters), scan_cap)

    def queues(self, minutes: int = 60) -> Deferred[list[QueueView]]:
        """Every known queue with counts, oldest waiting time, today's totals and throughput."""
        minutes = _args.integer(minutes, "minutes")
        if not 1 <= minutes <= 180:
            raise InvalidArgument(f"minutes must be between 1 and 180, got {minutes}")
        return self._add("view.queues", minutes)

    def groups(self, offset: int = 0, count: int = 25) -> Deferred[GroupPage]:
        """Failure groups, largest first."""
        return self._add("view.groups", *_page_args(offset, count))

    def workers(self, offset: int = 0, count: int = 25, jobs_each: int = 10) -> Deferred[WorkerPage]:
        """Workers, most recently seen first, each with up to ``jobs_each`` held jobs."""
        jobs_each = _args.integer(jobs_each, "jobs_each")
        if not 0 <= jobs_each <= 100:
            raise InvalidArgument(f"jobs_each must be between 0 and 100, got {jobs_each}")
        return self._add("view.workers", *_page_args(offset, count), jobs_each)

    def job(self, jid: str, related: int = 100) -> Deferred[JobView]:
        """One job with history, and up to ``related`` dependencies and dependents summarised."""
        related = _args.integer(related, "related")
        if not 0 <= related <= 500:
            raise InvalidArgument(f"related must be between 0 and 500, got {related}")
        return self._add("view.job", _args.existing_name(jid, "jid"), related)

    def recurring(self, offset: int = 0, count: int = 25) -> Deferred[JobPage]:
        """Recurring templates of every queue (``total`` and ``jobs``)."""
        return self._add("view.recurring", *_page_args(offset, count))

    def tracked_states(self, sample: int = 500) -> Deferred[TrackedStates]:
        """How many tracked jobs are in each state, over the ``sample`` most recently tracked."""
        sample = _args.integer(sample, "sample")
        if not 1 <= sample <= 20_000:
            raise InvalidArgument(f"sample must be between 1 and 20000, got {sample}")
        return self._add("view.tracked_states", sample)

    def tags(self, offset: int = 0, count: int = 50) -> Deferred[list[tuple[str, int]]]:
        """Tags in use, most used first, as ``[tag, jobs]`` pairs."""
        return self._add("view.tags", *_page_args(offset, count))

    def stats(self, queue: str, date: float | None = None) -> Deferred[QueueStats]:
        """A queue's wait/run statistics for the UTC day containing ``date`` (default today)."""
        return self._add("stats", _args.existing_name(queue, "queue"), "" if date is None else _args.number(date, "date"))

    def config(self) -> Deferred[dict[str, str]]:
        """Every configuration option (defaults overlaid with stored values), as strings."""
        return self._add("config.get")

    def throttle(self, name: str) -> Deferred[ThrottleInfo]:
        """A named throttle's maximum, holders and waiters."""
        return self._add("throttle.get", _args.name(name, "throttle"))


class Views:
    """``client.views``: one view per call (``client.views.queues()``) or a batch."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def batch(self) -> ViewBatch:
        """A batch of views sent in one round trip by ``run()``."""
        return ViewBatch(self.client)

    def _one(self, deferred_of: Any, *args: Any, **kwargs: Any) -> Any:
        batch = self.batch()
        d = deferred_of(batch)(*args, **kwargs)
        batch.run()
        return d.value

    def jobs(self, kind: str, name: str = "", offset: int = 0, count: int = 25, trunc: int = 200,
             filters: Mapping[str, str] | None = None, scan_cap: int = 5000) -> JobPage:
        """See ``ViewBatch.jobs``."""
        return cast(JobPage, self._one(lambda b: b.jobs, kind, name, offset, count, trunc, filters, scan_cap))

    def queues(self, minutes: int = 60) -> list[QueueView]:
        """See ``ViewBatch.queues``."""
        return cast(list[QueueView], self._one(lambda b: b.queues, minutes))

    def groups(self, offset: int = 0, count: int = 25) -> GroupPage:
        """See ``ViewBatch.groups``."""
        return cast(GroupPage, self._one(lambda b: b.groups, offset, count))

    def workers(self, offset: int = 0, count: int = 25, jobs_each: int = 10) -> WorkerPage:
        """See ``ViewBatch.workers``."""
        return cast(WorkerPage, self._one(lambda b: b.workers, offset, count, jobs_each))

    def job(self, jid: str, related: int = 100) -> JobView:
        """See ``ViewBatch.job``."""
        return cast(JobView, self._one(lambda b: b.job, jid, related))

    def recurring(self, offset: int = 0, count: int = 25) -> JobPage:
        """See ``ViewBatch.recurring``."""
        return cast(JobPage, self._one(lambda b: b.recurring, offset, count))

    def tracked_states(self, sample: int = 500) -> TrackedStates:
        """See ``ViewBatch.tracked_states``."""
        return cast(TrackedStates, self._one(lambda b: b.tracked_states, sample))

    def tags(self, offset: int = 0, count: int = 50) -> list[tuple[str, int]]:
        """See ``ViewBatch.tags``."""
        return cast(list[tuple[str, int]], self._one(lambda b: b.tags, offset, count))
