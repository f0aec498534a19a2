"""Pub/sub subscriptions of one namespace that survive reconnects, restarts and failovers.

The engine publishes on two kinds of channels (see ``queueengine/store/keys.py``):

* ``events`` and ``w:<worker>`` are *shard channels*: on a Redis >= 7 cluster node the Lua library
  publishes them with ``SPUBLISH`` (sharded pub/sub: the message stays within the namespace's
  shard instead of crossing the whole cluster bus), elsewhere with ``PUBLISH``;
* ``reply:<jid>`` (and the delivery modes' reply channels) are plain channels everywhere, since
  clients subscribe to them by pattern and sharded pub/sub has no patterns. On a cluster a plain
  message reaches every node, so a subscriber may sit on any of them.

A :class:`Subscriber` (sync) or :class:`AsyncSubscriber` subscribes on a connection pinned to the
namespace's primary (:meth:`queueengine.store.connection.Endpoint.pinned`), uses ``SSUBSCRIBE`` for shard
channels when the server shards them, and when the connection drops (restart, failover, a slot
that moved: the server then sends ``sunsubscribe``) reconnects with exponential backoff (0.05 s
doubling to 2 s) and subscribes again. Messages published while it was away are lost (pub/sub
delivers at most once): ``reconnects`` counts the gaps so a consumer can re-read state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from queueengine.store.connection import Endpoint, is_transient

log = logging.getLogger("queueengine.store.pubsub")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0
CONFIRM_TIMEOUT = 5.0
"""Longest wait for the server to confirm a subscription."""
_DATA = ("message", "pmessage", "smessage")
_CONFIRMS = ("subscribe", "psubscribe", "ssubscribe")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Plan:
    """What to subscribe to, and how (shared by the sync and async subscribers)."""

    def __init__(self, endpoint: Endpoint, channels: Sequence[str], shard_channels: Sequence[str],
                 patterns: Sequence[str]) -> None:
        self.endpoint = endpoint
        self.channels = set(channels)
        self.shard_channels = set(shard_channels)
        self.patterns = set(patterns)
        self._sharded: bool | None = None
        self.reconnects = 0
        self.backoff = BACKOFF_FIRST

    def sharded(self) -> bool:
        if self._sharded is None:
            self._sharded = bool(self.shard_channels) and self.endpoint.sharded()
        return self._sharded

    def lost_shard(self, msg: dict[str, Any]) -> bool:
        """The server dropped one of our shard channels (its slot moved): resubscribe elsewhere."""
        return msg.get("type") == "sunsubscribe" and _text(msg.get("channel")) in self.shard_channels

    def failed(self, exc: BaseException) -> float:
        """Count a lost connection; return the delay before the next attempt."""
        delay = self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        self.reconnects += 1
        self._sharded = None
        level = logging.WARNING if is_transient(exc) or isinstance(exc, OSError) else logging.ERROR
        log.log(level, "pub/sub connection lost (%s); resubscribing in %.2fs", exc, delay)
        return delay


class _Subscription:
    """What both subscribers share: the plan (channels, backoff, reconnect count) and the state
    of the open subscription."""

    def __init__(self, endpoint: Endpoint, channels: Sequence[str], shard_channels: Sequence[str],
                 patterns: Sequence[str]) -> None:
        self._plan = _Plan(endpoint, channels, shard_channels, patterns)
        self._ps: Any = None
        self._retry_at = 0.0
        self._early: list[dict[str, Any]] = []

    @property
    def reconnects(self) -> int:
        """How many times the connection was lost (and re-established) so far."""
        return self._plan.reconnects

    @property
    def subscribed(self) -> bool:
        """True while a confirmed subscription is open (False while it is away, reconnecting)."""
        return self._ps is not None


class Subscriber(_Subscription):
    """A sync subscription (see the module docstring). ``get_message(timeout)`` returns
    ``(channel, data)`` for the next message, or None when ``timeout`` seconds pass."""

    def __init__(self, endpoint: Endpoint, channels: Sequence[str] = (), shard_channels: Sequence[str] = (),
                 patterns: Sequence[str] = ()) -> None:
        super().__init__(endpoint, channels, shard_channels, patterns)
        self._conn: redis.Redis | None = None
        self._closed = False

    def _open(self) -> Any:
        plan = self._plan
        if self._ps is None:
            # no silent reconnect by redis-py: a lost connection reaches get_message, which counts it
            self._conn = plan.endpoint.pinned(socket_timeout=None, retry=Retry(NoBackoff(), 0))
            ps = self._conn.pubsub()  # type: ignore[no-untyped-call]
            try:
                if plan.channels:
                    ps.subscribe(*plan.channels)
                if plan.patterns:
                    ps.psubscribe(*plan.patterns)
                if plan.shard_channels:
                    if plan.sharded():
                        ps.ssubscribe(*plan.shard_channels)
                    else:
                        ps.subscribe(*plan.shard_channels)
                self._ps = ps
                self._confirm(len(plan.channels) + len(plan.patterns) + len(plan.shard_channels))
            except BaseException:
                self._drop()
                raise
        return self._ps

    def _confirm(self, count: int) -> None:
        """Read until the server confirmed ``count`` subscriptions (data that comes first is kept)."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while count > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.exceptions.ConnectionError("no subscription confirmation from Redis")
            msg = self._ps.get_message(timeout=left)
            if msg is None:
                continue
            if msg.get("type") in _CONFIRMS:
                count -= 1
            elif msg.get("type") in _DATA:
                self._early.append(msg)

    def connect(self) -> None:
        """Subscribe now and wait for the server's confirmation; errors propagate."""
        self._open()

    def subscribe(self, *channels: str) -> None:
        """Add plain channels (subscribed, and confirmed, when this returns, unless Redis is away:
        then at the next reconnect)."""
        self._plan.channels.update(channels)
        if self._ps is not None:
            try:
                self._ps.subscribe(*channels)
                self._confirm(len(channels))
            except (redis.exceptions.RedisError, OSError):
                self._drop()

    def unsubscribe(self, *channels: str) -> None:
        """Remove plain channels."""
        self._plan.channels.difference_update(channels)
        if self._ps is not None:
            try:
                self._ps.unsubscribe(*channels)
            except (redis.exceptions.RedisError, OSError):
                self._drop()

    def get_message(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message as ``(channel, data)``, or None after ``timeout`` seconds."""
        end = time.monotonic() + max(0.0, timeout)
        while not self._closed:
            left = end - time.monotonic()
            wait_retry = self._retry_at - time.monotonic()
            if wait_retry > 0:
                if wait_retry >= left:
                    time.sleep(max(0.0, min(left, 0.1)))
                    if time.monotonic() >= end:
                        return None
                    continue
                time.sleep(min(wait_retry, 0.1))
                continue
            try:
                ps = self._open()
                msg = self._early.pop(0) if self._early else ps.get_message(timeout=max(0.0, end - time.monotonic()))
            except (redis.exceptions.RedisError, OSError, ValueError) as exc:
                if self._closed:  # closed from another thread while reading
                    return None
                self._retry_at = time.monotonic() + self._plan.failed(exc)
                self._drop()
                continue
            if msg is not None:
                kind = msg.get("type")
                if kind in _DATA:
                    self._plan.backoff = BACKOFF_FIRST
                    return _text(msg.get("channel")), msg["data"]
                if self._plan.lost_shard(msg):
                    self._retry_at = time.monotonic() + self._plan.failed(
                        redis.exceptions.ConnectionError("the server dropped a shard channel"))
                    self._drop()
                continue
            if time.monotonic() >= end:
                return None
        return None

    def _drop(self) -> None:
        ps, conn, self._ps, self._conn = self._ps, self._conn, None, None
        with contextlib.suppress(Exception):
            if ps is not None:
                ps.close()
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Unsubscribe and release the connection; a ``get_message`` in another thread returns None."""
        self._closed = True
        self._drop()


class AsyncSubscriber(_Subscription):
    """The asyncio twin of :class:`Subscriber` (``await get_message(timeout)``, ``await aclose()``)."""

    def __init__(self, endpoint: Endpoint, channels: Sequence[str] = (), shard_channels: Sequence[str] = (),
                 patterns: Sequence[str] = ()) -> None:
        super().__init__(endpoint, channels, shard_channels, patterns)
        self._conn: Any = None

    async def _open(self) -> Any:
        plan = self._plan
        if self._ps is None:
            sharded = bool(plan.shard_channels) and await asyncio.to_thread(plan.sharded)
            # no silent reconnect by redis-py (its default retry would resubscribe behind our
            # back): a lost connection must reach get_message, which counts the gap
            self._conn = plan.endpoint.asyncio(socket_timeout=None, retry=AsyncRetry(NoBackoff(), 0))
            ps = self._conn.pubsub()
            try:
                if plan.channels:
                    await ps.subscribe(*plan.channels)
                if plan.patterns:
                    await ps.psubscribe(*plan.patterns)
                if plan.shard_channels:
                    if sharded:
                        await ps.ssubscribe(*plan.shard_channels)
                    else:
                        await ps.subscribe(*plan.shard_channels)
                self._ps = ps
                await self._confirm(len(plan.channels) + len(plan.patterns) + len(plan.shard_channels))
            except BaseException:
                await self._drop()
                raise
        return self._ps

    async def _confirm(self, count: int) -> None:
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while count > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.exceptions.ConnectionError("no subscription confirmation from Redis")
            msg = await self._ps.get_message(timeout=left)
            if msg is None:
                continue
            if msg.get("type") in _CONFIRMS:
                count -= 1
            elif msg.get("type") in _DATA:
                self._early.append(msg)

    async def connect(self) -> None:
        """Subscribe now; errors propagate."""
        await self._open()

    async def get_message(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message as ``(channel, data)``, or None after ``timeout`` seconds."""
        end = time.monotonic() + max(0.0, timeout)
        while True:
            left = end - time.monotonic()
            wait_retry = self._retry_at - time.monotonic()
            if wait_retry > 0:
                if wait_retry >= left:
                    await asyncio.sleep(max(0.0, left))
                    return None
                await asyncio.sleep(wait_retry)
                continue
            try:
                ps = await self._open()
                msg = (self._early.pop(0) if self._early
                       else await ps.get_message(timeout=max(0.0, end - time.monotonic())))
            except (redis.exceptions.RedisError, OSError) as exc:
                self._retry_at = time.monotonic() + self._plan.failed(exc)
                await self._drop()
                continue
            if msg is not None:
                kind = msg.get("type")
                if kind in _DATA:
                    self._plan.backoff = BACKOFF_FIRST
                    return _text(msg.get("channel")), msg["data"]
                if self._plan.lost_shard(msg):
                    self._retry_at = time.monotonic() + self._plan.failed(
                        redis.exceptions.ConnectionError("the server dropped a shard channel"))
                    await self._drop()
                continue
            if time.monotonic() >= end:
                return None
            await asyncio.sleep(0)

    async def _drop(self) -> None:
        ps, conn, self._ps, self._conn = self._ps, self._conn, None, None
        with contextlib.suppress(Exception):
            if ps is not None:
                await ps.aclose()
        with contextlib.suppress(Exception):
            if conn is not None:
                await conn.aclose()

    async def aclose(self) -> None:
        """Unsubscribe and release the connection."""
        await self._drop()


__all__ = ["AsyncSubscriber", "Subscriber"]
