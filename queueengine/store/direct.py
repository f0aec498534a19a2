"""Commands on a connection of the caller's thread, without redis-py's per-command layers.

redis-py 8 wraps every ``execute_command`` in a pool checkout and release, a retry wrapper,
event dispatch and observability hooks: about 30 µs a call on our benchmark machine, more than
the Lua work of a ``put``. The engine's hot calls (``Client._call``, the reads of ``wait``) go
instead through :class:`Direct`: each thread keeps one connection of the client's own pool and
sends on it directly (``send_command`` + ``read_response``).

Nothing else changes: the connection is the pool's own class (so Sentinel-managed connections
still follow the primary), replies are parsed the same way, a ``ResponseError`` leaves the
connection usable. A forked child gets connections of its own. Only plain ``redis.Redis``
clients take this path; others (``RedisCluster``) keep redis-py's.

A command is never sent twice when it may have run once. A connection unused for
``IDLE_CHECK`` seconds is first checked for a close by the server (a restart, an idle timeout,
a failover) and made anew, so the usual stale socket costs nothing. When the connect or the
write fails, nothing reached the server and the command is sent once more on a new connection.
When the reply is lost after the command was written (a network blip, a server killed
mid-call), the command may have run: the connection is dropped and the error raised, and the
caller decides (``Session.call`` repeats only what is safe to repeat, see
``queueengine.store.outages``), so a pop or a completion is not done twice.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import redis

_RECONNECT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
IDLE_CHECK = 1.0
"""Seconds a connection may sit unused before it is checked for a close by the server."""

_pack: Any = None
with contextlib.suppress(ImportError):  # hiredis packs a whole command in C (redis-py's packer
    from hiredis import pack_command as _pack  # first type-checks every argument)


class _Held:
    """One thread's connection, given back to the pool when the thread ends."""

    __slots__ = ("conn", "pid", "pool", "used", "__weakref__")

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.conn: Any = pool.get_connection()
        self.pid = os.getpid()
        self.used = time.monotonic()

    def fresh(self) -> Any:
        """The connection, made anew first if it sat unused and the server has closed it."""
        now = time.monotonic()
        if now - self.used > IDLE_CHECK:
            try:
                closed = self.conn.can_read(timeout=0)  # an idle connection has nothing to read
            except (*_RECONNECT, OSError):
                closed = True
            if closed:
                self.conn.disconnect()  # the next send connects again
        self.used = now
        return self.conn

    def __del__(self) -> None:
        try:
            if self.pid == os.getpid():
                self.pool.release(self.conn)
        except Exception:  # noqa: S110 - interpreter shutdown, pool already closed
            pass


class Direct:
    """``execute(*args)`` on the calling thread's own connection of ``client``'s pool."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.pool = client.connection_pool
        self._local = threading.local()

    @staticmethod
    def usable(client: Any) -> bool:
        """Whether ``client`` is a plain ``redis.Redis`` on a pool this path can share."""
        return isinstance(client, redis.Redis) and hasattr(getattr(client, "connection_pool", None),
                                                           "get_connection")

    def _held(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = _Held(self.pool)
            self._local.held = held
        return held

    def execute(self, *args: Any) -> Any:
        """Send one command and read its reply (raises the reply's ResponseError). A lost reply
        raises the connection error: the command may have run (see the module's docstring)."""
        conn = self._held().fresh()
        try:
            try:
                self._send(conn, args)
            except _RECONNECT:
                conn.disconnect()  # nothing reached the server: send it once more, on a new connection
                self._send(conn, args)
            return conn.read_response()
        except (redis.ResponseError, redis.exceptions.DataError):
            raise
        except BaseException:
            conn.disconnect()  # interrupted between send and read: the reply must not be read later
            raise

    @staticmethod
    def _send(conn: Any, args: tuple[Any, ...]) -> None:
        if _pack is None:
            conn.send_command(*args)
            return
        try:
            packed = _pack(args)
        except TypeError as exc:
            raise redis.exceptions.DataError(str(exc)) from None
        conn.send_packed_command([packed], check_health=False)

    def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send several commands at once and read their replies in order; an error reply comes
        back as its ``ResponseError`` in the list. A connection error drops the connection and
        propagates (the caller decides what to resend)."""
        conn = self._held().fresh()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            out: list[Any] = []
            for _ in commands:
                try:
                    out.append(conn.read_response())
                except redis.ResponseError as exc:
                    out.append(exc)
            return out
        except BaseException:
            conn.disconnect()
            raise

    # the two calls LuaLibrary.send makes on its target
    def fcall(self, *args: Any) -> Any:
        """``FCALL function numkeys key... arg...``."""
        return self.execute("FCALL", *args)

    def evalsha(self, *args: Any) -> Any:
        """``EVALSHA sha numkeys key... arg...``."""
        return self.execute("EVALSHA", *args)
