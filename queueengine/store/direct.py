"""Commands on a connection of the caller's thread, without redis-py's per-command layers.

redis-py 8 wraps every ``execute_command`` in a pool checkout and release, a retry wrapper,
event dispatch and observability hooks: about 30 µs a call on our benchmark machine, more than
the Lua work of a ``put``. The engine's hot calls (``Client._call``, the reads of ``wait``) go
instead through :class:`Direct`: each thread keeps one connection of the client's own pool and
sends on it directly (``send_command`` + ``read_response``).

Nothing else changes: the connection is the pool's own class (so Sentinel-managed connections
still follow the primary), replies are parsed the same way, a ``ResponseError`` leaves the
connection usable, and on a connection or timeout error the connection is dropped and the call
is made once more through the ordinary redis-py path (with its retry policy). A forked child
gets connections of its own. Only plain ``redis.Redis`` clients take this path; others
(``RedisCluster``) keep redis-py's.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import redis

_RECONNECT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

_pack: Any = None
with contextlib.suppress(ImportError):  # hiredis packs a whole command in C (redis-py's packer
    from hiredis import pack_command as _pack  # first type-checks every argument)


class _Held:
    """One thread's connection, given back to the pool when the thread ends."""

    __slots__ = ("conn", "pid", "pool", "__weakref__")

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.conn: Any = pool.get_connection()
        self.pid = os.getpid()

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
        """Send one command and read its reply (raises the reply's ResponseError)."""
        conn = self._held().conn
        try:
            if _pack is not None:
                try:
                    packed = _pack(args)
                except TypeError as exc:
                    raise redis.exceptions.DataError(str(exc)) from None
                conn.send_packed_command([packed], check_health=False)
            else:
                conn.send_command(*args)
            return conn.read_response()
        except (redis.ResponseError, redis.exceptions.DataError):
            raise
        except _RECONNECT:
            conn.disconnect()
            return self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        except BaseException:
            conn.disconnect()  # interrupted between send and read: the reply must not be read later
            raise

    def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send several commands at once and read their replies in order; an error reply comes
        back as its ``ResponseError`` in the list. A connection error drops the connection and
        propagates (the caller decides what to resend)."""
        conn = self._held().conn
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
