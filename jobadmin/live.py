"""Live updates: the bridge from the engine's Redis events to Channels groups.

One bridge per server process (per namespace): a single pub/sub subscription reads the
namespace's event channel, however many tabs are open. Events mark topics dirty (``overview``,
``queue.<name>``, ``job.<jid>``, ``workers``, ``failures``, ``metrics``, ``operations``: the
explorer's "act on all matching" progress); a flusher sends one
``live.refresh`` per dirty topic to its Channels group, at most once per COALESCE seconds
(the first event after a quiet spell goes out after FIRST_DELAY, so sparse events arrive at
once and a burst of 10,000 becomes a handful of pushes). Consumers render the fragments.

Across several server processes (channels_redis) one bridge is the leader (a Redis lease,
renewed every second, ``client.operator.live``) and only it sends, so no tab is refreshed twice; every process records
which topics its tabs follow (a sorted set with expiry), so the leader sends only to groups
somebody watches. A light sampler (once a second) catches what no event announces:
leases expiring into ``stalled``, ages that tick (oldest waiting, last seen), and a different
Redis server answering (a restart or failover, seen by its run_id, when events may have been
lost). Redis errors make the bridge resubscribe with backoff; after any gap every watched
topic is refreshed, so pages catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from asgiref.typing import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from channels.layers import get_channel_layer

from jobadmin import conf
from jobadmin.engine import client_for

log = logging.getLogger(__name__)

COALESCE = 0.25
"""Seconds between two pushes of a topic while its events come in bursts."""
MIN_SPACING = 0.05
"""Seconds between two pushes of a topic whose events are sparse."""
BURST = 3
"""More events than this since a topic's last push make it a burst."""
FIRST_DELAY = 0.01
SAMPLE_EVERY = 1.0
TICK_EVERY = 10.0
LEADER_TTL_MS = 3000
INTEREST_TTL = 60.0
BACKOFF_MAX = 5.0
CATCH_UP_DELAY = 0.1
"""After a gap in the subscription, refresh every watched page once it is subscribed again."""

FAILURE_EVENTS = frozenset({"failed", "retried", "canceled", "expired", "put", "dashboard.op"})
WORKER_EVENTS = frozenset({"popped", "completed", "failed", "retried", "heartbeat", "lock_lost", "stalled",
                           "worker", "released", "canceled", "advanced"})
METRIC_EVENTS = frozenset({"popped", "completed", "failed", "retried", "advanced", "stalled"})
"""Events the engine's metrics record (the Charts page's topic, ``metrics``)."""
TOPIC_SPACING = {"metrics": 1.0}
"""Topics pushed at most once per this many seconds (the Charts page reads a window of series)."""


PAGE_TOPICS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "overview": lambda kw: ["overview", "failures", "workers"],
    "queue": lambda kw: ["queue." + kw["name"]],
    "job": lambda kw: ["job." + kw["jid"]],
    "failures": lambda kw: ["failures"],
    "failure_group": lambda kw: ["failures"],
    "operation": lambda kw: ["failures"],
    "workers": lambda kw: ["workers"],
    "worker": lambda kw: ["workers"],
    "tracked": lambda kw: ["overview"],
    "completed": lambda kw: ["overview"],
    "recurring": lambda kw: ["overview"],
    "charts": lambda kw: ["metrics"],
    "search": lambda kw: ["operations"],
}
"""URL name of a dashboard page -> the topics that make it stale."""

PAGE_ARGS = {"queue": "name", "job": "jid", "failure_group": "group", "operation": "op_id", "worker": "name"}
"""URL name of a live page that shows one object -> the URL argument naming that object."""


def page_params(view: str, kwargs: dict[str, Any]) -> dict[str, str]:
    """The websocket parameters naming a live page's object (``{"name": <the name>}``): the
    name itself, decoded, so the consumer never takes it back out of a path."""
    arg = PAGE_ARGS.get(view)
    return {"name": str(kwargs[arg])} if arg is not None and arg in kwargs else {}


