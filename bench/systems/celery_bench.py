"""Celery with Redis as broker and result backend: ``task.delay``, ``--pool=solo`` workers,
``AsyncResult.get()`` (the Redis backend waits on pub/sub).

Celery has no batch publish (a ``group`` publishes its tasks one by one), so batch enqueue is n/a.
A drain with K processes runs K solo workers (one process each), like every other system here.
"""

from __future__ import annotations

import os
from importlib.metadata import version

from celery import Celery

from systems.common import QUEUE, Ctx, hit, time_calls

NO_BATCH = "no batch publish API (group() publishes one message per task)"

app = Celery("bench")


def setup(ctx: Ctx) -> None:
    app.conf.update(
        broker_url=ctx.url,
        result_backend=ctx.url,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )


@app.task(name="bench.noop")
def noop(i: int = 0) -> None:
    hit()


@app.task(name="bench.echo")
def echo(i: int = 0) -> int:
    return i


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"celery {version('celery')}, kombu {version('kombu')}, redis-py {version('redis')}",
            "how": "task.delay; K x worker --pool=solo (without gossip/mingle/heartbeat); "
                   "result.get() (Redis backend, pub/sub)"}


def enqueue_calls(ctx: Ctx) -> list[float]:
    return time_calls(lambda i: noop.delay(i), ctx.n, ctx.deadline)


def prefill(ctx: Ctx) -> None:
    with app.producer_or_acquire() as producer:
        for i in range(ctx.n):
            noop.apply_async((i,), producer=producer)


def worker(ctx: Ctx) -> None:
    app.worker_main([
        "worker", "--pool=solo", "--concurrency=1", f"--queues={QUEUE}", "--loglevel=WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--hostname=bench{os.getpid()}@%h",
    ])


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    def one(i: int) -> None:
        got = echo.delay(i).get(timeout=first_timeout if i == 0 else 10)
        if got != i:
            raise RuntimeError(f"celery: wrong result for call {i}: {got!r}")

    return time_calls(one, count, ctx.deadline)
