"""A session with one namespace of the store: how every Lua command reaches Redis.

``Session`` owns the connection, the namespace's keys, the Lua library and the clock, and is
the one place that sends commands: ``call`` (one command, retried through an outage when it is
safe to repeat, see ``queueengine.store.outages``), ``call_many`` (several in one pipelined
round trip), ``execute`` (a plain Redis command on this thread's own socket) and the blocking
connection idle workers wait on. The public API (``queueengine.Client`` and the objects it
hands out) is built on it. Two plain pipelined reads serve the operator API
(``queueengine.operator``) where a script would hold Redis for a whole chunk: ``job_rows``
(many job records) and ``failure_group_tail`` (a failure group's oldest jids).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis

from queueengine.exceptions import QueueEngineError
from queueengine.store.connection import endpoint_of, is_transient
from queueengine.store.direct import Direct
from queueengine.store.keys import Keys
from queueengine.store.outages import RETRY_FOR, repeat_call, repeat_safe
from queueengine.store.scripts import LuaLibrary, library


class Session:
    """Commands to one namespace: ``call``, ``call_many``, ``execute``, ``now``, blocking waits.

    ``clock``: for tests, a callable returning Unix seconds that is passed as *now* to every
    command; without it the Lua code reads the Redis server's TIME (production)."""

    def __init__(self, conn: redis.Redis, namespace: str, clock: Callable[[], float] | None = None) -> None:
        self.redis = conn
        self.namespace = namespace
        self.keys = Keys(namespace)
        self.prefix = self.keys.prefix
        self.endpoint = endpoint_of(conn, self.prefix)
        self.clock = clock
        self.lua: LuaLibrary = library()
        self.retry_for = RETRY_FOR
        self.direct = Direct(conn) if Direct.usable(conn) else None
        self._blocking_conn: redis.Redis | None = None
        self._blocking_direct: Direct | None = None
        self.local = threading.local()

    def now_arg(self) -> str:
        """The *now* argument of a command: empty (Redis TIME) unless a test clock is set."""
        return "" if self.clock is None else repr(float(self.clock()))

    def now(self) -> float:
        """The clock's time, or the Redis server's TIME when there is no clock."""
        if self.clock is not None:
            return float(self.clock())
        sec, usec = self.redis.time()
        return sec + usec / 1_000_000

    def call(self, command: str, *args: Any) -> Any:
        """Run one Lua command (raw reply); a repeat-safe one is retried through an outage."""
        try:
            return self.lua.call(self.redis, self.prefix, command, self.now_arg(), *args, via=self.direct)
        except Exception as exc:
            if self.retry_for <= 0 or not is_transient(exc) or not repeat_safe(command):
                raise
            return self._call_again(command, args, exc)

    def _call_again(self, command: str, args: tuple[Any, ...], first: BaseException) -> Any:
        return repeat_call(lambda again: self.lua.call(self.redis, self.prefix, command, self.now_arg(), *again,
                                                       via=self.direct), command, args, first, self.retry_for)

    def execute(self, *args: Any) -> Any:
        """A plain Redis command on this thread's own connection (see ``queueengine.store.direct``)."""
        if self.direct is not None:
            return self.direct.execute(*args)
        return self.redis.execute_command(*args)  # type: ignore[no-untyped-call]

    def call_many(self, calls: Sequence[tuple[str, Sequence[Any]]], raise_errors: bool) -> list[Any]:
        """Run several Lua commands in one round trip; errors become exceptions in the list
        (or are raised when ``raise_errors``)."""
        results: list[Any] = []
        for attempt in range(2):
            mode = self.lua.mode(self.redis)
            pipe = self.redis.pipeline(transaction=False)
            for command, args in calls:
                self.lua.send(pipe, mode, self.prefix, command, self.now_arg(), *args)
            try:
                results = pipe.execute(raise_on_error=False)
            except Exception as exc:
                if self.retry_for <= 0 or not is_transient(exc) or not all(repeat_safe(c) for c, _ in calls):
                    raise
                return [self._call_again(command, tuple(args), exc) for command, args in calls]
            missing = [self.lua.is_missing(r) for r in results if isinstance(r, Exception)]
            if attempt == 0 and any(missing):
                self.lua.reload(self.redis)
                if all(missing) and len(missing) == len(results):
                    continue
                raise QueueEngineError("the server lost the engine's Lua code mid-pipeline; retry the call")
            break
        return [self._translated(r, raise_errors) for r in results]

    def _translated(self, reply: Any, raise_errors: bool) -> Any:
        if not isinstance(reply, redis.ResponseError):
            return reply
        if is_transient(reply):
            raise reply
        err = self.lua.translate(reply)
        if raise_errors:
            raise err
        return err

    # ------------------------------------------------------------------ plain pipelined reads
    def job_rows(self, jids: Sequence[str], fields: Sequence[str]) -> list[list[Any]]:
        """``fields`` of each job's record (``j:<jid>``), in one pipelined round trip of HMGETs:
        no script holds Redis for the whole batch. A missing job gives a row of Nones."""
        if not jids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for jid in jids:
            pipe.hmget(self.keys.job(jid), list(fields))
        return [list(row) for row in pipe.execute()]

    def failure_group_tail(self, group: str, skip: int, count: int) -> tuple[int, list[str]]:
        """The size of failure group ``group`` and up to ``count`` of its jids, oldest first,
        after the ``skip`` oldest, in one round trip. The group's list (``f:<group>``) holds the
        newest first, so this reads from its end: the cost is the chunk, not the group's size,
        and failures added meanwhile do not shift it."""
        key = self.keys.key("f:" + group)
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(key)
        if count > 0:
            pipe.lrange(key, -(skip + count), -(skip + 1))
        replies = pipe.execute()
        raw = replies[1] if count > 0 else []
        return int(replies[0]), [j.decode() if isinstance(j, bytes) else str(j) for j in reversed(raw)]

    # ------------------------------------------------------------------ blocking waits
    def blocking(self) -> Direct:
        """The socket for blocking commands: its own pool without a socket timeout, pinned to
        the namespace's primary (its slot's owner on a cluster, Sentinel's primary)."""
        conn = self._blocking_conn
        if conn is None:
            conn = self._blocking_conn = self.endpoint.pinned(socket_timeout=None)
        direct = self._blocking_direct
        if direct is None or direct.client is not conn:
            direct = self._blocking_direct = Direct(conn)
        return direct

    def drop_blocking(self) -> None:
        """Forget the blocking connection (after an error or a failover): made again next time."""
        self._blocking_direct = None
        conn, self._blocking_conn = self._blocking_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Close the blocking connection and the pool."""
        self.drop_blocking()
        self.redis.close()