def page_kwargs(view: str, name: str | None) -> dict[str, Any] | None:
    """A live page's URL arguments from its websocket parameters (None: not a live page, or
    the name it needs is missing)."""
    if view not in PAGE_TOPICS:
        return None
    arg = PAGE_ARGS.get(view)
    if arg is None:
        return {}
    return None if name is None else {arg: name}


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def group_name(namespace: str, topic: str) -> str:
    """The Channels group of a topic (``overview``, ``queue.<name>``, ``job.<jid>``, ``workers``,
    ``failures``) in a namespace; names are hashed so any queue name or jid is a valid group."""
    kind, _, arg = topic.partition(".")
    return f"qe.{_h(namespace)}.{kind}" + (f".{_h(arg)}" if arg else "")


def topics_for_event(name: str, jid: str | None, queue: str | None) -> set[str]:
    """Which topics an engine event makes stale."""
    topics = {"overview"}
    if queue:
        topics.add("queue." + queue)
    if jid:
        topics.add("job." + jid)
    if name in FAILURE_EVENTS:
        topics.add("failures")
    if name in WORKER_EVENTS:
        topics.add("workers")
    if name in METRIC_EVENTS:
        topics.add("metrics")
    if name == "dashboard.op":
        topics.add("operations")
    return topics


class Bridge:
    """Engine events of one namespace -> ``live.refresh`` messages to Channels groups."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = client_for(namespace)
        self.layer = get_channel_layer()
        self.token = os.urandom(8).hex()
        self.local: Counter[str] = Counter()          # topic -> local consumers
        self.watched: set[str] = set()                # topics any process's tabs follow
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.leader = False
        self.pushes: Counter[str] = Counter()         # topic -> refreshes sent (for tests and stats)
        self.events_seen = 0
        self.ready = asyncio.Event()                  # set after the first sample (leadership known)
        self.listening = asyncio.Event()              # set once the events subscription is confirmed
        self.reconnects = 0
        self.samples = 0                              # periodic samples taken (for tests and stats)
        self._last_sent: dict[str, float] = {}
        self._dirty_since: dict[str, float] = {}
        self._events_since: Counter[str] = Counter()
        self._run_id: str | None = None
        self._signature: dict[str, Any] = {}
        self._last_tick = time.monotonic()
        self._sample_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start listening, flushing and sampling on the running loop."""
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._listen(), name="jobadmin-live-listen"),
                      loop.create_task(self._flush_loop(), name="jobadmin-live-flush"),
                      loop.create_task(self._sample_loop(), name="jobadmin-live-sample")]

    async def stop(self) -> None:
        """Cancel the tasks and give up the leadership."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        if self.leader:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._release_leader)

    def _release_leader(self) -> None:
        self.client.operator.live.release(self.token)

    # ------------------------------------------------------------------ consumers
    def attach(self, topics: list[str]) -> None:
        """A tab now follows ``topics``."""
        self.local.update(topics)
        self.watched.update(topics)

    async def sample_now(self) -> None:
        """Run the sampler once now (a new tab: leadership and interest are settled at once)."""
        try:
            await asyncio.to_thread(self._sample, False)
        except Exception as exc:
            log.debug("live sampler: %s", exc)

    def detach(self, topics: list[str]) -> None:
        """A tab stopped following ``topics``."""
        self.local.subtract(topics)
        for t in topics:
            if self.local[t] <= 0:
                del self.local[t]

    def mark(self, topics: set[str]) -> None:
        """Make topics stale; the flusher sends them soon."""
        self.dirty.update(topics)
        self._events_since.update(topics)
        self.wake.set()

    # ------------------------------------------------------------------ tasks
    async def _listen(self) -> None:
        """Read the namespace's events. The subscriber resubscribes by itself after a restart or
        failover; every gap it reports refreshes every watched topic (pages catch up)."""
        backoff = 0.1
        while True:
            stream = self.client.events.stream()
            try:
                await stream.connect()
                self.listening.set()
                seen = stream.reconnects
                gap_since: float | None = None
                while True:
                    event = await stream.get(timeout=0.25)
                    if stream.reconnects != seen:
                        # a gap: events may have been lost while the subscriber was away
                        seen = stream.reconnects
                        gap_since = time.monotonic()
                    if gap_since is not None and (event is not None or stream.subscribed) \
                            and time.monotonic() - gap_since >= CATCH_UP_DELAY:
                        gap_since = None
                        self.reconnects += 1
                        self.mark(set(self.watched) | set(self.local))
                    if event is not None:
                        self.events_seen += 1
                        self.mark(topics_for_event(event.name, event.jid, event.queue))
                    backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # could not subscribe at all: retry with backoff
                log.warning("live bridge (%s): cannot subscribe to events (%s); retrying in %.1f s",
                            self.namespace, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()

    async def _flush_loop(self) -> None:
        """Send each dirty topic once it is due: FIRST_DELAY after it became dirty, and never
        sooner than MIN_SPACING (sparse events) or COALESCE (a burst) after that topic's
        previous push; each topic keeps its own clock."""
        await self.ready.wait()
        while True:
            if not self.dirty:
                self.wake.clear()
                await self.wake.wait()
            now = time.monotonic()
            for topic in self.dirty:
                self._dirty_since.setdefault(topic, now)
            due_at = {t: max(self._dirty_since[t] + FIRST_DELAY, self._last_sent.get(t, 0.0)
                             + max(TOPIC_SPACING.get(t, 0.0),
                                   COALESCE if self._events_since[t] > BURST else MIN_SPACING))
                      for t in self.dirty}
            soonest = min(due_at.values())
            if soonest > now:
                self.wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), soonest - now)
                continue
            ready = {t for t, at in due_at.items() if at <= now}
            self.dirty -= ready
            for t in ready:
                self._dirty_since.pop(t, None)
                self._events_since.pop(t, None)
            if self.leader:
                await self._send(ready & (self.watched | set(self.local)), now)

    async def _send(self, topics: set[str], now: float) -> None:
        layer = self.layer
        if layer is None:
            log.warning("live bridge: no Channels layer is configured (CHANNEL_LAYERS); nothing is pushed")
            return
        for topic in topics:
            self._last_sent[topic] = now
            self.pushes[topic] += 1
            try:
                await layer.group_send(group_name(self.namespace, topic), {"type": "live.refresh", "topic": topic})
            except Exception:
                log.warning("live bridge: could not send to %s", topic, exc_info=True)
        if len(self._last_sent) > 10_000:
            cutoff = now - 60
            self._last_sent = {t: at for t, at in self._last_sent.items() if at > cutoff}

    async def _sample_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._sample)
                self.samples += 1
                self.ready.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("live sampler: %s", exc)
            await asyncio.sleep(SAMPLE_EVERY)

    def _sample(self, catch_up: bool = True) -> None:
        """Leadership, shared interest, and counts no event announces (runs in a thread).
        ``catch_up``: refresh every watched page when this bridge has just become the leader.
        One sample at a time: a periodic one that saw no tab must not undo the leadership a new
        tab's own sample has just taken."""
        with self._sample_lock:
            self._sample_locked(catch_up)

    def _sample_locked(self, catch_up: bool) -> None:
        local = sorted(self.local)
        if not local:
            # no tab here: stay passive (a process with tabs leads); an idle server costs nothing
            if self.leader:
                self._release_leader()
                self.leader = False
            self._run_id = None
            return
        coordination = self.client.operator.live
        # one round trip: take (or, while leading, extend) the lease, record and read the interest
        sample = coordination.sample(self.token, local, lease=LEADER_TTL_MS / 1000, interest=INTEREST_TTL,
                                     renew=self.leader)
        if self._run_id is not None and sample.run_id != self._run_id:
            # another server answers now (a restart, a failover): events may have been lost
            self.reconnects += 1
            self._loop.call_soon_threadsafe(self.mark, set(self.watched) | set(self.local))
        self._run_id = sample.run_id
        holder = sample.holder
        if holder == self.token and not (sample.acquired or self.leader):
            coordination.renew(self.token, LEADER_TTL_MS / 1000)   # held from before, not renewed above
        became_leader = holder == self.token and not self.leader
        self.leader = holder == self.token
        self.watched = set(sample.watched) | set(local)
        if became_leader and catch_up:
            # what the previous leader may not have sent: refresh every watched page once
            self._loop.call_soon_threadsafe(self.mark, set(self.watched))
        if not self.leader or not self.watched:
            return
        queues = self.client.views.queues(minutes=1)
        # only what no event announces: leases running out (running -> stalled)
        sig = {q["name"]: q["stalled"] for q in queues}
        changed = {name for name, s in sig.items() if self._signature.get(name) != s}
        changed |= set(self._signature) - set(sig)
        stale: set[str] = set()
        if changed and self._signature:
            stale |= {"overview", "workers"} | {"queue." + name for name in changed}
        self._signature = sig
        if time.monotonic() - self._last_tick >= TICK_EVERY:
            self._last_tick = time.monotonic()
            stale |= {"overview", "workers"}
        if stale:
            loop = self._loop
            loop.call_soon_threadsafe(self.mark, stale)

    _loop: asyncio.AbstractEventLoop


