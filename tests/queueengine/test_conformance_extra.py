"""Conformance items not covered elsewhere: the events of a stall exhaustion, advancing in the
same queue, due times that ignore paused and full queues, the wake-ups a worker relies on
(timeout, unpause, freed concurrency slot), a template jid clashing with a job, the combined
complete + pop call, and ``wait`` on a pool that outlived a Redis restart."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
import redis

from queueengine import Client, DuplicateJob, Event, JobState
from queueengine.devtools.testing import ManualClock


def _events(engine: Client) -> tuple[object, list[Event]]:
    sub = engine.events.subscriber(engine.events.channel, engine.events.worker_channel("worker"))
    sub.connect()
    seen: list[Event] = []
    return sub, seen


def _drain(sub: object, seen: list[Event]) -> list[tuple[str, str]]:
    while (m := sub.get_message(timeout=0.2)) is not None:  # type: ignore[attr-defined]
        seen.append(Event.parse(m[1]) if m[0].endswith(":events") else Event("w:" + Event.parse(m[1]).name,
                                                                               None, None, 0.0, {}))
    return [(e.name, e.data.get("group", "")) for e in seen]


def test_stall_exhaustion_events_lock_lost_to_worker_and_log_then_failed(engine: Client, q,
                                                                        clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    jid = q.put("k", {}, retries=0)
    job = q.pop()
    sub, seen = _events(engine)
    try:
        clock.set(job.expires_at + 1)
        assert q.pop(5) == []
        names = _drain(sub, seen)
    finally:
        sub.close()  # type: ignore[attr-defined]
    assert ("lock_lost", "") in names and ("w:lock_lost", "") in names
    assert names[-1] == ("failed", "failed-retries-testing")
    assert names.index(("lock_lost", "")) < names.index(("failed", "failed-retries-testing"))
    failed = engine.jobs[jid]
    assert failed.state is JobState.FAILED and failed.failure["group"] == "failed-retries-testing"


def test_advance_in_the_same_queue_publishes_advanced_and_resets_retries(engine: Client, q) -> None:
    jid = q.put("k", {}, retries=3)
    assert q.pop().retry() == 2
    sub, seen = _events(engine)
    try:
        assert q.pop().complete(next_queue="testing") == "waiting"
        names = [n for n, _ in _drain(sub, seen)]
    finally:
        sub.close()  # type: ignore[attr-defined]
    assert names == ["popped", "advanced"]
    job = engine.jobs[jid]
    assert job.state is JobState.WAITING and job.retries_left == 3 and job.queue_name == "testing"


def test_async_iteration_over_events(engine: Client, q) -> None:
    async def first_put() -> Event:
        async def put_soon() -> None:  # until the subscription (made by the iteration) sees one
            for i in range(50):
                await asyncio.sleep(0.2)
                await asyncio.to_thread(q.put, "k", {}, jid=f"aiter-{i}")

        task = asyncio.create_task(put_soon())
        async for event in engine.events:
            if event.name == "put":
                task.cancel()
                return event
        raise AssertionError("the stream ended")

    event = asyncio.run(asyncio.wait_for(first_put(), 10))
    assert event.jid is not None and event.jid.startswith("aiter-") and event.queue == "testing"


def test_recurring_children_name_their_template(engine: Client, q, clock: ManualClock) -> None:
    clock.set(0)
    q.recur("k", {}, interval=60, jid="r")
    first = q.pop()
    clock.set(61)
    second = q.pop()
    assert (first.jid, second.jid) == ("r-1", "r-2")
    assert first.spawned_from_jid == second.spawned_from_jid == "r"


def test_a_template_cannot_take_the_jid_of_a_job(engine: Client, q, unchanged) -> None:
    q.put("k", {}, jid="taken")
    err = unchanged(DuplicateJob, q.recur, "k", {}, interval=60, jid="taken")
    assert "taken" in str(err)


def test_next_due_leaves_out_paused_and_full_queues(engine: Client, q, clock: ManualClock) -> None:
    q.put("k", {}, delay=30)
    assert engine.next_due(["testing"]) == 30
    q.pause()
    assert engine.next_due(["testing"]) is None, "a paused queue has nothing due"
    q.unpause()
    clock.advance(30)
    assert engine.next_due(["testing"]) == 0
    q.max_concurrency = 1
    q.put("k", {}, jid="now")
    held = q.pop()
    assert held is not None
    # full: only the lease expiry can free a slot (the scheduled job is due, but cannot run)
    assert engine.next_due(["testing"]) == pytest.approx(held.expires_at - clock.now)


def test_pop_or_due_tells_an_idle_worker_when_to_look_again(engine: Client, q, clock: ManualClock) -> None:
    assert engine.pop_or_due(["testing"], 5) == ([], None)
    q.put("k", {}, delay=12)
    jobs, due = engine.pop_or_due(["testing"], 5)
    assert jobs == [] and due == 12
    q.put("k", {}, jid="a")
    jobs, due = engine.pop_or_due(["testing"], 5)
    assert [j.jid for j in jobs] == ["a"] and due == 12
    jobs, due = engine.pop_or_due(["testing"], 1)
    assert jobs == [] and due == 12
    engine.queues["paused"].put("k", {}, jid="p")
    engine.queues["paused"].pause()
    assert engine.pop_or_due(["paused"], 5) == ([], None)


def test_wake_tokens_follow_what_a_worker_can_do(engine: Client, q) -> None:
    wake = engine.keys.wake("testing")
    q.put("k", {}, jid="a")
    assert engine.redis.llen(wake) == 1
    assert [j.jid for j in q.pop(5)] == ["a"]
    assert engine.redis.llen(wake) == 0, "a pop that drained the queue drops its tokens"
    # a timeout hands the job back: wake a worker to reclaim it
    engine.jobs["a"].timeout()
    assert engine.redis.llen(wake) == 1
    held = q.pop()
    assert held is not None and held.jid == "a"
    # unpause: workers blocked on the queue may pop again
    q.pause()
    q.put("k", {}, jid="b")
    engine.redis.delete(wake)
    q.unpause()
    assert engine.redis.llen(wake) == 1
    # a freed slot of a queue with max-concurrency: the job held back may run now
    q.max_concurrency = 1
    assert q.pop() is None
    engine.redis.delete(wake)
    held.complete()
    assert engine.redis.llen(wake) == 1
    assert q.pop().jid == "b"


def test_complete_and_pop_is_one_call_with_both_results(engine: Client, q, other: Client,
                                                         redis_conn: redis.Redis) -> None:
    for i in range(3):
        q.put("k", {"i": i}, jid=f"j{i}")
    first = q.pop(2)
    theirs = other.jobs["j1"]
    redis_conn.config_resetstat()
    states, jobs, due = engine.complete_and_pop([(first[0], {"r": 0}), (theirs, None)], ["testing"], 5)
    calls = redis_conn.info("commandstats")
    assert calls["cmdstat_fcall" if "cmdstat_fcall" in calls else "cmdstat_evalsha"]["calls"] == 1
    assert states == ["complete", "LostLease"]
    assert [j.jid for j in jobs] == ["j2"] and due is not None
    assert engine.jobs["j0"].result == {"r": 0} and engine.jobs["j1"].state is JobState.RUNNING


def test_wait_rides_out_a_redis_restart_on_the_same_client(tmp_path: Path) -> None:
    """docs/internals.md request 7: the client's pool and reply inbox outlive the restart."""
    from queueengine.devtools.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    url = server.start()
    client = Client.from_url(url, namespace="rs", worker_name="w")
    try:
        q = client.queues["q"]
        jid = q.put("k", {}, reply=True)
        q.pop().complete(1)
        assert client.wait(jid, timeout=5) == 1            # opens the inbox
        pending = q.put("k", {}, reply=True)               # its reply will go to the inbox
        server.stop()
        EmbeddedRedis(tmp_path / "redis", port=server.port, appendonly=True).start()
        done = threading.Event()

        def finish() -> None:
            worker = Client.from_url(url, namespace="rs", worker_name="w")
            job = worker.queues["q"].pop()
            assert job is not None and job.jid == pending
            job.complete(2)
            worker.close()
            done.set()

        threading.Timer(0.3, finish).start()
        assert client.wait(pending, timeout=20) == 2       # the same client, after the restart
        assert done.wait(5)
    finally:
        client.close()
        with contextlib.suppress(Exception):
            redis.Redis.from_url(url).shutdown(nosave=True)


