"""queueengine, through its public API only (DESIGN §3 and §4, docs/internals.md).

Variants (``--variant``):

- ``qless``: ``Client.from_url``, ``q.put`` / ``q.put_many``, ``queueengine.worker.Worker`` with
  its default concurrency (as arq and saq run with theirs), and
  ``q.put(..., reply=True)`` + ``client.wait(jid)`` for the round trip.
- ``qless-nometrics``: the same with the engine's metrics as time series off (config ``metrics`` 0),
  the side-by-side measure of what recording them costs (issue 15).
- ``simple`` / ``recoverable`` / ``reliable``: the Job::Async front door,
  ``queueengine.dispatch.JobManager``: ``client.submit(**data)`` (a Future; enqueue does not wait
  on it), ``worker.jobs.each(handler)`` + ``worker.run()``, ``submit(...).result(timeout)``.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from systems.common import QUEUE, Ctx, NotApplicable, fresh, hit, time_calls

NAMESPACE = "bench"
NOOP = "systems.jobs.qe_noop"
ECHO = "systems.jobs.qe_echo"
MODES = ("simple", "recoverable", "reliable")

qe: Any = None


def setup(ctx: Ctx) -> None:
    """Import what the variant needs now, so an engine that is not there yet reads 'not available'."""
    global qe
    import queueengine

    qe = queueengine
    if ctx.variant in MODES:
        from queueengine.dispatch import JobManager  # noqa: F401
    else:
        from queueengine import Client  # noqa: F401
        from queueengine.worker import Worker  # noqa: F401


def _version() -> str:
    from importlib.metadata import version

    return f"queueengine {getattr(qe, '__version__', '?')}, redis-py {version('redis')}"


def describe(ctx: Ctx) -> dict[str, object]:
    if ctx.variant in MODES:
        # Building a client loads the mode's backend, so a mode that is not there yet fails here.
        # It also records the namespace's mode in Redis: start from an empty database and leave one.
        fresh(ctx.url)
        client = _jm_client(ctx)
        client.submit(i=0).cancel()
        close = getattr(client, "close", None)
        if close is not None:
            close()
        fresh(ctx.url)
        how = (f"JobManager mode={ctx.variant}: client.submit (Future, not awaited); K x worker "
               "(jobs.each + run); submit().result()")
    else:
        import inspect

        from queueengine.worker import Worker

        conc = inspect.signature(Worker).parameters["concurrency"].default
        how = (f"Qless API: q.put / q.put_many; K x Worker (default concurrency={conc} threads); "
               "put(reply=True) + client.wait(jid)")
        if ctx.variant == "qless-nometrics":
            how += "; the engine's metrics off (config metrics = 0)"
    return {"version": _version(), "how": how}


# --- Qless API --------------------------------------------------------------------------------


def _client(ctx: Ctx) -> Any:
    client = qe.Client.from_url(ctx.url, namespace=NAMESPACE)
    if ctx.variant == "qless-nometrics":
        client.config["metrics"] = 0
    return client


def _put_many(q: Any, klass: str, start: int, stop: int) -> None:
    """``q.put_many`` with (klass, data) pairs: one pipeline of Lua calls."""
    q.put_many([(klass, {"i": i}) for i in range(start, stop)])


# --- Job::Async modes -------------------------------------------------------------------------


def _jm_client(ctx: Ctx) -> Any:
    from queueengine.dispatch import JobManager

    return JobManager().client("redis", uri=ctx.url, mode=ctx.variant, queue=QUEUE)


def _handler(job: Any) -> None:
    hit()
    job.done(job.data.get("i"))


# --- workloads --------------------------------------------------------------------------------


def enqueue_calls(ctx: Ctx) -> list[float]:
    if ctx.variant in MODES:
        client = _jm_client(ctx)
        futures: list[Future[Any]] = []
        return time_calls(lambda i: futures.append(client.submit(i=i)), ctx.n, ctx.deadline)
    q = _client(ctx).queues[QUEUE]
    return time_calls(lambda i: q.put(NOOP, {"i": i}), ctx.n, ctx.deadline)


def batch_calls(ctx: Ctx) -> list[float]:
    if ctx.variant in MODES:
        raise NotApplicable("the JobManager client has no batch submit")
    q = _client(ctx).queues[QUEUE]
    if not hasattr(q, "put_many"):
        raise NotApplicable("this engine has no q.put_many yet")
    return time_calls(lambda c: _put_many(q, NOOP, c * ctx.chunk, (c + 1) * ctx.chunk),
                      ctx.n // ctx.chunk, ctx.deadline)


def prefill(ctx: Ctx) -> None:
    if ctx.variant in MODES:
        client = _jm_client(ctx)
        for i in range(ctx.n):
            client.submit(i=i)
        return
    q = _client(ctx).queues[QUEUE]
    if hasattr(q, "put_many"):
        for start in range(0, ctx.n, 1000):
            _put_many(q, NOOP, start, min(ctx.n, start + 1000))
    else:
        for i in range(ctx.n):
            q.put(NOOP, {"i": i})


def worker(ctx: Ctx) -> None:
    if ctx.variant in MODES:
        from queueengine.dispatch import JobManager

        w = JobManager().worker("redis", uri=ctx.url, mode=ctx.variant, queues=[QUEUE])
        w.jobs.each(_handler)
        w.run()
        return
    from queueengine.worker import Worker

    Worker(_client(ctx), [QUEUE]).run()


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    if ctx.variant in MODES:
        client = _jm_client(ctx)

        def one_mode(i: int) -> None:
            got = client.submit(i=i).result(timeout=first_timeout if i == 0 else 10)
            if got != i:
                raise RuntimeError(f"queueengine/{ctx.variant}: wrong result for call {i}: {got!r}")

        return time_calls(one_mode, count, ctx.deadline)

    client = _client(ctx)
    q = client.queues[QUEUE]

    def one(i: int) -> None:
        jid = q.put(ECHO, {"i": i}, reply=True)
        got = client.wait(jid, timeout=first_timeout if i == 0 else 10)
        if got != i:
            raise RuntimeError(f"queueengine: wrong result for call {i}: {got!r}")

    return time_calls(one, count, ctx.deadline)
