"""``recoverable`` mode: engine job records, claims without heartbeats, requeued by ``sweep``.

Jobs are ordinary engine jobs (record, history, stats, events, dashboard), put with
``reply=True``; the result is stored in the record and published to the job's reply channel.
A worker claims jobs with the engine's pop, but on queues whose lease is
:data:`CLAIM_LEASE` (ten years): the claim never expires by itself and no heartbeat is sent.
The queue's ``locks`` zset is the claimed set; a claim's time is its score minus the lease.
``sweep(older_than)`` (run by every worker every ``sweep_interval`` seconds, by
``client.sweep()`` and by ``qe_sweep``) hands claims older than ``older_than`` back to their
queue without spending a retry, so a job whose worker died is done by another worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from queueengine.client import Client as EngineClient

from .base import RawJob
from .redisbase import claim_mode, connect
from .reliable import ReliableClientBackend, ReliableWorkerBackend

log = logging.getLogger("queueengine.dispatch")

CLAIM_LEASE = 10 * 365 * 86400.0
"""Lease length set on recoverable queues (``<queue>-heartbeat``): claims do not expire."""

SWEEP_BATCH = 1000
"""Most claims one queue hands back per sweep call (bounded work per call)."""


def sweep(engine: EngineClient, older_than: float, queues: Sequence[str] | None = None) -> int:
    """Hand back claims older than ``older_than`` seconds in ``queues`` (default: every queue
    of the namespace); return how many. Each goes back to its queue with its retries intact.
    One Lua call (``sweep``) finds and hands back the stale claims, so a claim a live worker
    took meanwhile is never handed back (at most :data:`SWEEP_BATCH` per queue per call)."""
    names = list(queues) if queues is not None else [q.name for q in engine.queues]
    if not names:
        return 0
    count = int(engine("sweep", float(older_than), SWEEP_BATCH, *names))
    if count:
        log.info("sweep handed back %d claim(s) older than %gs", count, older_than)
    return count


def wake(engine: EngineClient, queue: str) -> None:
    """Push a wake token for idle workers of ``queue`` (a spurious one costs an empty pop)."""
    pipe = engine.redis.pipeline(transaction=False)
    pipe.lpush(engine.keys.wake(queue), "1")
    pipe.ltrim(engine.keys.wake(queue), 0, 63)
    pipe.execute()


class RecoverableClientBackend(ReliableClientBackend):
    """Client side: as reliable (engine jobs, reply channel, stored results)."""

    mode_name = "recoverable"

    def sweep(self, older_than: float) -> int:
        """Hand back claims older than ``older_than`` seconds in every queue of the namespace."""
        return sweep(self.engine, older_than)


class RecoverableWorkerBackend(ReliableWorkerBackend):
    """Worker side: engine pop on non-expiring claims, no heartbeats, periodic sweeps."""

    def __init__(self, uri: str, namespace: str, queues: Sequence[str], extra: dict[str, Any]) -> None:
        super().__init__(uri, namespace, queues, extra)
        self.sweep_interval = float(extra.get("sweep_interval") or 30.0)
        self.sweep_older_than = float(extra.get("sweep_older_than") or 300.0)
        self._last_sweep = 0.0
        self.tick_interval = min(1.0, self.sweep_interval)

    def _start(self) -> None:
        """Connect, check the mode, make the queues' claims non-expiring, register."""
        conn = connect(self.uri, self.keys.namespace)
        claim_mode(conn, self.keys, "recoverable")
        self._engine = EngineClient(conn, namespace=self.keys.namespace, worker_name=self.name)
        for name in self.queues:
            queue = self._engine.queues[name]
            if queue.heartbeat != CLAIM_LEASE:
                queue.heartbeat = CLAIM_LEASE
        self.heartbeat = CLAIM_LEASE
        self._block = connect(self.uri, self.keys.namespace, max_connections=1)
        self._engine.workers.register(self.name, {
            "host": self.name.rsplit("-", 2)[0], "queues": self.queues, "started": time.time(),
            "mode": "recoverable", "via": "queueengine.dispatch",
        })

    def tick(self, running: Sequence[RawJob]) -> None:
        """No heartbeats; sweep stale claims of this worker's queues every ``sweep_interval``."""
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_interval:
            self._last_sweep = now
            sweep(self.engine, self.sweep_older_than, self.queues)
        self._beat_registry(now)