@pytest.mark.parametrize("mixed", [False, True], ids=["shared-options", "mixed-options"])
def test_put_many_both_forms_put_what_put_puts(engine: Client, q, redis_conn: redis.Redis, mixed: bool,
                                               unchanged) -> None:
    """put_many sends a batch whose jobs share their options as put_batch (options once, then
    jid and data per job), other batches as put_many (every field per job): same results."""
    q.put("k", {"old": True}, jid="dup", tags=("x",))
    items = [{"klass": "k", "data": {"i": i}, "tags": ["t"], "priority": (i % 2) if mixed else 1,
              "jid": f"b{i}"} for i in range(5)]
    items.append({"klass": "k", "data": {"moved": 1}, "tags": ["t"], "priority": 1, "jid": "dup"})
    jids = q.put_many(items)
    assert jids == [f"b{i}" for i in range(5)] + ["dup"]
    assert engine.jobs["dup"].data == {"moved": 1} and engine.jobs["dup"].tags == ["t"]
    assert engine.tags() == ["t"] and engine.jobs.tagged("x")["total"] == 0
    assert q.counts["waiting"] == 6 and len(engine.jobs["b3"].history) == 1
    order = ["b1", "b3", "dup", "b0", "b2", "b4"] if mixed else ["b0", "b1", "b2", "b3", "b4", "dup"]
    assert [j.jid for j in q.peek(6)] == order
    # a batch of unique puts with one taken jid is refused whole
    err = unchanged(DuplicateJob, q.put_many, [{"klass": "k", "data": {}, "jid": j, "unique": True}
                                                for j in ("fresh", "b2")])
    assert "b2" in str(err)
