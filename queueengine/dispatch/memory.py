"""The in-process backend (``JobManager().client("memory")``): for tests, no Redis.

Clients and workers of the same namespace in one process share a broker: per-queue FIFO
deques and a condition variable. Data and results go through JSON exactly as over Redis, so a
handler cannot mutate the submitter's objects and non-JSON data fails the same way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from .base import Outcome, RawJob
from .errors import ModeMismatch

_BROKERS: dict[str, _Broker] = {}
_BROKERS_LOCK = threading.Lock()


class _Broker:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.mode: str | None = None
        self.cond = threading.Condition()
        self.queues: dict[str, deque[tuple[str, bytes, str]]] = {}
        self.replies: dict[str, Callable[[str, bool, Any], None]] = {}
        self.wakeups = 0

    def claim_mode(self, mode: str) -> None:
        with self.cond:
            if self.mode is None:
                self.mode = mode
            elif self.mode != mode:
                raise ModeMismatch(self.namespace, self.mode, mode)


def broker(namespace: str) -> _Broker:
    """The process-wide broker of a namespace."""
    with _BROKERS_LOCK:
        found = _BROKERS.get(namespace)
        if found is None:
            found = _BROKERS[namespace] = _Broker(namespace)
        return found


def reset(namespace: str | None = None) -> None:
    """Forget one namespace's broker (or all of them): queued jobs are dropped."""
    with _BROKERS_LOCK:
        if namespace is None:
            _BROKERS.clear()
        else:
            _BROKERS.pop(namespace, None)


class MemoryClientBackend:
    """Client side of the memory backend."""

    durable = False

    def __init__(self, namespace: str, mode: str, queue: str, client_id: str) -> None:
        self.broker = broker(namespace)
        self.mode = mode
        self.queue = queue
        self.client_id = client_id

    def start(self, on_reply: Callable[[str, bool, Any], None]) -> None:
        """Register for replies."""
        self.broker.claim_mode(self.mode)
        with self.broker.cond:
            self.broker.replies[self.client_id] = on_reply

    def send(self, jid: str, data: bytes) -> Any:
        """Append the job to its queue and wake a worker."""
        with self.broker.cond:
            self.broker.queues.setdefault(self.queue, deque()).append((jid, data, self.client_id))
            self.broker.cond.notify()
        return None

    def abandon(self, jid: str, token: Any) -> Outcome | None:
        """Remove the job if it is still queued."""
        with self.broker.cond:
            entries = self.broker.queues.get(self.queue)
            if entries:
                for entry in entries:
                    if entry[0] == jid:
                        entries.remove(entry)
                        break
        return None

    def lookup(self, jids: Sequence[str]) -> dict[str, Outcome]:
        """Nothing is stored in memory mode."""
        return {}

    def sweep(self, older_than: float) -> int:
        """Nothing is ever claimed and stale in memory."""
        return 0

    def counts(self) -> dict[str, Any]:
        """Jobs waiting in the client's queue."""
        with self.broker.cond:
            return {"name": self.queue, "waiting": len(self.broker.queues.get(self.queue, ()))}

    def close(self) -> None:
        """Stop getting replies."""
        with self.broker.cond:
            self.broker.replies.pop(self.client_id, None)


class MemoryWorkerBackend:
    """Worker side of the memory backend."""

    def __init__(self, namespace: str, mode: str, queues: Sequence[str]) -> None:
        self.broker = broker(namespace)
        self.mode = mode
        self.queues = list(queues)
        self._unblocked = False

    def start(self) -> None:
        """Check the mode."""
        self.broker.claim_mode(self.mode)

    def fetch(self, count: int, block: float) -> list[RawJob]:
        """Take up to ``count`` jobs from the first non-empty queue (strict priority)."""
        with self.broker.cond:
            if not self._take_ready() and not self._unblocked:
                self.broker.cond.wait(block)
            self._unblocked = False
            out: list[RawJob] = []
            for name in self.queues:
                entries = self.broker.queues.get(name)
                while entries and len(out) < count:
                    jid, data, reply = entries.popleft()
                    out.append(RawJob(jid, orjson.loads(data), name, (data, reply)))
                if out:
                    break
            return out

    def _take_ready(self) -> bool:
        return any(self.broker.queues.get(name) for name in self.queues)

    def finish(self, raw: RawJob, ok: bool, value: Any, defer: bool) -> None:
        """Hand the outcome to the submitting client (through JSON, as over Redis)."""
        with self.broker.cond:
            callback = self.broker.replies.get(raw.token[1])
        if callback is not None:
            callback(raw.id, ok, orjson.loads(orjson.dumps(value)))

    def hand_back(self, raw: RawJob) -> None:
        """Put the job back at the head of its queue."""
        with self.broker.cond:
            self.broker.queues.setdefault(raw.queue, deque()).appendleft((raw.id, *raw.token))
            self.broker.cond.notify()

    def unblock(self) -> None:
        """Wake a blocked fetch."""
        with self.broker.cond:
            self._unblocked = True
            self.broker.cond.notify_all()

    def tick(self, running: Sequence[RawJob]) -> None:
        """Nothing periodic in memory."""

    def close(self) -> None:
        """Nothing to release."""
