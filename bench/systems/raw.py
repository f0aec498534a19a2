"""The floor: LPUSH / BRPOP of a small JSON payload with a tiny Python loop, same redis-py as ours.

No job records, no result storage for drains, no retries: what any queue on Redis costs at least
for one command in, one command out, plus (for the round trip) a reply list.
"""

from __future__ import annotations

import json
import uuid
from importlib.metadata import version

import redis

from systems import jobs
from systems.common import QUEUE, Ctx, time_calls

KEY = f"raw:{QUEUE}"
FUNCS = {"noop": jobs.noop, "echo": jobs.echo}


def describe(ctx: Ctx) -> dict[str, object]:
    return {"version": f"redis-py {version('redis')}",
            "how": "LPUSH JSON / BRPOP loop; round trip replies with LPUSH to a per-call list"}


def enqueue_calls(ctx: Ctx) -> list[float]:
    conn = ctx.redis()
    return time_calls(lambda i: conn.lpush(KEY, json.dumps({"f": "noop", "a": [i]})), ctx.n, ctx.deadline)


def batch_calls(ctx: Ctx) -> list[float]:
    conn = ctx.redis()

    def one(c: int) -> None:
        pipe = conn.pipeline(transaction=False)
        for i in range(c * ctx.chunk, (c + 1) * ctx.chunk):
            pipe.lpush(KEY, json.dumps({"f": "noop", "a": [i]}))
        pipe.execute()

    return time_calls(one, ctx.n // ctx.chunk, ctx.deadline)


def prefill(ctx: Ctx) -> None:
    conn = ctx.redis()
    for start in range(0, ctx.n, 1000):
        conn.lpush(KEY, *[json.dumps({"f": "noop", "a": [i]}) for i in range(start, min(ctx.n, start + 1000))])


def worker(ctx: Ctx) -> None:
    conn = redis.Redis.from_url(ctx.url)
    while True:
        item = conn.brpop([KEY], timeout=1)
        if item is None:
            continue
        msg = json.loads(item[1])
        result = FUNCS[msg["f"]](*msg["a"])
        if "r" in msg:
            conn.lpush(msg["r"], json.dumps(result))


def roundtrip_calls(ctx: Ctx, count: int, first_timeout: float) -> list[float]:
    conn = ctx.redis()

    def one(i: int) -> None:
        reply = f"raw:reply:{uuid.uuid4().hex}"
        conn.lpush(KEY, json.dumps({"f": "echo", "a": [i], "r": reply}))
        got = conn.brpop([reply], timeout=first_timeout if i == 0 else 10)
        if got is None or json.loads(got[1]) != i:
            raise RuntimeError(f"raw: no reply for call {i}")

    return time_calls(one, count, ctx.deadline)
