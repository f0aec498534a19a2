"""Engine events: one JSON message per state transition on ``qe:{ns}:events``.

Message shape: ``{"e": name, "jid": ..., "q": queue, "t": server time, ...extra}``. Names:
put, popped, heartbeat, completed, advanced, failed, retried, stalled, lock_lost, canceled,
moved, priority, tagged, untagged, tracked, untracked, paused, unpaused, recurring (a spawn),
recur, unrecur, config, depends, undepended, scheduled (promoted to waiting), throttled,
unthrottled, throttle, expired, worker, imported (queueengine.migrate: one per queue and call).

Applications may publish their own events on the same channel with ``client.events.publish``,
under names that begin with ``dashboard.`` (the dashboard's ``dashboard.op``): the engine's names
are refused, so a listener can trust them. ``client.events.stream()`` is an asyncio subscription
that counts its reconnects (the live dashboard's bridge reads it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from queueengine.exceptions import InvalidArgument
from queueengine.store import args as _args
from queueengine.store.pubsub import AsyncSubscriber, Subscriber

if TYPE_CHECKING:
    from queueengine.client import Client


APPLICATION_PREFIX = "dashboard."
"""Events published with ``Events.publish`` are named ``dashboard.<something>``."""
_RESERVED_FIELDS = frozenset({"e", "t", "q"})


@dataclass(frozen=True)
class Event:
    """One engine event."""

    name: str
    jid: str | None
    queue: str | None
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes | str) -> Event:
        """Build an Event from a message on the events channel."""
        d: dict[str, Any] = orjson.loads(raw)
        name = str(d.pop("e", ""))
        jid = d.pop("jid", None)
        queue = d.pop("q", None)
        t = float(d.pop("t", 0) or 0)
        return cls(name=name, jid=jid, queue=queue, time=t, data=d)


class Subscription:
    """A background thread calling a function for each event; ``stop()`` ends it."""

    def __init__(self, events: Events, callback: Callable[[Event], Any], names: frozenset[str] | None) -> None:
        self._stop = threading.Event()
        self._events = events
        self._callback = callback
        self._names = names
        self.thread = threading.Thread(target=self._run, name="queueengine-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for event in self._events.listen(timeout=None, stop=self._stop):
            if self._names is None or event.name in self._names:
                self._callback(event)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop listening and wait for the thread."""
        self._stop.set()
        self.thread.join(timeout)


