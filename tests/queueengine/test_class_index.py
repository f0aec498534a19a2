"""The per-queue class index search reads (issue 16): kept in step by every path a job takes into
and out of a queue, listed by ``client.jobs.classes``, rebuilt by ``client.jobs.reindex``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock

from .search_reference import CLASSES, QUEUES, index_problems


def test_every_way_in_and_out_of_a_queue_keeps_the_index(engine: Client, redis_conn: redis.Redis,
                                                        clock: ManualClock) -> None:
    """put, put_many, put_batch, requeue/move, advance, retry into another queue, unfail, cancel,
    expiry by retention, recurring spawn, edit: after each, the index and the records agree."""
    q = engine.queues["a"]
    steps: list[Callable[[], Any]] = [
        lambda: q.put("app.One", {}, jid="one"),
        lambda: q.put_many([("app.Many", {"i": i}) for i in range(5)]),
        lambda: q.put_many([{"klass": "app.Batch", "data": {}, "jid": f"b{i}"} for i in range(3)]),
        lambda: q.put("app.Renamed", {}, jid="one"),                       # a re-put changes the class
        lambda: engine.jobs["one"].move("b"),                              # type: ignore[union-attr]
        lambda: engine.pop_from(["b"], 1)[0].complete(next_queue="c"),
        lambda: engine.pop_from(["c"], 1)[0].retry(),
        lambda: engine.pop_from(["c"], 1)[0].fail("g", "x"),
        lambda: engine.unfail("g", "d"),
        lambda: engine.cancel("b0"),
        lambda: q.recur("app.Spawned", {}, interval=10, jid="r"),
        lambda: clock.advance(25),
        lambda: q.peek(10),
        lambda: engine.jobs["r-1"].edit(data={"x": 1}, tags=["t"]),        # type: ignore[union-attr]
    ]
    for step in steps:
        step()
        assert index_problems(redis_conn, engine) == [], step
    engine.config["jobs-history-count"] = 0
    for job in engine.pop_from(["a", "d"], 20):
        job.complete()
    engine.housekeep()
    assert index_problems(redis_conn, engine) == []
    assert engine.jobs.find(state="complete")["jobs"] == []   # expired at once, and out of the index


def test_classes_lists_each_class_with_its_count(engine: Client) -> None:
    for i in range(6):
        engine.queues["a" if i % 2 else "b"].put(CLASSES[i % 3], {})
    assert engine.jobs.classes() == [{"klass": "app.Send", "count": 2}, {"klass": "app.SendLater", "count": 2},
                                     {"klass": "app.other.X", "count": 2}]
    assert engine.jobs.classes(queue="a") == [{"klass": "app.Send", "count": 1},
                                              {"klass": "app.SendLater", "count": 1},
                                              {"klass": "app.other.X", "count": 1}]
    assert [c["klass"] for c in engine.jobs.classes(prefix="app.Se")] == ["app.Send", "app.SendLater"]
    assert engine.jobs.classes(prefix="nothing") == []


def test_reindex_indexes_jobs_written_without_the_index(engine: Client, redis_conn: redis.Redis) -> None:
    """Records from before the index (simulated by dropping it) are found again after reindex."""
    jids = [engine.queues[QUEUES[i % 3]].put("app.Old", {"i": i}) for i in range(50)]
    for key in redis_conn.keys(engine.prefix.replace("{", "[{]").replace("}", "[}]") + "*byclass"):
        redis_conn.delete(key)
    assert engine.jobs.find(klass="app.Old")["jobs"] == []
    seen: list[int] = []
    assert engine.jobs.reindex(count=7, progress=seen.append) == 50
    assert seen and seen[-1] == 50
    assert sorted(j.jid for j in engine.jobs.find(klass="app.Old", limit=100)["jobs"]) == sorted(jids)
    assert index_problems(redis_conn, engine) == []
