"""Metrics as time series (issue 15): recording inside the engine's own calls, the bucket layout,
series by minute and by hour, per class and namespace-wide, retention, the switch, bad arguments."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest
import redis

from queueengine import Client, InvalidArgument
from queueengine.devtools.testing import ManualClock
from queueengine.operator import metrics as mt

MINUTE, HOUR = 60, 3600


def run_job(q: Any, klass: str = "app.Job", wait: float = 0.0, run: float = 0.0, outcome: str = "complete") -> str:
    """Put a job, let it wait ``wait`` seconds, pop it, let it run ``run`` seconds, finish it."""
    clock = q.client.clock
    jid = q.put(klass, {}, retries=1)
    clock.advance(wait)
    job = q.pop()
    assert job is not None and job.jid == jid
    clock.advance(run)
    if outcome == "complete":
        job.complete()
    elif outcome == "fail":
        job.fail(f"{q.name}-Boom", "boom")
    else:
        job.retry()
    return jid


def within(got: float | None, want: float, tolerance: float = 0.10) -> bool:
    return got is not None and abs(got - want) <= tolerance * want


# ------------------------------------------------------------------ the bucket layout
def test_every_duration_from_a_tenth_of_a_millisecond_to_a_day_reads_back_within_ten_percent() -> None:
    v = 0.0001
    while v < 86400 * 2:
        for x in (v, v * 1.0001, v * 1.1, v * 1.19999):
            i = mt.bucket_of(x)
            low, high = mt.bucket_edges(i)
            assert low <= x < high, (x, i, low, high)
            assert abs(mt.representative(i) - x) <= x / 11 + 1e-15, (x, i)
        v *= 1.07
    assert mt.bucket_of(0) == 0 and mt.bucket_of(-1) == 0 and mt.bucket_of(float("nan")) == 0
    assert mt.bucket_of(10**9) == mt.LAST_BUCKET and mt.BUCKETS == mt.LAST_BUCKET + 1
    assert math.log(mt.BUCKET_RATIO) == mt.LN_RATIO   # the literal metrics.lua uses too


def test_lua_and_python_put_a_duration_in_the_same_bucket(engine: Client, q, clock: ManualClock) -> None:
    rng = random.Random(15)
    runs = [10 ** rng.uniform(-4.5, 5) for _ in range(120)] + [0.001, 0.0012, 1.0, 60.0, 3600.0, 86400.0]
    expected = [0] * mt.BUCKETS
    for r in runs:
        # the Lua side computes the run from the clock's decimal text: bucket what it will see
        start = clock.now
        run_job(q, run=r)
        expected[mt.bucket_of((start + r) - start)] += 1
        clock.set(start)      # every run starts at the same time (and ends within two days)
    got = engine.metrics.histogram(queue="testing", since=clock.now - 10, until=clock.now + 2 * 86400)
    assert got["run"] == expected
    assert sum(got["wait"]) == len(runs) and got["wait"][0] == len(runs)   # no wait: bucket 0


# ------------------------------------------------------------------ what is recorded
@pytest.mark.parametrize("run", [0.004, 0.050, 2.5])
def test_runs_land_in_buckets_whose_percentiles_are_within_ten_percent(engine: Client, q, clock: ManualClock,
                                                                       run: float) -> None:
    for _ in range(20):
        run_job(q, wait=run / 2, run=run)
    m = q.metrics(since=clock.now - 600, until=clock.now + 1)
    totals = m["totals"]
    assert totals["completed"] == 20 and totals["failed"] == totals["retried"] == 0
    for key in ("p50", "p95", "p99", "max"):
        assert within(totals["run"][key], run), (key, totals["run"])  # type: ignore[literal-required]
        assert within(totals["wait"][key], run / 2), (key, totals["wait"])  # type: ignore[literal-required]
    assert totals["run"]["count"] == totals["wait"]["count"] == 20


def test_mixed_runs_give_the_right_percentiles(engine: Client, q, clock: ManualClock) -> None:
    for _ in range(50):
        run_job(q, run=0.004)
    for _ in range(45):
        run_job(q, run=0.050)
    for _ in range(5):
        run_job(q, run=2.5)
    run = q.metrics(since=clock.now - 3000, until=clock.now + 1)["totals"]["run"]
    assert run["count"] == 100
    assert within(run["p50"], 0.004) and within(run["p95"], 0.050)
    assert within(run["p99"], 2.5) and within(run["max"], 2.5)


def test_failures_and_retries_are_counted_with_their_run_times(engine: Client, q, clock: ManualClock) -> None:
    run_job(q, "app.A", run=0.1)
    run_job(q, "app.B", run=0.2, outcome="fail")
    run_job(q, "app.B", run=0.3, outcome="retry")
    totals = engine.metrics(since=clock.now - 60, until=clock.now + 1)["totals"]
    assert (totals["completed"], totals["failed"], totals["retried"]) == (1, 1, 1)
    assert totals["run"]["count"] == 3 and within(totals["run"]["max"], 0.3)
    # the retried job comes back: retries exhausted by a second retry counts as failed
    job = q.pop()
    assert job is not None
    job.retry()
    totals = engine.metrics(since=clock.now - 60, until=clock.now + 1)["totals"]
    assert (totals["completed"], totals["failed"], totals["retried"]) == (1, 2, 1)


def test_a_stalled_job_handed_on_counts_as_retried(engine: Client, q, clock: ManualClock, other: Client) -> None:
    engine.config["grace-period"] = 0
    q.put("app.Slow", {}, retries=1)
    assert q.pop() is not None
    clock.advance(61)                                   # the lease (60 s) runs out
    assert other.queues["testing"].pop() is not None    # reclaimed: one retry spent
    clock.advance(61)
    assert other.queues["testing"].pop() is None         # no retries left: failed
    totals = q.metrics(since=clock.now - 600, until=clock.now + 1)["totals"]
    assert (totals["completed"], totals["failed"], totals["retried"]) == (0, 1, 1)


def test_batched_completions_and_pops_record_every_job(engine: Client, q, clock: ManualClock) -> None:
    q.put_many([("app.A", {}) for _ in range(30)] + [("app.B", {}) for _ in range(10)])
    clock.advance(0.5)
    jobs = engine.pop_from(["testing"], count=25)
    clock.advance(0.01)
    states, more, _ = engine.complete_and_pop([(j, None) for j in jobs], ["testing"], 25)
    assert states == ["complete"] * 25 and len(more) == 15
    clock.advance(2)
    engine.complete_many([(j, None) for j in more])
    by_class = engine.metrics.by_class(since=clock.now - 60, until=clock.now + 1)
    assert by_class["app.A"]["completed"] == 30 and by_class["app.B"]["completed"] == 10
    assert within(by_class["app.A"]["wait"]["p50"], 0.5) and by_class["app.B"]["wait"]["count"] == 10
    assert within(by_class["app.B"]["run"]["max"], 2.0)
    assert within(by_class["app.A"]["run_seconds"], 25 * 0.01 + 5 * 2.0)


def test_per_class_per_queue_and_namespace_wide(engine: Client, clock: ManualClock) -> None:
    emails, reports = engine.queues["emails"], engine.queues["reports/daily"]
    for _ in range(3):
        run_job(emails, "app.Send", run=0.01)
    run_job(emails, "app.Render", run=0.5)
    for _ in range(2):
        run_job(reports, "app.Render", run=1.0)
    window = {"since": clock.now - 60, "until": clock.now + 1}
    assert engine.metrics(**window)["totals"]["completed"] == 6
    assert emails.metrics(**window)["totals"]["completed"] == 4
    assert reports.metrics(**window)["totals"]["completed"] == 2
    assert emails.metrics(klass="app.Send", **window)["totals"]["completed"] == 3
    render = engine.metrics(klass="app.Render", **window)["totals"]
    assert render["completed"] == 3 and within(render["run"]["max"], 1.0)
    assert engine.metrics(klass="app.Unknown", **window)["totals"]["completed"] == 0
    assert engine.metrics(queue="never-used", **window)["totals"]["completed"] == 0
    by_class = engine.metrics.by_class(queue="emails", **window)
    assert set(by_class) == {"app.Send", "app.Render"}


# ------------------------------------------------------------------ series
def test_series_by_minute_are_aligned_and_complete(engine: Client, q, clock: ManualClock) -> None:
    clock.set(1_700_000_000 - 1_700_000_000 % HOUR)             # on an hour boundary
    start = clock.now
    for minute in range(5):
        clock.set(start + minute * MINUTE + 10)
        for _ in range(minute + 1):
            run_job(q, run=0.02)
    m = q.metrics(since=start, until=start + 5 * MINUTE)
    assert m["step"] == 60
    assert m["t"] == [start + k * MINUTE for k in range(5)]
    assert m["completed"] == [1, 2, 3, 4, 5]
    assert m["run"]["count"] == [1, 2, 3, 4, 5] and all(within(p, 0.02) for p in m["run"]["p50"])
    assert len(m["failed"]) == len(m["retried"]) == len(m["wait"]["p99"]) == 5
    # an unaligned window: the buckets covering it, starting on a minute
    m = q.metrics(since=start + 30, until=start + 150)
    assert m["t"] == [start, start + 60, start + 120] and m["completed"] == [1, 2, 3]
    # empty buckets: zero counts, None times
    m = q.metrics(since=start + 10 * MINUTE, until=start + 12 * MINUTE)
    assert m["completed"] == [0, 0] and m["run"]["p50"] == [None, None] and m["run"]["count"] == [0, 0]


def test_series_by_hour_use_the_hourly_rollup(engine: Client, q, clock: ManualClock) -> None:
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    for hour in range(3):
        for minute in (0, 30, 59):
            clock.set(start + hour * HOUR + minute * MINUTE + 1)
            run_job(q, run=0.3)
    clock.set(start + 3 * HOUR)
    m = q.metrics(since=start, until=start + 3 * HOUR, step=3600)
    assert m["t"] == [start, start + HOUR, start + 2 * HOUR] and m["completed"] == [3, 3, 3]
    assert m["totals"]["completed"] == 9 and within(m["totals"]["run"]["p99"], 0.3)
    # a window over a day: 3600 s steps by default, aligned on hours
    m = q.metrics(since=start - 20 * HOUR, until=start + 5 * HOUR)
    assert m["step"] == 3600 and all(t % HOUR == 0 for t in m["t"]) and sum(m["completed"]) == 9
    # the default window is the last hour, per minute
    m = q.metrics()
    assert m["step"] == 60 and m["t"][0] == (clock.now - HOUR) // MINUTE * MINUTE and sum(m["completed"]) == 3
    # minutes and hours give the same totals over the same whole hours
    by_minute = q.metrics(since=start, until=start + 3 * HOUR, step=600)["totals"]
    by_hour = q.metrics(since=start, until=start + 3 * HOUR, step=3600)["totals"]
    assert by_minute == by_hour


def test_a_window_mixes_hours_and_edge_minutes(engine: Client, q, clock: ManualClock) -> None:
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    for t in (start + 50 * MINUTE, start + HOUR + 5 * MINUTE, start + 2 * HOUR + 10 * MINUTE):
        clock.set(t)
        run_job(q, run=0.1)
    clock.set(start + 3 * HOUR)
    totals = engine.metrics.by_class(since=start + 40 * MINUTE, until=start + 2 * HOUR + 11 * MINUTE)
    assert totals["app.Job"]["completed"] == 3
    totals = engine.metrics.by_class(since=start + 51 * MINUTE, until=start + 2 * HOUR + 10 * MINUTE)
    assert totals["app.Job"]["completed"] == 1


def test_failure_groups_over_time(engine: Client, q, clock: ManualClock) -> None:
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    for minute, n in ((0, 2), (2, 1)):
        clock.set(start + minute * MINUTE)
        for _ in range(n):
            run_job(q, outcome="fail")
    clock.set(start + 3 * MINUTE)
    got = engine.metrics.failures(["testing-Boom", "nothing"], since=start, until=start + 3 * MINUTE)
    assert got["t"] == [start, start + 60, start + 120]
    assert got["groups"] == {"testing-Boom": [2, 0, 1], "nothing": [0, 0, 0]}
    hourly = engine.metrics.failures(["testing-Boom"], since=start, until=start + HOUR, step=3600)
    assert hourly["groups"]["testing-Boom"] == [3]


def test_backlog_by_class(engine: Client, q) -> None:
    q.put_many([("app.A", {}) for _ in range(5)] + [("app.B", {}) for _ in range(3)])
    assert engine.metrics.backlog("testing") == {"total": 8, "scanned": 8, "classes": {"app.A": 5, "app.B": 3}}
    assert engine.metrics.backlog("testing", limit=4) == {"total": 8, "scanned": 4, "classes": {"app.A": 4}}
    assert engine.metrics.backlog("empty") == {"total": 0, "scanned": 0, "classes": {}}


def test_totals_never_decrease_across_hours(engine: Client, q, clock: ManualClock) -> None:
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    seen: list[int] = []
    for hour in range(4):
        clock.set(start + hour * HOUR + 100)
        run_job(q, "app.A", run=0.004)
        run_job(q, "app.A", run=2.5, outcome="fail")
        rows = engine.metrics.totals()
        assert [(r["queue"], r["klass"], r["rank"]) for r in rows] == [("testing", "app.A", 1)]
        seen.append(rows[0]["completed"])
        assert rows[0]["failed"] == hour + 1 and sum(rows[0]["run"]) == 2 * (hour + 1)
        assert rows[0]["run"][mt.bucket_of(0.004)] == hour + 1
    assert seen == [1, 2, 3, 4]
    clock.set(start + 10 * HOUR)
    assert engine.metrics.totals()[0]["completed"] == 4      # folded hours stay counted


# ------------------------------------------------------------------ retention and the switch
def test_keys_expire_by_ttl_and_old_data_is_not_read(engine: Client, q, clock: ManualClock,
                                                      redis_conn: redis.Redis) -> None:
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    clock.set(start + 30)
    run_job(q, run=0.1)
    minute_key = engine.keys.key(f"mt:m:{start}:testing")
    hour_key = engine.keys.key(f"mt:h:{start}:testing")
    assert abs(redis_conn.pttl(minute_key) / 1000 - (1440 * MINUTE - 30)) < 5
    assert abs(redis_conn.pttl(hour_key) / 1000 - (720 * HOUR - 30)) < 5
    # reads follow the same retention on the engine's clock
    clock.set(start + 1440 * MINUTE + 1)
    assert q.metrics(since=start, until=start + 60)["completed"] == [0]
    assert q.metrics(since=start, until=start + HOUR, step=3600)["completed"] == [1]
    clock.set(start + 720 * HOUR + 1)
    assert q.metrics(since=start, until=start + HOUR, step=3600)["completed"] == [0]
    # shorter retention: a key written near the end of its minute lives a fraction of a second
    engine.config.update({"metrics-minutes": 1, "metrics-hours": 1})
    clock.set(start + 1000 * HOUR + 59.8)
    run_job(q, run=0.0)
    short = engine.keys.key(f"mt:m:{start + 1000 * HOUR}:testing")
    assert 0 < redis_conn.pttl(short) <= 200
    assert wait_until(lambda: not redis_conn.exists(short))


def wait_until(condition: Callable[[], bool], deadline: float = 30.0) -> bool:
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_metrics_switch(engine: Client, q, clock: ManualClock, redis_conn: redis.Redis) -> None:
    engine.config["metrics"] = 0
    run_job(q, run=0.1)
    run_job(q, outcome="fail")
    assert redis_conn.keys("*:mt:*") == []
    assert q.metrics(since=clock.now - 60, until=clock.now + 1)["totals"]["completed"] == 0
    assert q.stats()["run"]["count"] == 1              # Qless's per-day stats go on as before
    engine.config["metrics"] = 1
    run_job(q, run=0.1)
    assert q.metrics(since=clock.now - 60, until=clock.now + 1)["totals"]["completed"] == 1


@pytest.mark.parametrize(("name", "value"), [("metrics", 2), ("metrics", -1), ("metrics-minutes", 0),
                                             ("metrics-minutes", 10081), ("metrics-hours", 0),
                                             ("metrics-hours", 1.5)])
def test_metrics_options_are_checked(engine: Client, name: str, value: Any, unchanged: Callable[..., Any]) -> None:
    err = unchanged(InvalidArgument, engine.config.__setitem__, name, value)
    assert name in str(err)


# ------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize(("kwargs", "arg"), [
    ({"step": -60}, "step"), ({"step": 0}, "step"), ({"step": 90}, "step"), ({"step": 60.0}, "step"),
    ({"since": 100.0, "until": 50.0}, "until"), ({"since": float("nan")}, "since"), ({"until": "x"}, "until"),
    ({"since": True}, "since"), ({"klass": ""}, "klass"), ({"klass": 5}, "klass"), ({"queue": ""}, "queue"),
    ({"since": 0.0, "until": 86400.0 * 30, "step": 60}, "step"), ({"since": -1.0}, "since"),
    ({"until": 1e12}, "until"), ({"step": 10**15}, "step"),
])
def test_bad_arguments_raise_and_write_nothing(engine: Client, q, kwargs: dict[str, Any], arg: str,
                                               unchanged: Callable[..., Any]) -> None:
    run_job(q)
    err = unchanged(InvalidArgument, engine.metrics, **kwargs)
    assert arg in str(err)


def test_the_lua_side_refuses_the_same(engine: Client, q, unchanged: Callable[..., Any]) -> None:
    run_job(q)
    for args, arg in ((("", "", "100", "50", ""), "until"), (("", "", "", "", "-60"), "step"),
                      (("", "", "", "", "90"), "step"), (("", "", "abc", "", ""), "since")):
        err = unchanged(InvalidArgument, engine, "metrics.series", *args)
        assert arg in str(err) and "metrics.lua" in str(err)
    err = unchanged(InvalidArgument, engine, "metrics.backlog", "testing", "0")
    assert "limit" in str(err)
    for bad in ({"limit": 0}, {"limit": 10_001}):
        assert "limit" in str(unchanged(InvalidArgument, engine.metrics.backlog, "testing", **bad))
    assert "groups" in str(unchanged(InvalidArgument, engine.metrics.failures, "one-group"))


# ------------------------------------------------------------------ memory
def test_memory_per_queue_and_class_per_day_stays_under_the_stated_bound(engine: Client, q, clock: ManualClock,
                                                                          redis_conn: redis.Redis) -> None:
    """The README's figures: one queue and class busy every minute, its waits and runs spread
    over 12 buckets each (a busy class), measured over an hour (60 minute hashes and the hour's)
    and scaled to a day's 1,440 minutes and 24 hours."""
    start = 1_700_000_000 - 1_700_000_000 % HOUR
    spread = [0.001 * 1.5 ** k for k in range(12)]
    for minute in range(60):
        base = start + minute * MINUTE
        for k in range(12):
            clock.set(base + 1 - spread[k])
            q.put("app.Busy", {})
        clock.set(base + 1)
        jobs = q.pop(12)
        for k, job in enumerate(jobs):
            clock.set(base + 1 + spread[k])
            job.complete()
    minutes = sum(redis_conn.memory_usage(k) or 0 for k in redis_conn.keys("*:mt:m:*"))
    hours = sum(redis_conn.memory_usage(k) or 0 for k in redis_conn.keys("*:mt:h:*"))
    assert len(redis_conn.keys("*:mt:m:*")) == 60 and len(redis_conn.keys("*:mt:h:*")) == 1
    minutes_per_day, hours_per_day = 1440 * minutes / 60, 24 * hours
    print(f"metrics memory: {minutes / 60:.0f} B per minute, {hours:.0f} B per hour: a day's minutes "
          f"{minutes_per_day / 1024:.0f} KB (kept metrics-minutes), a day's hours {hours_per_day / 1024:.1f} KB "
          f"(kept metrics-hours)")
    assert minutes_per_day < 520 * 1024 and hours_per_day < 12 * 1024


def test_any_window_reads_a_bounded_number_of_keys(engine: Client, q, clock: ManualClock,
                                                   redis_conn: redis.Redis) -> None:
    """A window of centuries, a step of years, the epoch's start: each read visits at most the
    retained minutes and hours around now (counted with INFO commandstats)."""
    run_job(q)
    for kwargs in ({"since": 0.0, "until": 9e10, "step": 86400 * 365 * 100}, {"since": 0.0, "until": 9e10},
                   {"since": clock.now - 30 * 86400, "until": clock.now + 30 * 86400, "step": 60 * 1440}):
        redis_conn.config_resetstat()
        m = engine.metrics(**kwargs)
        assert sum(m["completed"]) == 1
        reads = redis_conn.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)
        assert reads <= 2 * (1440 + 720) + 10, (kwargs, reads)
