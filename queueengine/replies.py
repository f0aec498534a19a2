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

from queueengine.pubsub import Subscriber

if TYPE_CHECKING:
    from queueengine.client import Client

KEEP = 10_000
"""Most replies (and expected jids) remembered for waits that have not come yet."""


class Inbox:
    """The subscription and the replies it brought (thread-safe)."""

    def __init__(self, client: Client) -> None:
        self.name = "i" + os.urandom(8).hex()
        self.channel = client.keys.inbox(self.name)
        self._sub = Subscriber(client.endpoint, channels=(self.channel,))
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
                reply = orjson.loads(msg[1])
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
