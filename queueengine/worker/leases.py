"""Keeping a worker's leases: background heartbeats, the worker's liveness beat, and the
worker channel that announces lost leases and cancellations.

``LeaseKeeper`` is a part of ``queueengine.worker.Worker``; it runs two daemon threads:

* the keeper heartbeats each held job at about a third of its lease (the lease is read from
  the job's ``expires_at`` against the Redis clock), and calls ``workers.beat`` every
  ``beat_interval`` seconds so an idle worker still shows as alive, and runs one bounded
  ``client.housekeep()`` pass every ``housekeep_interval`` seconds (retention of completed and
  failed jobs, pruning of dead workers, promotions in queues nobody pops);
* the listener follows ``client.events.worker_channel(name)`` and calls ``abort(jid, reason)``
  for ``lock_lost`` and ``canceled`` events. It sends no commands while it waits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from queueengine.exceptions import OutOfMemory, QueueEngineError
from queueengine.store.outages import warn

if TYPE_CHECKING:
    from queueengine.client import Client
    from queueengine.job import Job
    from queueengine.store.pubsub import Subscriber
    from queueengine.worker.ledger import Held, Ledger
    from queueengine.worker.runner import Spawn

Abort = Callable[[str, str, float | None], bool]
"""``abort(jid, reason, since)``: abort a held job (``since``: the server time of the notice)."""

log = logging.getLogger("queueengine.worker")


class LeaseKeeper:
    """Heartbeats the jobs ``ledger`` holds and aborts those the engine takes away."""

    def __init__(self, client: Client, name: str, ledger: Ledger, abort: Abort, beat_interval: float = 10.0,
                 housekeep_interval: float | None = 60.0) -> None:
        self.client = client
        self.name = name
        self.ledger = ledger
        self.abort = abort
        self.beat_interval = beat_interval
        self.housekeep_interval = housekeep_interval
        self.stopped = threading.Event()
        self._wake = threading.Event()   # set when the keeper must look again sooner (shorter tick, stop)
        self.offset = 0.0   # Redis server time minus local time
        self.tick = 1.0     # how often the keeper looks for due heartbeats (shrinks for short leases)
        self._pubsub: Subscriber | None = None
        self._active: Subscriber | None = None   # the listener's subscription (closed by stop())
        self._keeper_thread: threading.Thread | None = None

    def start(self, spawn: Spawn) -> None:
        """Read the server clock, subscribe to the worker channel (before any job is popped) and
        start the keeper and listener threads through ``spawn(target, name)``."""
        self.offset = float(self.client.now()) - time.time()
        try:
            self._pubsub = self._subscribe()
        except Exception as exc:  # Redis away: the listener thread subscribes when it is back
            warn(log, exc, "could not subscribe to the worker channel yet; the listener will retry")
            self._pubsub = None
        self._keeper_thread = spawn(self._keep, "keeper")
        spawn(self._listen, "listener")

    def stop(self) -> None:
        """Stop both threads; returns once the keeper made its last call (so nothing it sends,
        a beat or a heartbeat, can register the worker again after it deregistered)."""
        self.stopped.set()
        self._wake.set()
        keeper = self._keeper_thread
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(5.0)
        active = self._active
        if active is not None:  # wakes the listener at once (it may be waiting out an outage)
            with contextlib.suppress(Exception):
                active.close()

    def next_beat(self, job: Job) -> float:
        """Monotonic time at which to heartbeat ``job``: a third of its remaining lease from now."""
        try:
            remaining = float(job.expires_at) - (time.time() + self.offset)
        except (TypeError, ValueError):
            remaining = 30.0
        remaining = max(remaining, 0.3)
        if remaining / 6 < self.tick:
            self.tick = max(remaining / 6, 0.05)
            self._wake.set()  # the keeper may be in a longer wait
        return time.monotonic() + remaining / 3

    # ------------------------------------------------------------------ keeper thread
    def _keep(self) -> None:
        next_beat = time.monotonic() + self.beat_interval
        # spread the housekeeping of many workers started together
        next_housekeep = (time.monotonic() + self.housekeep_interval * random.uniform(0.1, 1.0)
                          if self.housekeep_interval else float("inf"))
        while not self.stopped.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self.stopped.is_set():
                return
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.beat_interval
                try:
                    self.client.workers.beat(self.name)
                except Exception as exc:
                    warn(log, exc, "worker beat failed")
            if now >= next_housekeep and self.housekeep_interval:
                next_housekeep = now + self.housekeep_interval
                try:
                    done = self.client.housekeep()
                    log.debug("housekeeping: %s", done)
                except Exception as exc:
                    warn(log, exc, "housekeeping failed")
            for held in self.ledger.due_heartbeats(now):
                self.heartbeat(held)

    def heartbeat(self, held: Held) -> None:
        """Extend the lease of ``held``'s job; abort the job when the engine refuses."""
        try:
            held.job.heartbeat()
        except OutOfMemory:  # Redis refuses writes for now: the lease may still be saved
            log.warning("heartbeat of job %s refused: Redis is out of memory; trying again", held.job.jid)
            held.beat_at(time.monotonic() + self.tick)
            return
        except QueueEngineError as exc:
            self.abort(held.job.jid, f"heartbeat refused: {exc}", None)
            return
        except Exception as exc:
            warn(log, exc, "heartbeat of job %s failed; trying again", held.job.jid)
            held.beat_at(time.monotonic() + self.tick)
            return
        held.beat_at(self.next_beat(held.job))

    # ------------------------------------------------------------------ listener thread
    def _subscribe(self) -> Subscriber:
        pubsub = self.client.events.subscriber(self.client.events.worker_channel(self.name))
        pubsub.connect()
        return pubsub

    def _listen(self) -> None:
        while not self.stopped.is_set():
            pubsub, self._pubsub = self._pubsub, None
            try:
                if pubsub is None:
                    pubsub = self._subscribe()
                self._active = pubsub
                while not self.stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)   # reconnects by itself
                    if message is not None:
                        self.on_message(message[1])
            except Exception as exc:
                if self.stopped.is_set():
                    return
                warn(log, exc, "worker channel listener failed; reconnecting")
                self.stopped.wait(1.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def on_message(self, raw: bytes | str) -> None:
        """``{"e": "lock_lost"|"canceled", "jid": ..., "reason"?: ...}`` -> abort that job."""
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            return
        if isinstance(event, dict) and event.get("e") in ("lock_lost", "canceled") and event.get("jid"):
            since = event.get("t")
            self.abort(str(event["jid"]), str(event.get("reason") or event["e"]),
                       float(since) if isinstance(since, (int, float)) else None)


__all__ = ["Abort", "LeaseKeeper"]
