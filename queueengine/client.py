"""Client: the entry point to one namespace of the engine (the public API starts here)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
import redis.asyncio

from queueengine.accessors import Config, Jobs, Queues, Throttles, Workers
from queueengine.events import Events
from queueengine.exceptions import InvalidArgument, QueueEngineError
from queueengine.job import Job
from queueengine.operator.api import Operator
from queueengine.operator.metrics import Metrics
from queueengine.operator.views import Views
from queueengine.queue import Queue
from queueengine.store import args as _args
from queueengine.store.connection import connect, endpoint_of, is_transient
from queueengine.store.direct import Direct
from queueengine.store.keys import Keys
from queueengine.store.results import Results
from queueengine.store.session import Session
from queueengine.types import HousekeepResult, JobState


def async_redis(sync: Any, namespace: str = "default") -> redis.asyncio.Redis:
    """An asyncio client to the same server and database as a sync client (on a cluster: to the
    primary serving ``namespace``; with Sentinel: to the current primary)."""
    return endpoint_of(sync, Keys(namespace).prefix).asyncio()


def default_worker_name() -> str:
    """``<host>-<pid>``."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Client:
    """A connection to one namespace of the engine.

    ``clock``: for tests, a callable returning Unix seconds that is passed as *now* to every
    command; without it the Redis server's TIME is used (production).
    """

    def __init__(
        self,
        redis: redis.Redis,
        namespace: str = "default",
        clock: Callable[[], float] | None = None,
        worker_name: str | None = None,
    ) -> None:
        self.namespace = _args.name(namespace, "namespace")
        self.store = Session(redis, self.namespace, clock)
        """The store session every command goes through (internal: ``queueengine.store``)."""
        self.redis = redis
        self.endpoint = self.store.endpoint
        self.clock = clock
        self.worker_name = _args.name(worker_name, "worker_name") if worker_name else default_worker_name()
        self.keys = self.store.keys
        self.prefix = self.store.prefix
        self.lua = self.store.lua
        self.jobs = Jobs(self)
        self.queues = Queues(self)
        self.workers = Workers(self)
        self.config = Config(self)
        self.events = Events(self)
        self.throttles = Throttles(self)
        self.views = Views(self)
        self.operator = Operator(self)
        """Bulk operations, rows of many jobs, failure-group chunks, the dashboard's keys."""
        self.metrics = Metrics(self)
        """Metrics as time series: ``client.metrics(queue=None, klass=None, since=None, until=None,
        step=None)`` and ``client.metrics.by_class(...)`` etc. (``queueengine.operator.metrics``)."""
        self._results = Results(self.store)

    @property
    def retry_for(self) -> float:
        """Seconds reads and puts are retried through an outage (0: not at all); see the README."""
        return self.store.retry_for

    @retry_for.setter
    def retry_for(self, seconds: float) -> None:
        self.store.retry_for = _args.number(seconds, "retry_for")

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = "default",
        clock: Callable[[], float] | None = None,
        worker_name: str | None = None,
        **redis_kwargs: Any,
    ) -> Client:
        """A client on ``url``: ``redis://`` (one server), ``redis+cluster://h:p,h:p`` (Redis
        Cluster) or ``redis+sentinel://h:p,h:p/<service>/<db>`` (see :mod:`queueengine.store.connection`);
        ``redis_kwargs`` are connection options."""
        return cls(connect(url, **redis_kwargs), namespace=namespace, clock=clock, worker_name=worker_name)

    def close(self) -> None:
        """Close the connection pool (and this client's reply listeners and inbox)."""
        self._results.close()
        self.store.close()

    def __repr__(self) -> str:
        return f"<Client namespace={self.namespace!r} worker={self.worker_name!r}>"

    # ------------------------------------------------------------------ calling Lua
    def _now_arg(self) -> str:
        return self.store.now_arg()

    def _call(self, command: str, *args: Any) -> Any:
        return self.store.call(command, *args)

    def _execute(self, *args: Any) -> Any:
        return self.store.execute(*args)

    def __call__(self, command: str, *args: Any) -> Any:
        """Call a Lua command directly (raw reply)."""
        return self._call(command, *args)

    def _pipeline_calls(self, calls: Sequence[tuple[str, Sequence[Any]]], raise_errors: bool) -> list[Any]:
        return self.store.call_many(calls, raise_errors)

    def now(self) -> float:
        """The clock's time, or the Redis server's TIME when there is no clock."""
        return self.store.now()

    # ------------------------------------------------------------------ API
    def queue(self, name: str) -> Queue:
        """Same as ``client.queues[name]``."""
        return Queue(self, name)

    def pop_from(self, queues: Sequence[str], count: int = 1, worker: str | None = None) -> list[Job]:
        """Lease up to ``count`` jobs from ``queues`` in strict priority order (fills from
        queues[0] first) in one Lua call."""
        return self.pop_or_due(queues, count, worker)[0]

    def pop_or_due(self, queues: Sequence[str], count: int = 1,
                   worker: str | None = None) -> tuple[list[Job], float | None]:
        """``pop_from``, plus when it got fewer than ``count`` jobs: the seconds until one of
        the queues may have more (a scheduled job, a recurring spawn, a lease expiry; 0 = now),
        or None when nothing is pending there (paused queues count as empty). One Lua call:
        an idle worker needs no separate ``next_due``."""
        if isinstance(queues, str):
            queues = [queues]
        qs = _args.names(queues, "queues")
        if not qs:
            raise InvalidArgument("queues must name at least one queue")
        _args.integer(count, "count")
        w = _args.name(worker, "worker") if worker is not None else self.worker_name
        reply = self._call("pop", w, count, *qs)
        due = reply[1]
        return [Job.from_row(self, row, w) for row in reply[2:]], (float(due) if due else None)

    def next_due(self, queues: Sequence[str]) -> float | None:
        """Seconds until a scheduled job, recurring spawn or lease expiry in these queues is
        due (0: now), or None when nothing is pending."""
        qs = _args.names([queues] if isinstance(queues, str) else queues, "queues")
        if not qs:
            return None
        raw = self._call("next_due", *qs)
        return None if raw is None else float(raw)

    def wait_for_work(self, queues: Sequence[str], timeout: float) -> bool:
        """Block until a put/promotion/spawn signals one of the queues (True) or ``timeout``
        seconds pass (False). Uses BLPOP on the queues' wake lists."""
        qs = _args.names([queues] if isinstance(queues, str) else queues, "queues")
        t = _args.number(timeout, "timeout")
        keys = [self.keys.wake(q) for q in qs]
        if t <= 0:
            pipe = self.redis.pipeline(transaction=False)
            for k in keys:
                pipe.lpop(k)
            return any(r is not None for r in pipe.execute())
        try:
            return self.store.blocking().execute("BLPOP", *keys, max(t, 0.01)) is not None
        except redis.ResponseError as exc:
            if not str(exc).startswith("UNBLOCKED"):
                raise
            # the server turned into a replica under the wait (failover): reconnect next time
            self.store.drop_blocking()
            return False
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self.store.drop_blocking()
            raise

    def wait_then_pop(self, wait_queues: Sequence[str], timeout: float, queues: Sequence[str], count: int,
                      worker: str | None = None, via: Direct | None = None) -> tuple[list[Job], float | None]:
        """``wait_for_work(wait_queues, timeout)`` and then ``pop_or_due(queues, count, worker)``,
        sent together: Redis runs the pop the moment the BLPOP returns (a put's wake token, or the
        timeout), so the job reaches an idle worker in one round trip instead of two. ``via``: the
        blocking connection to use (a ``queueengine.store.direct.Direct``; default: the client's own)."""
        qs = _args.names([queues] if isinstance(queues, str) else queues, "queues")
        ws = _args.names([wait_queues] if isinstance(wait_queues, str) else wait_queues, "wait_queues")
        t = max(_args.number(timeout, "timeout"), 0.01)
        _args.integer(count, "count")
        w = _args.name(worker, "worker") if worker is not None else self.worker_name
        direct = via if via is not None else self.store.blocking()
        mode = self.lua.mode(self.redis)
        head = ("FCALL", self.lua.function_name) if mode == "function" else ("EVALSHA", self.lua.sha)
        try:
            _, reply = direct.execute_many(("BLPOP", *[self.keys.wake(q) for q in ws], t),
                                           (*head, 1, self.prefix, "pop", self._now_arg(), w, count, *qs))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            if via is None:
                self.store.drop_blocking()
            raise
        if isinstance(reply, redis.ResponseError):
            if self.lua.is_missing(reply) or is_transient(reply):
                self.lua.forget(self.redis)
                return [], 0.0  # pop again the ordinary way (it reloads the library)
            raise self.lua.translate(reply)
        due = reply[1]
        return [Job.from_row(self, row, w) for row in reply[2:]], (float(due) if due else None)

    def heartbeat_many(self, jobs: Sequence[Job]) -> list[float | str]:
        """Extend several leases in one round trip: per job the new expiry, or the error class
        name ('LostLease', 'WrongState', 'JobNotFound') when that lease could not be extended."""
        calls: list[tuple[str, Sequence[Any]]] = [("heartbeat", (job.jid, job.holder, "")) for job in jobs]
        out: list[float | str] = []
        for job, r in zip(jobs, self._pipeline_calls(calls, raise_errors=False), strict=True):
            if isinstance(r, QueueEngineError):
                out.append(type(r).__name__)
            else:
                job.expires_at = float(r)
                out.append(job.expires_at)
        return out

    def complete_many(self, items: Sequence[tuple[Job, Any]]) -> list[str]:
        """Complete several jobs in one round trip. Returns, per job, the new state
        ('complete') or the error kind ('LostLease', 'WrongState', 'JobNotFound', ...) when
        that job could not be completed; the Job objects' state follows."""
        if not items:
            return []
        states: list[str] = _args.loads(self._call("complete_many", *self._completions(items)))
        self._settled(items, states)
        return states

    def complete_and_pop(self, items: Sequence[tuple[Job, Any]], queues: Sequence[str], count: int,
                         worker: str | None = None) -> tuple[list[str], list[Job], float | None]:
        """``complete_many(items)`` and then ``pop_or_due(queues, count, worker)`` in one Lua
        call (one round trip for a worker's finished jobs and its next ones): returns (per-item
        states, jobs, due)."""
        qs = _args.names([queues] if isinstance(queues, str) else queues, "queues")
        if not qs:
            raise InvalidArgument("queues must name at least one queue")
        _args.integer(count, "count")
        w = _args.name(worker, "worker") if worker is not None else self.worker_name
        reply = self._call("complete_pop", *self._completions(items), w, count, *qs)
        states: list[str] = _args.loads(reply[0])
        self._settled(items, states)
        due = reply[2]
        jobs = [Job.from_row(self, row, w) for row in reply[3:]]
        return states, jobs, (float(due) if due else None)

    @staticmethod
    def _completions(items: Sequence[tuple[Job, Any]]) -> list[Any]:
        args: list[Any] = [len(items)]
        for job, result in items:
            args.extend((job.jid, job.holder, job.queue_name, _args.dumps(result, "result")))
        return args

    @staticmethod
    def _settled(items: Sequence[tuple[Job, Any]], states: Sequence[str]) -> None:
        for (job, result), state in zip(items, states, strict=True):
            if state == "complete":
                job.state = JobState.COMPLETE
                job.result = result

    def housekeep(self, queues: Sequence[str] | None = None) -> HousekeepResult:
        """One bounded pass: promote due scheduled jobs, spawn due recurring jobs, reclaim
        expired leases, expire completed/failed jobs by retention, prune dead workers."""
        qs = _args.names(queues, "queues") if queues is not None else []
        return cast(HousekeepResult, _args.loads(self._call("housekeep", *qs)))

    def tags(self, offset: int = 0, count: int = 100) -> list[str]:
        """Tags in use by at least one job, most used first."""
        out: list[str] = _args.loads(self._call(
            "tag", "top", _args.integer(offset, "offset"), _args.integer(count, "count")))
        return out

    def track(self, jid: str) -> None:
        """Track a job."""
        self._call("track", "track", _args.name(jid, "jid"))

    def untrack(self, jid: str) -> None:
        """Stop tracking a job."""
        self._call("track", "untrack", _args.name(jid, "jid"))

    def unfail(self, group: str, queue: str, count: int = 500) -> int:
        """Put up to ``count`` of the oldest jobs of a failure group back into ``queue``."""
        return int(self._call("unfail", _args.name(queue, "queue"), _args.name(group, "group"),
                              _args.integer(count, "count")))

    def cancel(self, *jids: str) -> list[str]:
        """Cancel several jobs at once (a dependency chain must be canceled together)."""
        out: list[str] = _args.loads(self._call("cancel", *_args.names(jids, "jids", _args.existing_name)))
        return out

    # ------------------------------------------------------------------ results
    def _reply_arg(self, jid: str) -> str | int:
        """What ``put(..., reply=True)`` sends as its reply argument (see ``store.results``)."""
        return self._results.reply_arg(jid)

    def wait(self, jid: str, timeout: float | None = None) -> Any:
        """Block until the job finishes; return its result, raise JobFailed (with the stored
        group/message/traceback), WaitTimeout, or JobNotFound.

        Listens on the job's reply channel and re-reads the stored state every
        ``queueengine.store.results.WAIT_POLL`` seconds, so a missed pub/sub message (or a job
        put without ``reply=True``) only delays the answer, never loses it.
        """
        _args.name(jid, "jid")
        if timeout is not None:
            _args.number(timeout, "timeout")
        return self._results.wait(jid, timeout)

    async def await_result(self, jid: str, timeout: float | None = None) -> Any:
        """The asyncio version of ``wait`` (same results and exceptions)."""
        _args.name(jid, "jid")
        if timeout is not None:
            _args.number(timeout, "timeout")
        return await self._results.await_result(jid, timeout)
