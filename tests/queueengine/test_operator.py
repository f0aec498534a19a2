"""client.operator: rows of many jobs, bulk operations, failure-group chunks, the dashboard's
reserved keys; client.events.publish / stream; client.config.options()."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from queueengine import Client, InvalidArgument, Job, JobState, UnsupportedData
from queueengine.devtools.testing import ManualClock
from queueengine.operator import MAX_JIDS, BulkResult, check_name, check_names, check_priority

HOSTILE = ["a/b", "50%", "has space", 'it\'s "q"', "café"]

ROW_ATTRIBUTES = ("jid", "klass", "data", "priority", "queue_name", "state", "worker", "expires_at",
                  "original_retries", "retries_left", "time", "tags", "throttles", "failure", "exhausted",
                  "spawned_from_jid", "backoff", "reply", "result", "scheduled_at")


def failed_job(engine: Client, queue: str, group: str, jid: str | None = None, **put: Any) -> str:
    """A job put into ``queue``, popped and failed in ``group``."""
    engine.queues[queue].put("app.jobs.Fail", {"n": 1}, jid=jid, **put)
    job = engine.queues[queue].pop()
    assert job is not None
    job.fail(group, "boom")
    return job.jid


def key(engine: Client, suffix: str) -> str:
    return engine.prefix + suffix


# ---------------------------------------------------------------------- rows
def test_rows_match_the_full_record_field_by_field(engine: Client, clock: ManualClock) -> None:
    """Waiting, scheduled, running, failed, complete and tagged/throttled/backoff jobs read by
    ``rows`` equal ``client.jobs[jid]`` on every row attribute; unknown jids are listed missing."""
    q = engine.queues["rows"]
    waiting = q.put("app.jobs.W", {"x": [1, "two"]}, priority=7, tags=("t1", "t2"), retries=3,
                    throttles=("api",), backoff={"base": 2, "factor": 2, "max": 60})
    scheduled = q.put("app.jobs.S", {}, delay=120)
    running = q.put("app.jobs.R", {"r": True}, priority=9)
    popped = q.pop()
    assert popped is not None and popped.jid == running
    failed = failed_job(engine, "rows-f", "rows-f-Err")
    done = engine.queues["rows-c"].put("app.jobs.C", {})
    finished = engine.queues["rows-c"].pop()
    assert finished is not None
    finished.complete({"answer": 42})
    jids = [waiting, "nosuch", scheduled, running, failed, done, "also missing"]
    found, missing = engine.operator.rows(jids)
    assert missing == ["nosuch", "also missing"]
    assert list(found) == [waiting, scheduled, running, failed, done]
    for jid, job in found.items():
        full = engine.jobs[jid]
        assert isinstance(full, Job) and isinstance(job, Job)
        for attribute in ROW_ATTRIBUTES:
            assert getattr(job, attribute) == getattr(full, attribute), (jid, attribute)
        assert job.history == full.history   # the rest loads on first access
    assert found[running].state is JobState.RUNNING and found[failed].failure is not None


def test_rows_read_records_with_plain_hmgets(engine: Client, redis_conn: redis.Redis) -> None:
    """One HMGET per jid and no Lua call: no script holds Redis for the whole batch."""
    jids = engine.queues["rows"].put_many([("app.jobs.X", {"i": i}) for i in range(40)])
    redis_conn.config_resetstat()
    found, missing = engine.operator.rows(jids)
    stats = redis_conn.info("commandstats")
    assert len(found) == 40 and not missing
    assert stats["cmdstat_hmget"]["calls"] == 40
    assert not any(name in stats for name in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"))


# ---------------------------------------------------------------------- bulk operations
def test_retry_requeues_failed_jobs_and_says_why_it_skipped_the_others(engine: Client) -> None:
    """Failed jobs go back to waiting in their queue with their data, priority and tags; a
    waiting job and an unknown jid are skipped with today's reasons."""
    failed = failed_job(engine, "work", "work-Err", priority=4, tags=("keep",))
    waiting = engine.queues["work"].put("app.jobs.X", {})
    result = engine.operator.retry([failed, waiting, "nosuch"])
    assert result == BulkResult(done=[failed], skipped=[("nosuch", "not found"), (waiting, "not failed (waiting)")])
    job = engine.jobs[failed]
    assert (job.state, job.queue_name, job.priority, job.tags, job.data) == \
        (JobState.WAITING, "work", 4, ["keep"], {"n": 1})
    assert engine.jobs.failed() == {}


