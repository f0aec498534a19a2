"""arq (asyncio): ``ArqRedis.enqueue_job``, ``Worker`` with its default ``max_jobs=10``,
``job.result(timeout, poll_delay)``. Runs in bench/.venv-arq: arq pins redis-py < 6.

arq polls: the worker checks its queue every ``poll_delay`` (default 0.5 s) and a caller polls
for the result every ``poll_delay`` (default 0.5 s). Both are documented parameters; with the
defaults a round trip costs about half a second, so the benchmark sets the worker's to 10 ms and
the caller's to 5 ms, what a latency-minded user would do. No batch enqueue API: n/a.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from systems.common import Ctx, atime_calls, hit

NO_BATCH = "no batch enqueue API"
WORKER_POLL = 0.01
RESULT_POLL = 0.005


async def noop(ctx: Any, i: int = 0) -> None:
    hit()


async def echo(ctx: Any, i: int = 0) -> int:
    return i


def _settings(ctx: Ctx) -> RedisSettings:
    return RedisSettings.from_dsn(ctx.url)


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"arq {version('arq')}, redis-py {version('redis')}",
            "how": f"enqueue_job; K x Worker(max_jobs=10, poll_delay={WORKER_POLL}); "
                   f"job.result(poll_delay={RESULT_POLL})"}


def enqueue_calls(ctx: Ctx) -> list[float]:
    async def go() -> list[float]:
        pool = await create_pool(_settings(ctx))
        try:
            return await atime_calls(lambda i: pool.enqueue_job("noop", i), ctx.n, ctx.deadline)
        finally:
            await pool.aclose()

    return asyncio.run(go())


def prefill(ctx: Ctx) -> None:
    async def go() -> None:
        pool = await create_pool(_settings(ctx))
        try:
            for start in range(0, ctx.n, 100):
                await asyncio.gather(*(pool.enqueue_job("noop", i) for i in range(start, min(ctx.n, start + 100))))
        finally:
            await pool.aclose()

    asyncio.run(go())


def worker(ctx: Ctx) -> None:
    w = Worker(functions=[noop, echo], redis_settings=_settings(ctx), poll_delay=WORKER_POLL,
               handle_signals=True)
    w.run()


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    async def go() -> list[float]:
        pool = await create_pool(_settings(ctx))

        async def one(i: int) -> None:
            job = await pool.enqueue_job("echo", i)
            assert job is not None
            got = await job.result(timeout=first_timeout if i == 0 else 10, poll_delay=RESULT_POLL)
            if got != i:
                raise RuntimeError(f"arq: wrong result for call {i}: {got!r}")

        try:
            return await atime_calls(one, count, ctx.deadline)
        finally:
            await pool.aclose()

    return asyncio.run(go())
