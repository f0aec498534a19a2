"""Types of the engine's replies: job states and TypedDicts for the Lua JSON payloads."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from queueengine.job import Job


class JobState(str, Enum):  # noqa: UP042 - the contract says (str, Enum)
    """A job's state as readers see it (a running job whose lease expired is STALLED)."""

    WAITING = "waiting"
    SCHEDULED = "scheduled"
    DEPENDS = "depends"
    THROTTLED = "throttled"
    RUNNING = "running"
    STALLED = "stalled"
    FAILED = "failed"
    COMPLETE = "complete"
    RECUR = "recur"
    CANCELED = "canceled"
    """Local only: what a Job object shows after ``cancel()`` (the record is deleted)."""

    def __str__(self) -> str:
        return self.value


PENDING_STATES = frozenset({JobState.WAITING, JobState.SCHEDULED, JobState.DEPENDS, JobState.THROTTLED})
"""Put but not yet running."""
ACTIVE_STATES = frozenset({JobState.RUNNING, JobState.STALLED})
"""Leased to a worker (STALLED: the lease expired and has not been reclaimed yet)."""
FINISHED_STATES = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.CANCELED})
"""Done, for better or worse; ``Client.wait`` returns or raises on these."""


class HistoryEntry(TypedDict, total=False):
    """One history entry: ``when`` (server time), ``what`` (put, popped, done, failed, ...)."""

    when: float
    what: str
    queue: str
    worker: str
    group: str


class Failure(TypedDict, total=False):
    """A job's failure: group, message, when, worker, queue and (optionally) traceback."""

    group: str
    message: str
    when: float
    worker: str
    queue: str
    traceback: str


class JobPayload(TypedDict, total=False):
    """A job as the Lua library returns it (history and links only from ``get``)."""

    jid: str
    klass: str
    queue: str
    state: str
    worker: str
    priority: int
    expires: float
    retries: int
    remaining: int
    data: Any
    data_unreadable: str
    tags: list[str]
    failure: Failure | None
    exhausted: dict[str, Any] | None
    spawned_from_jid: str | None
    throttles: list[str]
    backoff: dict[str, float] | None
    reply: bool
    result: Any
    time: float
    scheduled: float | None
    due_at: float | None
    tracked: bool
    dependencies: list[str]
    dependents: list[str]
    history: list[HistoryEntry]


class FindResult(TypedDict):
    """``client.jobs.find(...)``: a page of matching jobs, where to go on (None: done), and how
    many index entries were looked at."""

    jobs: list[Job]
    cursor: str | None
    scanned: int


class ClassCount(TypedDict):
    """One entry of ``client.jobs.classes()``: a job class and how many jobs (any state) have it."""

    klass: str
    count: int


class WorkerThroughput(TypedDict):
    """``client.workers.throughput(name)``: jobs the worker completed and failed per minute,
    oldest minute first."""

    done: list[int]
    failed: list[int]


class QueueCounts(TypedDict):
    """``client.queues.counts`` / ``q.counts``."""

    name: str
    waiting: int
    running: int
    stalled: int
    scheduled: int
    depends: int
    recurring: int
    throttled: int
    paused: bool


class Summary(TypedDict):
    """Wait or run statistics of one day: count, mean, std and 148 histogram buckets."""

    count: int
    mean: float
    std: float
    histogram: list[int]


class QueueStats(TypedDict):
    """``q.stats(date)``."""

    wait: Summary
    run: Summary
    failed: int
    failures: int
    retries: int


class WorkerCounts(TypedDict):
    """One entry of ``client.workers.counts``."""

    name: str
    jobs: int
    stalled: int
    last_seen: float
    info: dict[str, Any]


class WorkerDetail(TypedDict):
    """``client.workers[name]``."""

    jobs: list[str]
    stalled: list[str]
    info: dict[str, Any]
    last_seen: float | None


class Tagged(TypedDict):
    """``client.jobs.tagged(tag)``."""

    total: int
    jobs: list[str]


class RecurringPayload(TypedDict, total=False):
    """A recurring template as ``recur.get`` returns it."""

    jid: str
    klass: str
    state: str
    queue: str
    priority: int
    type: str
    interval: float | None
    cron: str | None
    retries: int
    count: int
    data: Any
    tags: list[str]
    backlog: int
    throttles: list[str]
    backoff: dict[str, float] | None
    next: float | None


class HousekeepResult(TypedDict):
    """What one ``client.housekeep()`` pass did."""

    promoted: int
    spawned: int
    reclaimed: int
    expired: int
    failed_expired: int
    workers_pruned: int


class ThrottleInfo(TypedDict):
    """``client.throttles[name].info()``."""

    name: str
    maximum: int
    locks: int
    pending: int


class Percentiles(TypedDict):
    """Wait or run times of a set of jobs, in seconds (None when there are none), read off the
    metrics' log buckets (within 10% of the true value from 0.1 ms to a day)."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class SeriesTimes(TypedDict):
    """Per-bucket wait or run percentiles, each list aligned with ``MetricsSeries["t"]``."""

    count: list[int]
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]
    max: list[float | None]


class MetricsTotals(TypedDict):
    """The counts and percentiles of a whole metrics window."""

    completed: int
    failed: int
    retried: int
    wait: Percentiles
    run: Percentiles


class MetricsSeries(TypedDict):
    """``client.metrics(...)`` / ``q.metrics(...)``: buckets of ``step`` seconds starting at ``t``
    (epoch seconds), with counts and wait/run percentiles per bucket, and the window's totals."""

    step: int
    t: list[int]
    completed: list[int]
    failed: list[int]
    retried: list[int]
    wait: SeriesTimes
    run: SeriesTimes
    totals: MetricsTotals


class ClassMetrics(MetricsTotals):
    """One job class over a window (``client.metrics.by_class``): its totals plus the estimated
    seconds its runs took in all (``run_seconds``)."""

    run_seconds: float


class Histograms(TypedDict):
    """Wait and run bucket counts over a window (``client.metrics.histogram``), one entry per
    bucket of ``queueengine.operator.metrics`` (``BUCKETS`` of them)."""

    wait: list[int]
    run: list[int]


class GroupSeries(TypedDict):
    """Failures per failure group per bucket (``client.metrics.failures``)."""

    step: int
    t: list[int]
    groups: dict[str, list[int]]


class Backlog(TypedDict):
    """A queue's waiting jobs by class (``client.metrics.backlog``): ``total`` waiting, the
    classes of the first ``scanned`` of them in pop order."""

    total: int
    scanned: int
    classes: dict[str, int]


class MetricsCounter(TypedDict):
    """One (queue, class) of ``client.metrics.totals()``: everything recorded since the oldest
    retained hour, never decreasing (what Prometheus counters need). ``rank``: the class's
    first-seen position in the namespace (1, 2, ...)."""

    queue: str
    klass: str
    rank: int
    completed: int
    failed: int
    retried: int
    wait: list[int]
    run: list[int]