def test_move_sends_jobs_to_a_queue_but_not_running_ones(engine: Client, redis_conn: redis.Redis) -> None:
    """Waiting, scheduled and failed jobs are moved into the queue's work set; a running job is
    skipped: "running (time it out first)"."""
    q = engine.queues["from"]
    waiting = q.put("app.jobs.X", {})
    scheduled = q.put("app.jobs.X", {}, delay=60)
    running = q.put("app.jobs.X", {}, priority=5)
    assert q.pop() is not None
    failed = failed_job(engine, "elsewhere", "elsewhere-Err")
    result = engine.operator.move([waiting, scheduled, running, failed], "to")
    assert result.done == [waiting, scheduled, failed]
    assert result.skipped == [(running, "running (time it out first)")]
    assert {j.decode() for j in redis_conn.zrange(key(engine, "q:to:work"), 0, -1)} == {waiting, scheduled, failed}
    assert redis_conn.zcard(key(engine, "q:from:work")) == 0 and redis_conn.zcard(key(engine, "q:from:scheduled")) == 0
    assert engine.jobs[running].state is JobState.RUNNING


def test_requeue_puts_jobs_back_into_their_own_queue_or_another(engine: Client) -> None:
    """A complete and a failed job requeued without a queue go back to their own; with one, to it."""
    done = engine.queues["a"].put("app.jobs.X", {"v": 1})
    job = engine.queues["a"].pop()
    assert job is not None
    job.complete()
    failed = failed_job(engine, "b", "b-Err")
    assert engine.operator.requeue([done, failed]) == BulkResult(done=[done, failed])
    assert [(engine.jobs[j].queue_name, engine.jobs[j].state) for j in (done, failed)] == \
        [("a", JobState.WAITING), ("b", JobState.WAITING)]
    assert engine.operator.requeue([done], queue="c").done == [done]
    assert engine.jobs[done].queue_name == "c"


def test_cancel_cancels_what_it_can_and_keeps_depended_on_jobs(engine: Client) -> None:
    """A job another (unselected) job depends on is kept; the rest go; unknown or complete
    jobs are skipped."""
    q = engine.queues["work"]
    needed = q.put("app.jobs.X", {})
    q.put("app.jobs.Y", {}, depends=[needed])
    plain = q.put("app.jobs.X", {})
    result = engine.operator.cancel([needed, plain, "nosuch"])
    assert result.done == [plain]
    assert result.skipped == [(needed, "other jobs depend on it"), ("nosuch", "not found or complete")]
    assert needed in engine.jobs and plain not in engine.jobs
    together = engine.operator.cancel([q.put("app.jobs.X", {}), "gone"])
    assert len(together.done) == 1 and together.skipped == [("gone", "not found or complete")]


def test_timeout_expires_running_leases(engine: Client, redis_conn: redis.Redis) -> None:
    """A running job's lease ends now (stalled, handed out again by the next pop); a waiting
    one is skipped: "not running (waiting)"."""
    q = engine.queues["work"]
    running = q.put("app.jobs.X", {})
    assert q.pop() is not None
    waiting = q.put("app.jobs.X", {})
    result = engine.operator.timeout([running, waiting, "nosuch"])
    assert result == BulkResult(done=[running], skipped=[("nosuch", "not found"), (waiting, "not running (waiting)")])
    assert engine.views.jobs("stalled", "work")["jobs"][0]["jid"] == running
    assert engine.jobs[running].state is JobState.STALLED
    assert redis_conn.zscore(key(engine, "q:work:locks"), running) <= engine.now()
    assert [j.jid for j in engine.queues["work"].pop(2)] == [running, waiting]


def test_set_priority_and_tags(engine: Client, redis_conn: redis.Redis) -> None:
    """Priority changes the pop order; tags and untags update the tag index."""
    q = engine.queues["work"]
    first, second = q.put("app.jobs.X", {}), q.put("app.jobs.X", {})
    assert engine.operator.set_priority([second, "nosuch"], 10) == BulkResult(done=[second],
                                                                             skipped=[("nosuch", "not found")])
    assert engine.jobs[second].priority == 10 and [j.jid for j in q.peek(2)] == [second, first]
    assert engine.operator.tag([first, second], ["hot", "eu"]).done == [first, second]
    assert set(engine.jobs[first].tags) == {"hot", "eu"}
    assert {m.decode() for m in redis_conn.zrange(key(engine, "t:hot"), 0, -1)} == {first, second}
    assert engine.operator.untag([first], ["hot"]).done == [first]
    assert engine.jobs[first].tags == ["eu"]
    assert [m.decode() for m in redis_conn.zrange(key(engine, "t:hot"), 0, -1)] == [second]


