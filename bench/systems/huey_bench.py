"""huey: ``RedisHuey`` with blocking dequeue (BRPOP) and ``notify_result=True`` so that
``result.get(blocking=True)`` waits with BLPOP instead of polling; one consumer per process with
one worker thread (``-w 1 -k thread``).

huey has no batch enqueue (``task.map`` enqueues one by one), so batch enqueue is n/a.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from huey import RedisHuey

from systems.common import QUEUE, Ctx, hit, time_calls

NO_BATCH = "no batch enqueue API (task.map enqueues one call at a time)"

huey: Any = None
noop: Any = None
echo: Any = None


def _noop(i: int = 0) -> None:
    hit()


def _echo(i: int = 0) -> int:
    return i


def setup(ctx: Ctx) -> None:
    global huey, noop, echo
    huey = RedisHuey(QUEUE, url=ctx.url, blocking=True, notify_result=True)
    noop = huey.task(name="noop")(_noop)
    echo = huey.task(name="echo")(_echo)


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"huey {version('huey')}, redis-py {version('redis')}",
            "how": "RedisHuey(blocking=True, notify_result=True); K x consumer -w 1 -k thread; "
                   "result.get(blocking=True) (BLPOP on the notify key)"}


def enqueue_calls(ctx: Ctx) -> list[float]:
    return time_calls(lambda i: noop(i), ctx.n, ctx.deadline)


def prefill(ctx: Ctx) -> None:
    for i in range(ctx.n):
        noop(i)


def worker(ctx: Ctx) -> None:
    consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False)
    consumer.run()


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    def one(i: int) -> None:
        got = echo(i).get(blocking=True, timeout=first_timeout if i == 0 else 10)
        if got != i:
            raise RuntimeError(f"huey: wrong result for call {i}: {got!r}")

    return time_calls(one, count, ctx.deadline)
