"""Job handlers the worker tests enqueue by dotted path (``tests.jobfixtures.add`` ...).

Handlers that must coordinate with the test process (which runs the worker in a thread or a
subprocess) signal through Redis keys named in the job data, so the test can block on them
(BLPOP) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import redis

from queueengine.worker import checkpoint
from queueengine.worker.handlers import exponential, retry


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["QE_TEST_REDIS_URL"])


def noop(job: Any) -> None:
    return None


def add(job: Any) -> int:
    return int(job.data["x"]) + int(job.data["y"])


def echo(job: Any) -> Any:
    return job.data


def boom(job: Any) -> None:
    raise KeyError("no such thing: " + str(job.data.get("what", "?")))


def unserializable(job: Any) -> Any:
    return object()


def settles_itself(job: Any) -> str:
    job.fail("custom-group", "failed by the handler")
    return "ignored"


def completes_itself(job: Any) -> str:
    job.complete({"by": "handler"})
    return "ignored"


class Resize:
    """qle-py style: a method named after the queue wins over process()."""

    def process(self, job: Any) -> str:
        return "process"

    def thumbnails(self, job: Any) -> str:
        return "thumbnails"


class Static:
    @staticmethod
    def process(job: Any) -> str:
        return "static"


class NoMethod:
    pass


class Flaky:
    """Always times out; retryable with a short backoff."""

    retry_on = (TimeoutError,)
    backoff = exponential(base=0.05, factor=2, max=0.2)

    def process(self, job: Any) -> None:
        raise TimeoutError(f"upstream timed out (attempt {job.original_retries - job.retries_left + 1})")


@retry(on=ConnectionError, backoff=0.01)
def flaky_function(job: Any) -> str:
    r = _redis()
    n = r.incr(job.data["counter"])
    if n < int(job.data["succeed_on"]):
        raise ConnectionError(f"refused #{n}")
    return f"ok after {n}"


async def async_add(job: Any) -> int:
    await asyncio.sleep(0)
    return int(job.data["x"]) + int(job.data["y"])


async def async_boom(job: Any) -> None:
    await asyncio.sleep(0)
    raise ValueError("async trouble")


_rendezvous: dict[str, int] = {}


async def async_rendezvous(job: Any) -> int:
    """Finishes only once ``n`` jobs of the same ``key`` are running at the same time."""
    key, n = job.data["key"], int(job.data["n"])
    _rendezvous[key] = _rendezvous.get(key, 0) + 1
    deadline = time.monotonic() + 5
    while _rendezvous[key] < n:
        if time.monotonic() > deadline:
            raise TimeoutError("peers never arrived: async jobs did not run concurrently")
        await asyncio.sleep(0.005)
    return n


_barriers: dict[str, threading.Barrier] = {}
_active: dict[str, list[int]] = {}   # key -> [running now, most at once]
_lock = threading.Lock()


def thread_rendezvous(job: Any) -> int:
    """Waits until ``n`` jobs of ``key`` run at once; records the most that ever ran together."""
    key, n = job.data["key"], int(job.data["n"])
    with _lock:
        barrier = _barriers.setdefault(key, threading.Barrier(n))
        stats = _active.setdefault(key, [0, 0])
        stats[0] += 1
        stats[1] = max(stats[1], stats[0])
    try:
        barrier.wait(timeout=5)
        time.sleep(0.02)  # widen the window in which an extra job would be seen running
    finally:
        with _lock:
            stats[0] -= 1
    return stats[1]


def peak(key: str) -> int:
    return _active.get(key, [0, 0])[1]


def signal_and_wait(job: Any) -> str:
    """Pushes to ``started`` then blocks until a token appears on ``release`` (or ``seconds`` pass)."""
    r = _redis()
    r.rpush(job.data["started"], job.jid)
    deadline = time.monotonic() + float(job.data.get("seconds", 30))
    while (left := deadline - time.monotonic()) > 0:   # BLPOPs of 2 s: under the 5 s socket timeout
        if r.blpop([job.data["release"]], timeout=max(0.1, min(2.0, left))):
            return "released"
    return "timed out"


def sleep_then_finish(job: Any) -> str:
    """Pushes to ``started``, sleeps ``seconds``, then returns."""
    r = _redis()
    r.rpush(job.data["started"], job.jid)
    time.sleep(float(job.data["seconds"]))
    return "slept"


def until_aborted(job: Any) -> str:
    """Loops on checkpoint() until the worker aborts the job; reports the abort on ``aborted``."""
    r = _redis()
    r.rpush(job.data["started"], job.jid)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            checkpoint()
            time.sleep(0.01)
    except Exception as exc:
        r.rpush(job.data["aborted"], f"{type(exc).__name__}:{getattr(job, 'aborted', False)}")
        raise
    return "never aborted"


async def async_until_aborted(job: Any) -> str:
    r = _redis()
    r.rpush(job.data["started"], job.jid)
    try:
        await asyncio.sleep(20)
    except asyncio.CancelledError:
        r.rpush(job.data["aborted"], "CancelledError")
        raise
    return "never aborted"


def record_start(job: Any) -> str:
    r = _redis()
    r.rpush(job.data["started"], f"{job.jid}:{time.time()!r}")
    return "ok"


def block_first_run(job: Any) -> str:
    """The first run pushes to ``started`` and hangs (its worker gets killed); later runs return at once."""
    r = _redis()
    first = r.incr(job.data["counter"]) == 1
    r.rpush(job.data["started"], job.jid)
    if first:
        time.sleep(60)
    return "second run"


def mode_add(job: Any) -> int:
    """A handler for the simple/recoverable delivery modes (a queueengine.dispatch job)."""
    return int(job.data["x"]) + int(job.data["y"])


async def async_noop(job: Any) -> None:
    return None


class AsyncReport:
    async def process(self, job: Any) -> str:
        await asyncio.sleep(0)
        return "async method"


@retry(on=ValueError, backoff=0.01)
async def async_flaky(job: Any) -> str:
    n = _redis().incr(job.data["counter"])
    if n < 2:
        raise ValueError(f"not yet ({n})")
    return f"async ok after {n}"


def blpop(conn: redis.Redis, name: str, timeout: float = 20) -> str:
    """The next item of list ``name``, waiting up to ``timeout`` s (in BLPOPs of 2 s, so a slow
    machine never trips the connection's 5 s socket timeout)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        got = conn.blpop([name], timeout=max(0.1, min(2.0, left)))
        if got is not None:
            return got[1].decode()
    raise AssertionError(f"nothing arrived on {name} within {timeout}s")
