"""RecurringJob: a template that spawns a job every interval or on a cron schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from queueengine.exceptions import InvalidArgument, JobNotFound
from queueengine.store import args as _args
from queueengine.types import JobState, RecurringPayload

if TYPE_CHECKING:
    from queueengine.client import Client


class RecurringJob:
    """A recurring template (``state`` is always ``JobState.RECUR``). Setters update Redis."""

    state = JobState.RECUR

    def __init__(self, client: Client, payload: RecurringPayload) -> None:
        self.client = client
        self._load(payload)

    def _load(self, p: RecurringPayload) -> None:
        self.jid: str = p["jid"]
        self.klass: str = p.get("klass", "")
        self.queue_name: str = p.get("queue", "")
        self._priority = int(p.get("priority", 0))
        self.schedule_type: str = p.get("type") or "interval"
        self._interval: float | None = p.get("interval")
        self._cron: str | None = p.get("cron")
        self._retries = int(p.get("retries", 0))
        self.count: int = int(p.get("count", 0))
        self._data: Any = p.get("data")
        self.tags: list[str] = list(p.get("tags") or [])
        self._backlog = int(p.get("backlog", 0))
        self.throttles: list[str] = list(p.get("throttles") or [])
        self.next: float | None = p.get("next")
        self.due_at: float | None = self.next
        """When the template spawns its next job (epoch seconds), as ``Job.due_at``."""

    def __repr__(self) -> str:
        return f"<RecurringJob {self.jid} {self.klass} in {self.queue_name!r}>"

    def refresh(self) -> RecurringJob:
        """Re-read the template."""
        raw = self.client._call("recur.get", self.jid)
        if raw is None:
            raise JobNotFound(f"recurring job {self.jid} does not exist")
        self._load(cast(RecurringPayload, _args.loads(raw)))
        return self

    def _update(self, key: str, value: Any) -> None:
        self.client._call("recur.update", self.jid, key, value)
        self.refresh()

    @property
    def priority(self) -> int:
        """Priority of spawned jobs."""
        return self._priority

    @priority.setter
    def priority(self, value: int) -> None:
        self._update("priority", _args.priority(value))

    @property
    def retries(self) -> int:
        """Retries of spawned jobs."""
        return self._retries

    @retries.setter
    def retries(self, value: int) -> None:
        self._update("retries", _args.integer(value, "retries"))

    @property
    def interval(self) -> float | None:
        """Seconds between spawns (None for a cron schedule)."""
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        v = _args.number(value, "interval")
        if v <= 0:
            raise InvalidArgument(f"interval must be > 0, got {value!r}")
        self._update("interval", repr(v))

    @property
    def cron(self) -> str | None:
        """The cron expression (None for an interval schedule)."""
        return self._cron

    @cron.setter
    def cron(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"cron must be a cron expression, got {value!r}")
        self._update("cron", value.strip())

    @property
    def backlog(self) -> int:
        """Most missed spawns caught up at once minus one (0 = all)."""
        return self._backlog

    @backlog.setter
    def backlog(self, value: int) -> None:
        self._update("backlog", _args.integer(value, "backlog"))

    @property
    def data(self) -> Any:
        """Data of spawned jobs."""
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._update("data", _args.dumps(value, "data"))

    def set_klass(self, klass: Any) -> None:
        """Change the class of spawned jobs."""
        self._update("klass", _args.klass_path(klass))

    def move(self, queue: str) -> None:
        """Move the template to another queue (keeps its next spawn time)."""
        self._update("queue", _args.name(queue, "queue"))

    def cancel(self) -> None:
        """Stop the schedule (``unrecur``); spawned jobs are untouched."""
        self.client._call("unrecur", self.jid)

    def tag(self, *tags: str) -> list[str]:
        """Add tags to the template (spawned jobs carry them)."""
        self.tags = _args.loads(self.client._call("recur.tag", self.jid, *_args.names(tags, "tags")))
        return self.tags

    def untag(self, *tags: str) -> list[str]:
        """Remove tags from the template."""
        self.tags = _args.loads(self.client._call("recur.untag", self.jid, *_args.names(tags, "tags")))
        return self.tags
