"""RQ: ``Queue.enqueue``, ``Queue.enqueue_many`` (one pipeline per chunk), ``SimpleWorker``.

SimpleWorker runs jobs in the worker process (the default ``Worker`` forks once per job, which
RQ's docs describe as the slow but isolating choice). Results are waited for with
``job.latest_result(timeout=...)``, which blocks on the result stream (XREAD BLOCK).
"""

from __future__ import annotations

from importlib.metadata import version

from rq import Queue, SimpleWorker

from systems.common import QUEUE, Ctx, time_calls

NOOP = "systems.jobs.noop"
ECHO = "systems.jobs.echo"


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"rq {version('rq')}, redis-py {version('redis')}",
            "how": "Queue.enqueue / enqueue_many(pipeline); K x SimpleWorker (no fork per job), "
                   "log level WARNING; job.latest_result(timeout) (XREAD BLOCK)"}


def _queue(ctx: Ctx) -> Queue:
    return Queue(QUEUE, connection=ctx.redis())


def enqueue_calls(ctx: Ctx) -> list[float]:
    q = _queue(ctx)
    return time_calls(lambda i: q.enqueue(NOOP, i), ctx.n, ctx.deadline)


def batch_calls(ctx: Ctx) -> list[float]:
    q = _queue(ctx)

    def one(c: int) -> None:
        with q.connection.pipeline() as pipe:
            q.enqueue_many([Queue.prepare_data(NOOP, (i,)) for i in range(c * ctx.chunk, (c + 1) * ctx.chunk)],
                           pipeline=pipe)
            pipe.execute()

    return time_calls(one, ctx.n // ctx.chunk, ctx.deadline)


def prefill(ctx: Ctx) -> None:
    q = _queue(ctx)
    for start in range(0, ctx.n, 1000):
        with q.connection.pipeline() as pipe:
            q.enqueue_many([Queue.prepare_data(NOOP, (i,)) for i in range(start, min(ctx.n, start + 1000))],
                           pipeline=pipe)
            pipe.execute()


def worker(ctx: Ctx) -> None:
    w = SimpleWorker([QUEUE], connection=ctx.redis())
    w.work(logging_level="WARNING")


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    q = _queue(ctx)

    def one(i: int) -> None:
        job = q.enqueue(ECHO, i)
        res = job.latest_result(timeout=int(first_timeout if i == 0 else 10))
        if res is None or res.return_value != i:
            raise RuntimeError(f"rq: no result for call {i}: {res!r}")

    return time_calls(one, count, ctx.deadline)