_bridges: dict[tuple[int, str], Bridge] = {}


async def bridge_for(namespace: str) -> Bridge:
    """This process's bridge of ``namespace`` on the running loop (started on first use)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), namespace)
    bridge = _bridges.get(key)
    if bridge is None:
        for stale_key in [k for k in _bridges if k[1] == namespace and k[0] != id(loop)]:
            _bridges.pop(stale_key, None)
        bridge = Bridge(namespace)
        bridge._loop = loop
        _bridges[key] = bridge
        bridge.start()
    return bridge


async def shutdown() -> None:
    """Stop every bridge of the running loop (tests, server shutdown)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _bridges if k[0] == loop_id]:
        await _bridges.pop(key).stop()


def live_enabled() -> bool:
    """Live updates are on unless QUEUEENGINE["LIVE"] is False."""
    return bool(conf._user().get("LIVE", True))


class LiveApplication:
    """Wraps the project's ASGI application so the bridge starts with it and stops cleanly.

    With a server that speaks the ASGI lifespan protocol (uvicorn, hypercorn) the bridges of
    every configured namespace start at ``lifespan.startup`` and stop at ``lifespan.shutdown``.
    daphne does not send lifespan events: there the bridges start on the first request of any
    kind and stop when the Twisted reactor shuts down.
    """

    def __init__(self, app: ASGI3Application) -> None:
        self.app = app
        self._started = False

    async def _start(self) -> None:
        if self._started or not live_enabled():
            return
        self._started = True
        for namespace in conf.namespaces():
            await bridge_for(namespace)
        _stop_with_reactor()

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await self._start()
                    except Exception as exc:  # Redis away at start-up: the bridge retries on its own
                        log.warning("live bridge did not start: %s", exc)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await shutdown()
                    self._started = False
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if not self._started:
            try:
                await self._start()
            except Exception as exc:
                self._started = False
                log.warning("live bridge did not start: %s", exc)
        await self.app(scope, receive, send)


def _stop_with_reactor() -> None:
    """Under daphne, stop the bridges before the reactor shuts down (no lifespan there)."""
    import sys

    if "twisted.internet.reactor" not in sys.modules:
        return
    try:
        from twisted.internet import defer, reactor

        def stop() -> defer.Deferred[None]:
            return defer.Deferred.fromFuture(asyncio.ensure_future(shutdown()))

        # zope Interface methods are declared without self, so mypy shifts their arguments by one
        reactor.addSystemEventTrigger("before", "shutdown", stop)  # type: ignore[arg-type]
    except Exception:
        log.debug("could not hook the reactor's shutdown", exc_info=True)
