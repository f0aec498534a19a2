"""saq (asyncio): ``Queue.enqueue``, ``Worker`` with its default ``concurrency=10``, and
``job.refresh(until_complete=...)`` for results (it listens on pub/sub for the job's status; the
``apply``/``map`` helpers poll every 0.5 s by default). No batch enqueue API: n/a.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from saq import Queue, Worker

from systems.common import QUEUE, Ctx, atime_calls, hit

NO_BATCH = "no batch enqueue API (map() enqueues one by one and waits for the results)"


async def noop(ctx: Any, *, i: int = 0) -> None:
    hit()


async def echo(ctx: Any, *, i: int = 0) -> int:
    return i


async def _queue(ctx: Ctx) -> Any:
    q = Queue.from_url(ctx.url, name=QUEUE)
    await q.connect()
    return q


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"saq {version('saq')}, redis-py {version('redis')}",
            "how": "queue.enqueue; K x Worker(concurrency=10); job.refresh(until_complete) (pub/sub)"}


def enqueue_calls(ctx: Ctx) -> list[float]:
    async def go() -> list[float]:
        q = await _queue(ctx)
        try:
            return await atime_calls(lambda i: q.enqueue("noop", i=i), ctx.n, ctx.deadline)
        finally:
            await q.disconnect()

    return asyncio.run(go())


def prefill(ctx: Ctx) -> None:
    async def go() -> None:
        q = await _queue(ctx)
        try:
            for start in range(0, ctx.n, 100):
                await asyncio.gather(*(q.enqueue("noop", i=i) for i in range(start, min(ctx.n, start + 100))))
        finally:
            await q.disconnect()

    asyncio.run(go())


def worker(ctx: Ctx) -> None:
    async def go() -> None:
        q = await _queue(ctx)
        await Worker(q, functions=[noop, echo]).start()

    asyncio.run(go())


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    async def go() -> list[float]:
        q = await _queue(ctx)

        async def one(i: int) -> None:
            job = await q.enqueue("echo", i=i)
            assert job is not None
            await job.refresh(until_complete=first_timeout if i == 0 else 10)
            if job.result != i:
                raise RuntimeError(f"saq: wrong result for call {i}: {job.result!r} ({job.status})")

        try:
            return await atime_calls(one, count, ctx.deadline)
        finally:
            await q.disconnect()

    return asyncio.run(go())