def test_hostile_names_work_as_jids_queues_groups_and_tags(engine: Client, redis_conn: redis.Redis) -> None:
    """Every legal name works in every role of every operation."""
    for name in HOSTILE:
        failed_job(engine, name, name, jid=name)
        assert engine.operator.group_size(name) == 1 and engine.operator.group_jids(name) == [name]
        found, missing = engine.operator.rows([name])
        assert found[name].queue_name == name and not missing
        assert engine.operator.retry([name]).done == [name]
        assert engine.operator.tag([name], [name]).done == [name] and engine.jobs[name].tags == [name]
        assert engine.operator.set_priority([name], 3).done == [name]
        assert engine.operator.move([name], name + "/2").done == [name]
        assert redis_conn.zscore(key(engine, f"q:{name}/2:work"), name) is not None
        assert engine.operator.untag([name], [name]).done == [name] and engine.jobs[name].tags == []
        assert engine.operator.requeue([name], queue=name).done == [name]
        assert engine.operator.cancel([name]).done == [name] and name not in engine.jobs


def test_bad_arguments_change_nothing(engine: Client, unchanged: Callable[..., Any]) -> None:
    """Each bad argument is refused with InvalidArgument naming it, before anything is written."""
    failed = failed_job(engine, "work", "work-Err")
    op = engine.operator
    cases: list[tuple[Callable[..., Any], tuple[Any, ...], str]] = [
        (op.retry, (failed,), "jids"),                                  # a lone string
        (op.retry, ([failed, "bad{jid}x:history"],), "jids"),
        (op.retry, ([failed, ""],), "jids"),
        (op.retry, ([f"j{i}" for i in range(MAX_JIDS + 1)],), "jids"),
        (op.move, ([failed], "bad{queue}"), "queue"),
        (op.move, ([failed], ""), "queue"),
        (op.requeue, ([failed], " edge"), "queue"),
        (op.set_priority, ([failed], 5000), "priority"),
        (op.set_priority, ([failed], "3"), "priority"),
        (op.tag, ([failed], []), "tags"),
        (op.tag, ([failed], ["ok", "t\x00"]), "tags"),
        (op.untag, ([failed], "hot"), "tags"),
        (op.cancel, ([failed, 7],), "jids"),
        (op.timeout, (None,), "jids"),
        (op.rows, ([failed] * 2 + ["x:dependents"],), "jids"),
        (op.group_jids, ("work-Err", -1, 10), "skip"),
        (op.group_jids, ("work-Err", 0, MAX_JIDS + 1), "count"),
        (op.group_size, ("",), "group"),
        (op.progress.create, ("op1", {}, 60), "fields"),
        (op.progress.create, ("op1", {"a": float("nan")}, 60), "fields"),
        (op.progress.create, ("op1", {"a": 1}, 0), "ttl"),
        (op.progress.create, ("bad{id}", {"a": 1}, 60), "record_id"),
        (op.progress.update, ("op1", {"a": [1]}, 60), "fields"),
        (op.live.acquire, ("", 3), "token"),
        (op.live.sample, ("tok", ["overview"], 0, 60), "lease"),
        (op.live.sample, ("tok", ["overview"], 3, -1), "interest"),
        (op.live.sample, ("tok", "overview", 3, 60), "topics"),
        (op.live.follow, (["a\nb"], 60), "topics"),
        (engine.events.publish, ("completed",), "name"),
        (engine.events.publish, ("dashboard.",), "name"),
        (engine.events.publish, ("x.dashboard.op",), "name"),
    ]
    for fn, args, named in cases:
        error = unchanged(InvalidArgument, fn, *args)
        assert named in str(error), (fn.__name__, args, str(error))
    error = unchanged(UnsupportedData, engine.events.publish, "dashboard.op", op={"v": float("inf")})
    assert "fields" in str(error)
    assert unchanged(InvalidArgument, engine.events.publish, "dashboard.op", e="x").args


