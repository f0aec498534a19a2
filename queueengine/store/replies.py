"""A client's reply inbox: one standing subscription for the results of the jobs it puts.

``Client.wait(jid)`` on a job put without an inbox subscribes to ``reply:<jid>``, reads the
stored state, waits, unsubscribes: three round trips before it even starts waiting. After a
client's first ``wait`` it opens an :class:`Inbox`: a subscription (confirmed by the server
before it is used) to ``inbox:<name>``, a channel of its own. Jobs it then puts with
``reply=True`` name the inbox (the Lua library publishes their reply there as well as on
``reply:<jid>``), so their ``wait`` reads the reply straight from the socket, with no extra round
trip. Replies that arrive for other jobs are kept (a bounded number) for their own ``wait``.

Nothing is lost when pub/sub is (at most once): ``wait`` still re-reads the stored state every
``WAIT_POLL`` seconds, and at once after the subscription had to reconnect. A reply nobody waits
for only takes a slot in the bounded buffer; the socket is drained on every put that names the
inbox, so Redis never holds a backlog for it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson
import redis

if TYPE_CHECKING:
    from queueengine.store.session import Session

KEEP = 10_000
"""Most replies (and expected jids) remembered for waits that have not come yet."""
BACKOFF_MAX = 2.0
_LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class _Channel:
    """One plain channel subscribed on a raw connection (no per-message client-library layers),
    pinned to the namespace's primary; after a lost connection it subscribes again (with
    backoff) and counts the gap in ``reconnects``."""

    def __init__(self, session: Session, channel: str) -> None:
        self.channel = channel
        self.reconnects = 0
        self._pool = session.endpoint.pinned(socket_timeout=None).connection_pool
        self._conn: Any = None
        self._retry_at = 0.0
        self._backoff = 0.05

    def connect(self) -> None:
        """Subscribe and wait for the server's confirmation (errors propagate)."""
        conn: Any = self._pool.make_connection()
        try:
            conn.connect()
            conn.send_command("SUBSCRIBE", self.channel)
            if not conn.can_read(timeout=5.0):
                raise redis.exceptions.ConnectionError("no subscription confirmation from Redis")
            conn.read_response(push_request=True)
        except BaseException:
            conn.disconnect()
            raise
        self._conn = conn
        self._backoff = 0.05

    def get_message(self, timeout: float) -> bytes | None:
        """The next message's data, or None after ``timeout`` seconds (or while reconnecting)."""
        if self._conn is None:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, max(timeout, 0.0)))
                return None
            try:
                self.connect()
            except _LOST:
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
                return None
        try:
            if not self._conn.can_read(timeout=max(timeout, 0.0)):
                return None
            msg = self._conn.read_response(push_request=True)
        except _LOST:
            self._drop()
            return None
        if isinstance(msg, list) and len(msg) == 3 and msg[0] in (b"message", "message"):
            data: bytes = msg[2]
            return data
        return None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.reconnects += 1
        if conn is not None:
            conn.disconnect()

    def close(self) -> None:
        """Release the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()


class Inbox:
    """The subscription and the replies it brought (thread-safe)."""

    def __init__(self, session: Session) -> None:
        self.name = "i" + os.urandom(8).hex()
        self.channel = session.keys.inbox(self.name)
        self._sub = _Channel(session, self.channel)
        self._sub.connect()  # confirmed before any put names the inbox
        self._cond = threading.Condition()
        self._reading = False
        self._replies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._expected: OrderedDict[str, int] = OrderedDict()  # jid -> reconnect count at its put

    def expect(self, jid: str) -> None:
        """``jid`` was put naming this inbox; its reply will come here. Drains the socket."""
        with self._cond:
            self._expected[jid] = self._sub.reconnects
            if len(self._expected) > KEEP:
                self._expected.popitem(last=False)
            busy = self._reading
            if not busy:
                self._reading = True
        if not busy:
            try:
                self._read(0.0)
            finally:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()

    def expects(self, jid: str) -> bool:
        """Whether the reply of ``jid`` comes to this inbox (and the subscription held since)."""
        with self._cond:
            at = self._expected.get(jid)
            return at is not None and at == self._sub.reconnects

    def take(self, jid: str, timeout: float) -> dict[str, Any] | None:
        """The reply of ``jid`` (``{"jid", "state", "result"|"error"}``), waiting up to
        ``timeout`` seconds; None if it did not come in that time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                reply = self._replies.pop(jid, None)
                if reply is not None:
                    self._expected.pop(jid, None)
                    return reply
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self._reading:
                    self._cond.wait(left)  # another thread reads; it wakes us for each reply
                    continue
                self._reading = True
                self._cond.release()
                try:
                    self._read(left)
                finally:
                    self._cond.acquire()
                    self._reading = False
                    self._cond.notify_all()

    def _read(self, timeout: float) -> None:
        """Read what the socket holds (waiting up to ``timeout`` for the first message)."""
        msg = self._sub.get_message(timeout)
        while msg is not None:
            try:
                reply = orjson.loads(msg)
                jid = str(reply["jid"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                reply = None
            if reply is not None:
                with self._cond:
                    self._replies[jid] = reply
                    if len(self._replies) > KEEP:
                        self._replies.popitem(last=False)
            msg = self._sub.get_message(0.0)

    def close(self) -> None:
        """Drop the subscription."""
        self._sub.close()
