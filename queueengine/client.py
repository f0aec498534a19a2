"""Client: the entry point. Owns the Redis connection and calls the Lua library."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
import redis
import redis.asyncio

from queueengine import _args
from queueengine._direct import Direct
from queueengine.accessors import Config, Jobs, Queues, Throttles, Workers
from queueengine.connection import connect, endpoint_of, is_transient
from queueengine.events import Events
from queueengine.exceptions import (
    InvalidArgument,
    JobFailed,
    JobNotFound,
    QueueEngineError,
    WaitTimeout,
)
from queueengine.job import Job
from queueengine.keys import Keys
from queueengine.outages import RETRY_FOR, repeat_call, repeat_safe
from queueengine.pubsub import AsyncSubscriber, Subscriber
from queueengine.queue import Queue
from queueengine.replies import Inbox
from queueengine.scripts import LuaLibrary, library, pool_id
from queueengine.types import (
    HousekeepResult,
    JobState,
)
from queueengine.views import Views

WAIT_POLL = 0.5
"""Seconds between reads of the stored state while ``wait`` listens for the reply."""


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

    _blocking_conn: redis.Redis | None

    def __init__(
        self,
        redis: redis.Redis,
        namespace: str = "default",
        clock: Callable[[], float] | None = None,
        worker_name: str | None = None,
    ) -> None:
        self.redis = redis
        self.namespace = _args.name(namespace, "namespace")
        self.endpoint = endpoint_of(redis, Keys(self.namespace).prefix)
        self.clock = clock
        self.worker_name = _args.name(worker_name, "worker_name") if worker_name else default_worker_name()
        self.keys = Keys(self.namespace)
        self.prefix = self.keys.prefix
        self.lua: LuaLibrary = library()
        self.jobs = Jobs(self)
        self.queues = Queues(self)
        self.workers = Workers(self)
        self.config = Config(self)
        self.events = Events(self)
        self.throttles = Throttles(self)
        self.views = Views(self)
        self._local = threading.local()
        self._blocking_conn = None
        self._direct = Direct(redis) if Direct.usable(redis) else None
        self._blocking_direct: Direct | None = None
        self._inbox: Inbox | None = None
        self._inbox_lock = threading.Lock()
        self.retry_for = RETRY_FOR
        """Seconds reads and puts are retried through an outage (0: not at all); see the README."""

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
        Cluster) or ``redis+sentinel://h:p,h:p/<service>/<db>`` (see :mod:`queueengine.connection`);
        ``redis_kwargs`` are connection options."""
        return cls(connect(url, **redis_kwargs), namespace=namespace, clock=clock, worker_name=worker_name)

    def close(self) -> None:
        """Close the connection pool (and this thread's reply listener, the reply inbox)."""
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            inbox.close()
        ps = getattr(self._local, "pubsub", None)
        if ps is not None:
            ps.close()
            self._local.pubsub = None
        blocking = self._blocking_conn
        if blocking is not None:
            blocking.close()
            self._blocking_conn = None
        self.redis.close()

    def __repr__(self) -> str:
        return f"<Client namespace={self.namespace!r} worker={self.worker_name!r}>"

    # ------------------------------------------------------------------ calling Lua
    def _now_arg(self) -> str:
        return "" if self.clock is None else repr(float(self.clock()))

    def _call(self, command: str, *args: Any) -> Any:
        try:
            return self.lua.call(self.redis, self.prefix, command, self._now_arg(), *args, via=self._direct)
        except Exception as exc:
            if self.retry_for <= 0 or not is_transient(exc) or not repeat_safe(command):
                raise
            return self._call_again(command, args, exc)

    def _call_again(self, command: str, args: tuple[Any, ...], first: BaseException) -> Any:
        """Retry a repeat-safe command through an outage (see ``queueengine.connection.repeat_call``)."""
        return repeat_call(lambda again: self.lua.call(self.redis, self.prefix, command, self._now_arg(), *again,
                                                       via=self._direct), command, args, first, self.retry_for)

    def _execute(self, *args: Any) -> Any:
        """A plain Redis command on this thread's own connection (see queueengine._direct)."""
        if self._direct is not None:
            return self._direct.execute(*args)
        return self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    def __call__(self, command: str, *args: Any) -> Any:
        """Call a Lua command directly (raw reply)."""
        return self._call(command, *args)

    def _pipeline_calls(self, calls: Sequence[tuple[str, Sequence[Any]]], raise_errors: bool) -> list[Any]:
        """Run several commands in one round trip; errors become exceptions in the list
        (or are raised when ``raise_errors``)."""
        results: list[Any] = []
        for attempt in range(2):
            mode = self.lua.mode(self.redis)
            pipe = self.redis.pipeline(transaction=False)
            for command, args in calls:
                self.lua.send(pipe, mode, self.prefix, command, self._now_arg(), *args)
            try:
                results = pipe.execute(raise_on_error=False)
            except Exception as exc:
                if self.retry_for <= 0 or not is_transient(exc) or not all(repeat_safe(c) for c, _ in calls):
                    raise
                return [self._call_again(command, tuple(args), exc) for command, args in calls]
            missing = [self.lua.is_missing(r) for r in results if isinstance(r, Exception)]
            if attempt == 0 and any(missing):
                self.lua._modes[pool_id(self.redis)] = self.lua.load(self.redis)
                if all(missing) and len(missing) == len(results):
                    continue
                raise QueueEngineError("the server lost the engine's Lua code mid-pipeline; retry the call")
            break
        out: list[Any] = []
        for r in results:
            if isinstance(r, redis.ResponseError) and is_transient(r):
                raise r
            if isinstance(r, redis.ResponseError):
                err = self.lua.translate(r)
                if raise_errors:
                    raise err
                out.append(err)
            else:
                out.append(r)
        return out

    def now(self) -> float:
        """The clock's time, or the Redis server's TIME when there is no clock."""
        if self.clock is not None:
            return float(self.clock())
        sec, usec = self.redis.time()
        return sec + usec / 1_000_000

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
            conn = self._blocking()
            direct = self._blocking_direct
            if direct is None or direct.client is not conn:
                direct = self._blocking_direct = Direct(conn)
            return direct.execute("BLPOP", *keys, max(t, 0.01)) is not None
        except redis.ResponseError as exc:
            if not str(exc).startswith("UNBLOCKED"):
                raise
            # the server turned into a replica under the wait (failover): reconnect next time
            self._drop_blocking()
            return False
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self._drop_blocking()
            raise

    def wait_then_pop(self, wait_queues: Sequence[str], timeout: float, queues: Sequence[str], count: int,
                      worker: str | None = None, via: Direct | None = None) -> tuple[list[Job], float | None]:
        """``wait_for_work(wait_queues, timeout)`` and then ``pop_or_due(queues, count, worker)``,
        sent together: Redis runs the pop the moment the BLPOP returns (a put's wake token, or the
        timeout), so the job reaches an idle worker in one round trip instead of two. ``via``: the
        blocking connection to use (a ``queueengine._direct.Direct``; default: the client's own)."""
        qs = _args.names([queues] if isinstance(queues, str) else queues, "queues")
        ws = _args.names([wait_queues] if isinstance(wait_queues, str) else wait_queues, "wait_queues")
        t = max(_args.number(timeout, "timeout"), 0.01)
        _args.integer(count, "count")
        w = _args.name(worker, "worker") if worker is not None else self.worker_name
        direct = via
        if direct is None:
            conn = self._blocking()
            direct = self._blocking_direct
            if direct is None or direct.client is not conn:
                direct = self._blocking_direct = Direct(conn)
        mode = self.lua.mode(self.redis)
        head = ("FCALL", self.lua.function_name) if mode == "function" else ("EVALSHA", self.lua.sha)
        try:
            _, reply = direct.execute_many(("BLPOP", *[self.keys.wake(q) for q in ws], t),
                                           (*head, 1, self.prefix, "pop", self._now_arg(), w, count, *qs))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            if via is None:
                self._drop_blocking()
            raise
        if isinstance(reply, redis.ResponseError):
            if self.lua.is_missing(reply) or is_transient(reply):
                self.lua.forget(self.redis)
                return [], 0.0  # pop again the ordinary way (it reloads the library)
            raise self.lua.translate(reply)
        due = reply[1]
        return [Job.from_row(self, row, w) for row in reply[2:]], (float(due) if due else None)

    def _blocking(self) -> redis.Redis:
        """A client on its own pool without a socket timeout, for blocking commands; pinned to
        the namespace's primary (its slot's owner on a cluster, Sentinel's primary)."""
        conn = self._blocking_conn
        if conn is None:
            conn = self.endpoint.pinned(socket_timeout=None)
            self._blocking_conn = conn
        return conn

    def _drop_blocking(self) -> None:
        self._blocking_direct = None
        conn, self._blocking_conn = self._blocking_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

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
        """What ``put(..., reply=True)`` sends as its reply argument: the inbox's name once this
        client has one (then the reply is expected there), else 1."""
        inbox = self._inbox
        if inbox is None:
            return 1
        inbox.expect(jid)
        return inbox.name

    def _open_inbox(self) -> Inbox | None:
        """The reply inbox, opened on first use (None when Redis refuses the subscription)."""
        inbox = self._inbox
        if inbox is None:
            with self._inbox_lock:
                inbox = self._inbox
                if inbox is None:
                    try:
                        inbox = self._inbox = Inbox(self)
                    except (redis.RedisError, OSError):
                        return None
        return inbox

    def _finished(self, jid: str) -> tuple[bool, Any]:
        state, result, failure = self._execute("HMGET", self.keys.job(jid), "state", "result", "failure")
        if state is None:
            raise JobNotFound(f"job {jid} does not exist")
        if state == b"complete":
            return True, orjson.loads(result) if result else None
        if state == b"failed":
            raise JobFailed(jid, orjson.loads(failure) if failure else None)
        return False, None

    @staticmethod
    def _from_reply(jid: str, data: bytes) -> Any:
        msg = orjson.loads(data)
        if msg.get("state") == "failed":
            raise JobFailed(jid, msg.get("error"))
        return msg.get("result")

    def wait(self, jid: str, timeout: float | None = None) -> Any:
        """Block until the job finishes; return its result, raise JobFailed (with the stored
        group/message/traceback), WaitTimeout, or JobNotFound.

        Listens on the job's reply channel and re-reads the stored state every WAIT_POLL
        seconds, so a missed pub/sub message (or a job put without ``reply=True``) only
        delays the answer, never loses it.
        """
        _args.name(jid, "jid")
        if timeout is not None:
            _args.number(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        inbox = self._inbox
        if inbox is not None and inbox.expects(jid):
            return self._wait_inbox(inbox, jid, timeout, deadline)
        self._open_inbox()  # the jobs this client puts from now on reply to it
        done, value = self._finished(jid)
        if done:
            return value
        channel = self.keys.reply(jid)
        pubsub = self._reply_pubsub()
        pubsub.subscribe(channel)
        try:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.connect()  # subscribed before the state is read again (else get_message retries)
            while True:
                try:
                    done, value = self._finished(jid)
                except redis.RedisError as exc:  # Redis restarting / failing over: read again later
                    if not is_transient(exc):
                        raise
                    done = False
                if done:
                    return value
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WaitTimeout(f"job {jid} did not finish within {timeout} s")
                step = WAIT_POLL if left is None else min(WAIT_POLL, left)
                end = time.monotonic() + step
                while True:
                    msg = pubsub.get_message(timeout=max(0.0, end - time.monotonic()))
                    if msg is not None and msg[0] == channel:
                        return self._from_reply(jid, msg[1])
                    if time.monotonic() >= end:
                        break
        finally:
            pubsub.unsubscribe(channel)

    def _wait_inbox(self, inbox: Inbox, jid: str, timeout: float | None, deadline: float | None) -> Any:
        """``wait`` for a job whose reply comes to the inbox: read it there; re-read the stored
        state every WAIT_POLL seconds (and at once if the subscription had to reconnect)."""
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = WAIT_POLL if left is None else max(0.0, min(WAIT_POLL, left))
            if inbox.expects(jid):
                reply = inbox.take(jid, step)
                if reply is not None:
                    if reply.get("state") == "failed":
                        raise JobFailed(jid, reply.get("error"))
                    return reply.get("result")
            else:
                time.sleep(min(step, 0.05))
            try:
                done, value = self._finished(jid)
            except redis.RedisError as exc:  # Redis restarting / failing over: read again later
                if not is_transient(exc):
                    raise
                done = False
            if done:
                return value
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {jid} did not finish within {timeout} s")

    def _reply_pubsub(self) -> Subscriber:
        """A per-thread subscription kept for ``wait`` (subscribing is cheap, connecting is not)."""
        ps: Subscriber | None = getattr(self._local, "pubsub", None)
        if ps is None:
            ps = Subscriber(self.endpoint)
            self._local.pubsub = ps
        return ps

    async def await_result(self, jid: str, timeout: float | None = None) -> Any:
        """The asyncio version of ``wait`` (same results and exceptions)."""
        _args.name(jid, "jid")
        if timeout is not None:
            _args.number(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        conn = self.endpoint.asyncio()
        pubsub = AsyncSubscriber(self.endpoint, channels=(self.keys.reply(jid),))
        with contextlib.suppress(redis.RedisError, OSError):
            await pubsub.connect()
        key = self.keys.job(jid)
        try:
            while True:
                try:
                    state, result, failure = await conn.hmget(key, ["state", "result", "failure"])
                except redis.RedisError as exc:  # Redis restarting / failing over: read again later
                    if not is_transient(exc):
                        raise
                    state = result = failure = b"?"
                if state is None:
                    raise JobNotFound(f"job {jid} does not exist")
                if state == b"complete":
                    return orjson.loads(result) if result else None
                if state == b"failed":
                    raise JobFailed(jid, orjson.loads(failure) if failure else None)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise WaitTimeout(f"job {jid} did not finish within {timeout} s")
                step = WAIT_POLL if left is None else min(WAIT_POLL, left)
                end = time.monotonic() + step
                while time.monotonic() < end:
                    msg = await pubsub.get_message(timeout=max(0.0, end - time.monotonic()))
                    if msg is not None:
                        return self._from_reply(jid, msg[1])
                    await asyncio.sleep(0)
        finally:
            await pubsub.aclose()
            await conn.aclose()