def test_a_selection_is_one_call_of_at_most_max_jids(engine: Client) -> None:
    """500 jids are fine; duplicates count once."""
    jids = engine.queues["work"].put_many([("app.jobs.X", {}) for _ in range(MAX_JIDS)])
    result = engine.operator.set_priority(jids + jids[:10], 1)
    assert len(result.done) == MAX_JIDS and not result.skipped


# ---------------------------------------------------------------------- failure groups
def test_group_chunks_come_oldest_first(engine: Client, clock: ManualClock) -> None:
    """A group's jids in chunks from the oldest failure; new failures come after every chunk."""
    jids = []
    for i in range(7):
        clock.advance(1)
        jids.append(failed_job(engine, "g", "g-Err", jid=f"job-{i}"))
    op = engine.operator
    assert op.group_size("g-Err") == 7 and op.group_size("no such group") == 0
    assert op.group_jids("g-Err", 0, 3) == jids[:3]
    failed_job(engine, "g", "g-Err", jid="newest")
    assert op.group_jids("g-Err", 3, 3) == jids[3:6]
    assert op.group_jids("g-Err", 6, 3) == [jids[6], "newest"]
    assert op.group_jids("g-Err", 8, 3) == [] and op.group_jids("no such group") == []


# ---------------------------------------------------------------------- the dashboard's keys
def test_progress_records(engine: Client, redis_conn: redis.Redis) -> None:
    """Records keep their fields as text with a TTL, the index lists them newest first and
    drops entries older than the TTL."""
    progress = engine.operator.progress
    redis_conn.zadd(key(engine, "dash:ops"), {"ancient": time.time() - 90_000})
    progress.create("first", {"kind": "retry", "total": 30, "started": 1.5}, ttl=3600)
    progress.create("second", {"kind": "cancel", "total": 2})
    assert progress.get("first") == {"kind": "retry", "total": "30", "started": "1.5"}
    assert 0 < redis_conn.ttl(key(engine, "dash:op:first")) <= 3600
    assert progress.recent() == ["second", "first"]
    progress.update("first", {"done": 30, "state": "done"}, ttl=60)
    assert progress.get("first") == {"kind": "retry", "total": "30", "started": "1.5", "done": "30", "state": "done"}
    assert 0 < redis_conn.ttl(key(engine, "dash:op:first")) <= 60
    assert progress.get("never") is None


def test_leader_lease(engine: Client, redis_conn: redis.Redis) -> None:
    """One token holds the lease at a time; only the holder renews or releases it; it expires."""
    live = engine.operator.live
    assert live.holder() is None
    assert live.acquire("a", 30) and not live.acquire("b", 30)
    assert live.holder() == "a"
    assert not live.renew("b", 60) and live.renew("a", 60)
    assert 30_000 < redis_conn.pttl(key(engine, "dash:live-leader")) <= 60_000
    assert not live.release("b") and live.holder() == "a"
    assert live.release("a") and live.holder() is None
    assert live.acquire("b", 0.05)
    deadline = time.monotonic() + 20
    while live.holder() is not None:
        assert time.monotonic() < deadline, "the lease did not expire"
        time.sleep(0.02)


def test_interest_set_and_sample(engine: Client, redis_conn: redis.Redis) -> None:
    """Followed topics expire on their own; one sample takes the lease, records the interest and
    reads the holder, every followed topic and the server's run id."""
    live = engine.operator.live
    live.follow(["queue.a/b", "overview"], ttl=60)
    live.follow(["fleeting"], ttl=0.05)
    deadline = time.monotonic() + 20
    while "fleeting" in live.followed():
        assert time.monotonic() < deadline, "an expired interest stayed"
        time.sleep(0.02)
    assert sorted(live.followed()) == ["overview", "queue.a/b"]
    first = live.sample("me", ["job.café"], lease=30, interest=60)
    assert (first.holder, first.acquired) == ("me", True)
    assert sorted(first.watched) == ["job.café", "overview", "queue.a/b"]
    assert first.run_id == redis_conn.info("server")["run_id"] == live.run_id()
    other = live.sample("other", [], lease=30, interest=60)
    assert (other.holder, other.acquired) == ("me", False)
    redis_conn.pexpire(key(engine, "dash:live-leader"), 1000)
    renewed = live.sample("me", [], lease=30, interest=60, renew=True)
    assert renewed.holder == "me" and redis_conn.pttl(key(engine, "dash:live-leader")) > 1000


