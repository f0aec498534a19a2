"""A Qless keyspace of 100,000 jobs imports in bounded Redis calls (the duration is printed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.migrate import import_qless
from tests.bridges.qless_fixtures import ClockedQless, open_qless, open_qless_conn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")
ql = pytest.fixture(open_qless, name="ql")

SLOW_CALL_US = 1_000_000   # one whole-keyspace call would take several seconds; a chunk takes milliseconds


def put_many(ql: ClockedQless, clock: ManualClock, queue: str, n: int, start: int, delay: int = 0) -> None:
    """n real Qless puts, sent in pipelines (the same Lua as one put at a time)."""
    for first in range(start, start + n, 2000):
        pipe = ql.redis.pipeline(transaction=False)
        for i in range(first, min(first + 2000, start + n)):
            clock.advance(0.001)
            ql._lua(keys=[], args=["put", repr(clock()), queue, f"j{i}", "app.jobs.Bulk", json.dumps({"i": i}),
                                   delay, "priority", i % 3 - 1, "tags", json.dumps(["bulk", f"t{i % 10}"]),
                                   "retries", 3], client=pipe)
        pipe.execute()


@pytest.fixture
def slowlog(redis_conn: redis.Redis) -> Iterator[redis.Redis]:
    old = redis_conn.config_get("slowlog-*")
    redis_conn.config_set("slowlog-log-slower-than", SLOW_CALL_US // 10)
    redis_conn.config_set("slowlog-max-len", 4096)
    redis_conn.slowlog_reset()
    yield redis_conn
    for name in ("slowlog-log-slower-than", "slowlog-max-len"):
        redis_conn.config_set(name, old[name])


def test_100k_jobs_import_in_bounded_calls(ql: ClockedQless, qless_conn: redis.Redis, engine: Client,
                                           clock: ManualClock, slowlog: redis.Redis) -> None:
    built = time.monotonic()
    put_many(ql, clock, "bulk-a", 60_000, 0)
    put_many(ql, clock, "bulk-b", 35_000, 60_000)
    put_many(ql, clock, "bulk-b", 5_000, 95_000, delay=10**6)
    w = ql.as_worker("bulk-worker")
    for job in w.queues["bulk-b"].pop(1000):
        job.fail("bulk-b-Error", "boom")
    for job in w.queues["bulk-b"].pop(1000):
        job.complete()
    w.queues["bulk-b"].pop(500)
    print(f"\nbuilt with qless-py in {time.monotonic() - built:.1f} s")
    assert qless_conn.zcard("ql:q:bulk-a-work") == 60_000
    expected_peek = [j.jid for j in ql.queues["bulk-a"].peek(300)]
    slowlog.slowlog_reset()
    started = time.monotonic()
    report = import_qless(qless_conn, engine)
    seconds = time.monotonic() - started
    slow = slowlog.slowlog_get(4096)
    longest = max(slow, key=lambda e: e["duration"], default=None)
    print(f"\n100,000-job Qless keyspace imported in {seconds:.1f} s ({100_000 / seconds:,.0f} jobs/s); "
          f"calls over {SLOW_CALL_US // 10_000} ms: {len(slow)}; slowest call: "
          + (f"{longest['duration'] / 1000:.0f} ms, {longest['command'][:60]!r}" if longest else "none"))
    assert report.jobs == 100_000 and not report.skipped
    assert dict(report.imported["bulk-a"]) == {"waiting": 60_000}
    assert dict(report.imported["bulk-b"]) == {"waiting": 32_500, "scheduled": 5_000, "failed": 1_000,
                                               "complete": 1_000, "running": 500}
    assert [e for e in slow if e["duration"] >= SLOW_CALL_US] == []
    assert [j.jid for j in engine.queues["bulk-a"].peek(300)] == expected_peek
    assert engine.jobs.tagged("t3")["total"] == 10_000
    assert engine.jobs.failed() == {"bulk-b-Error": 1000}
    assert len(engine.workers["bulk-worker"]["jobs"]) == 500