class EventStream:
    """An asyncio subscription to the namespace's events that survives Redis restarts and
    failovers (it resubscribes by itself with backoff). Events published while it was away are
    lost: ``reconnects`` counts those gaps, so a consumer can re-read state after one.

    ::

        async with client.events.stream() as stream:
            while True:
                event = await stream.get(timeout=0.25)     # Event | None
    """

    def __init__(self, subscriber: AsyncSubscriber) -> None:
        self._sub = subscriber

    @property
    def reconnects(self) -> int:
        """Gaps so far (each one a lost connection that was made again)."""
        return self._sub.reconnects

    @property
    def subscribed(self) -> bool:
        """True while the subscription is live (False during a gap)."""
        return bool(self._sub.subscribed)

    async def connect(self) -> None:
        """Subscribe now (confirmed when this returns); raises when Redis cannot be reached."""
        await self._sub.connect()

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one (or during a gap)."""
        msg = await self._sub.get_message(timeout=_args.number(timeout, "timeout"))
        return None if msg is None else Event.parse(msg[1])

    async def aclose(self) -> None:
        """Unsubscribe and close the connection."""
        await self._sub.aclose()

    async def __aenter__(self) -> EventStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Events:
    """The namespace's event stream: ``listen()`` (sync), ``alisten()`` / ``stream()`` (async),
    ``subscribe()``, and ``publish()`` for an application's own events."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def channel(self) -> str:
        """The events channel: ``qe:{ns}:events``."""
        return self.client.keys.events

    def worker_channel(self, name: str) -> str:
        """Where lock_lost and canceled go for one worker: ``qe:{ns}:w:<name>``."""
        return self.client.keys.worker_channel(name)

    def subscriber(self, *channels: str) -> Subscriber:
        """A :class:`~queueengine.store.pubsub.Subscriber` of engine channels of this namespace (the
        events channel, worker channels: ``SSUBSCRIBE`` on a Redis >= 7 cluster); it reconnects
        by itself after a restart or failover."""
        return Subscriber(self.client.endpoint, shard_channels=channels)

    def listen(self, timeout: float | None = None, stop: threading.Event | None = None,
               channels: tuple[str, ...] = (), reconnected: bool = False) -> Iterator[Event]:
        """Yield events as they come, on a connection of its own.

        ``timeout``: stop after that many seconds without an event (None: never). ``stop``:
        a threading.Event that ends the iteration. ``channels``: extra channels (e.g. a worker
        channel) whose messages are parsed the same way. The subscription survives Redis
        restarts and failovers (it resubscribes with backoff); events published while it was
        away are lost, and with ``reconnected=True`` an ``Event("reconnected", ...)`` (data
        ``{"reconnects": n}``) is yielded after each gap so a consumer can re-read state.
        """
        sub = self.subscriber(self.channel, *channels)
        seen = 0
        try:
            last = time.monotonic()
            while stop is None or not stop.is_set():
                wait = 0.2 if timeout is None else max(0.0, min(0.2, timeout - (time.monotonic() - last)))
                msg = sub.get_message(timeout=wait)
                if reconnected and sub.reconnects != seen and msg is not None:
                    seen = sub.reconnects
                    yield Event("reconnected", None, None, time.time(), {"reconnects": seen})
                if msg is not None:
                    last = time.monotonic()
                    yield Event.parse(msg[1])
                elif timeout is not None and time.monotonic() - last >= timeout:
                    return
        finally:
            sub.close()

    async def alisten(self, channels: tuple[str, ...] = (), reconnected: bool = False) -> AsyncIterator[Event]:
        """Yield events asynchronously (redis.asyncio), until the consumer stops iterating; the
        subscription survives restarts and failovers as in :meth:`listen`."""
        sub = AsyncSubscriber(self.client.endpoint, shard_channels=(self.channel, *channels))
        seen = 0
        try:
            while True:
                msg = await sub.get_message(timeout=1.0)
                if reconnected and sub.reconnects != seen and msg is not None:
                    seen = sub.reconnects
                    yield Event("reconnected", None, None, time.time(), {"reconnects": seen})
                if msg is not None:
                    yield Event.parse(msg[1])
        finally:
            await sub.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        """``async for event in client.events``: the same as ``alisten()``."""
        return self.alisten()

    def stream(self, *channels: str) -> EventStream:
        """An asyncio subscription to the events channel (and ``channels``, e.g. a worker's)
        with reconnect counting; call ``connect()`` (or use ``async with``) before ``get()``."""
        return EventStream(AsyncSubscriber(self.client.endpoint, shard_channels=(self.channel, *channels)))

    def publish(self, name: str, jid: str | None = None, queue: str | None = None, **fields: Any) -> int:
        """Publish an application event on the events channel, shaped as the engine's own
        (``{"e": name, "jid": ..., "q": queue, "t": now, **fields}``) so every listener reads it
        as an ``Event``. ``name`` must begin with ``dashboard.``: the engine's event names (and any
        other) are refused with ``InvalidArgument``, as are fields JSON cannot carry and the field
        names ``e``, ``t`` and ``q``. Returns how many subscribers got it."""
        if not isinstance(name, str) or not name.startswith(APPLICATION_PREFIX) or name == APPLICATION_PREFIX:
            raise InvalidArgument(f"name: application events are named {APPLICATION_PREFIX}<something> "
                                  f"(the engine's own names are reserved), got {name!r}")
        _args.name(name, "name")
        if jid is not None:
            _args.existing_name(jid, "jid")
        if queue is not None:
            _args.existing_name(queue, "queue")
        clash = _RESERVED_FIELDS.intersection(fields)
        if clash:
            raise InvalidArgument(f"fields: {sorted(clash)} are the event's own keys")
        now = self.client.clock() if self.client.clock is not None else time.time()
        message = _args.dumps({"e": name, "jid": jid, "q": queue, "t": float(now), **fields}, "fields")
        redis = self.client.store.redis
        if self.client.endpoint.sharded():
            return int(redis.spublish(self.channel, message))
        return int(redis.publish(self.channel, message))

    def subscribe(self, callback: Callable[[Event], Any], names: tuple[str, ...] | None = None) -> Subscription:
        """Call ``callback(event)`` from a background thread for each event (filtered by
        ``names`` when given); returns a Subscription with ``stop()``."""
        return Subscription(self, callback, frozenset(names) if names else None)