# ---------------------------------------------------------------------- events
async def test_published_events_reach_a_stream_and_it_counts_reconnects(engine: Client,
                                                                        redis_conn: redis.Redis) -> None:
    """``publish`` sends an event shaped as the engine's own; ``stream`` reads it, and after its
    connection is killed it counts one reconnect and reads on."""
    async with engine.events.stream() as stream:
        assert stream.subscribed and stream.reconnects == 0
        assert engine.events.publish("dashboard.op", op={"id": "x", "done": 3}, queue="a/b") == 1
        event = await next_event(stream, "dashboard.op")
        assert (event.jid, event.queue, event.data) == (None, "a/b", {"op": {"id": "x", "done": 3}})
        redis_conn.client_kill_filter(_type="pubsub")
        deadline = time.monotonic() + 30
        while stream.reconnects == 0 or not stream.subscribed:
            assert time.monotonic() < deadline, "the stream did not reconnect"
            await stream.get(timeout=0.1)
        assert stream.reconnects == 1
        engine.events.publish("dashboard.again", jid="café")
        assert (await next_event(stream, "dashboard.again")).jid == "café"


def test_a_killed_sync_subscription_is_reported_as_a_gap(engine: Client, redis_conn: redis.Redis) -> None:
    """``listen(reconnected=True)`` says "reconnected" after its connection is killed (redis-py
    must not reconnect behind its back), then reads on."""
    import threading

    got: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        for event in engine.events.listen(stop=stop, reconnected=True):
            got.append(event.name)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not redis_conn.pubsub_numsub(engine.events.channel)[0][1]:
            assert time.monotonic() < deadline, "the listener did not subscribe"
            time.sleep(0.02)
        assert redis_conn.client_kill_filter(_type="pubsub") == 1
        while "dashboard.after" not in got:
            assert time.monotonic() < deadline + 10, f"no event after the gap (got {got})"
            engine.events.publish("dashboard.after")
            time.sleep(0.05)
        assert "reconnected" in got and got.index("reconnected") < got.index("dashboard.after")
    finally:
        stop.set()
        thread.join(10)


async def next_event(stream: Any, name: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"no {name} event"
        event = await stream.get(timeout=0.25)
        if event is not None and event.name == name:
            return event
        await asyncio.sleep(0)


# ---------------------------------------------------------------------- config and name checks
def test_config_options_for_a_config_page(engine: Client) -> None:
    """Every known option with its default, stored values (per-queue and free-form included)."""
    engine.config["heartbeat"] = 90
    engine.config["reports-max-concurrency"] = 2
    engine.config["my-app-flag"] = "on"
    entries = {e.name: e for e in engine.config.options()}
    assert (entries["heartbeat"].value, entries["heartbeat"].stored) == ("90", True)
    assert (entries["grace-period"].value, entries["grace-period"].stored) == ("10", False)
    assert entries["grace-period"].option is not None and entries["grace-period"].option.kind == "number"
    assert entries["reports-max-concurrency"].option is not None and entries["reports-max-concurrency"].known
    assert entries["my-app-flag"].option is None and entries["my-app-flag"].value == "on"
    assert list(entries) == sorted(entries)
    assert [o.name for o in engine.config.per_queue_options()] == \
        ["<queue>-heartbeat", "<queue>-max-concurrency", "<queue>-max-queue-length"]


@pytest.mark.parametrize("name", HOSTILE)
def test_name_checks_accept_legal_names(name: str) -> None:
    """The public checks follow the engine's rule."""
    assert check_name(name, "queue") == name and check_names([name, name], "tags") == [name]


def test_name_checks_refuse_what_the_engine_refuses() -> None:
    """Messages name the argument; ``existing`` accepts names written before the rule."""
    with pytest.raises(InvalidArgument, match="queue"):
        check_name("a{b}", "queue")
    assert check_name("odd\nqueue ", "queue", existing=True) == "odd\nqueue "
    with pytest.raises(InvalidArgument, match="jid"):
        check_name("x:history", "jid", existing=True)
    with pytest.raises(InvalidArgument, match="tags"):
        check_names("abc", "tags")
    assert check_priority(-4095) == -4095
    with pytest.raises(InvalidArgument, match="priority"):
        check_priority(4096)
