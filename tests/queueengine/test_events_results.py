"""Events for every transition, reply channel, wait / await_result, unique puts, workers, config."""

from __future__ import annotations

import asyncio
import threading

import pytest

from queueengine import Client, DuplicateJob, Event, JobFailed, JobNotFound, WaitTimeout
from queueengine.devtools.testing import ManualClock


def _collect(engine: Client):
    # the engine's subscriber: SSUBSCRIBE where events are sharded (a Redis >= 7 cluster)
    pubsub = engine.events.subscriber(engine.events.channel)
    pubsub.connect()

    def drain() -> list[Event]:
        out = []
        while (m := pubsub.get_message(timeout=0.2)) is not None:
            out.append(Event.parse(m[1]))
        return out

    return pubsub, drain


def test_one_event_per_transition(engine: Client, q, clock: ManualClock) -> None:
    pubsub, drain = _collect(engine)
    try:
        jid = q.put("k", {}, tags=("t",))
        job = q.pop()
        job.heartbeat()
        job.tag("u")
        job.untag("u")
        job.track()
        job.untrack()
        job.priority = 3
        job.retry()
        job = q.pop()
        job.complete(next_queue="other")
        job = engine.queues["other"].pop()
        job.complete({"r": 1})
        q.pause()
        q.unpause()
        engine.config["heartbeat"] = 30
        events = drain()
    finally:
        pubsub.close()
    names = [e.name for e in events]
    assert names == ["put", "popped", "heartbeat", "tagged", "untagged", "tracked", "untracked",
                     "priority", "retried", "popped", "advanced", "popped", "completed",
                     "paused", "unpaused", "config"]
    assert all(e.jid == jid for e in events[:13])
    assert events[0].queue == "testing" and events[0].time == clock.now
    assert events[10].data["to"] == "other"


def test_fail_cancel_lock_lost_events(engine: Client, q, clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    pubsub, drain = _collect(engine)
    worker_ps = engine.events.subscriber(engine.events.worker_channel("worker"))
    worker_ps.connect()
    try:
        q.put("k", {}, jid="a")
        job = q.pop()
        clock.set(job.expires_at + 1)
        q.pop()  # reclaimed by the same worker name
        q.put("k", {}, jid="b")
        q.pop().fail("g", "m")
        q.put("k", {}, jid="c")
        q.pop()
        engine.cancel("c")
        names = [(e.name, e.jid) for e in drain()]
        wmsgs = []
        while (m := worker_ps.get_message(timeout=0.2)) is not None:
            wmsgs.append(Event.parse(m[1]).name)
    finally:
        pubsub.close()
        worker_ps.close()
    assert ("lock_lost", "a") in names and ("failed", "b") in names and ("canceled", "c") in names
    assert wmsgs == ["lock_lost", "canceled"]


def test_listen(engine: Client, q) -> None:
    got: list[Event] = []
    ready = threading.Event()

    def run() -> None:
        ready.set()
        for ev in engine.events.listen(timeout=2):
            got.append(ev)
            if ev.name == "put":
                return

    t = threading.Thread(target=run)
    t.start()
    ready.wait()
    import time

    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        q.put("k", {})
        time.sleep(0.05)
    t.join(5)
    assert got and got[0].name == "put"


async def test_alisten(engine: Client, q) -> None:
    async def first() -> Event:
        async for ev in engine.events.alisten():
            return ev
        raise AssertionError

    task = asyncio.create_task(first())
    for _ in range(100):
        await asyncio.sleep(0.02)
        q.put("k", {})
        if task.done():
            break
    ev = await asyncio.wait_for(task, 5)
    assert ev.name == "put"


def test_wait_result(engine: Client, q, other: Client) -> None:
    jid = q.put("k", {"x": 2}, reply=True)

    def work() -> None:
        job = other.queues["testing"].pop()
        job.complete({"y": job.data["x"] * 2})

    t = threading.Timer(0.2, work)
    t.start()
    assert engine.wait(jid, timeout=5) == {"y": 4}
    t.join()
    assert engine.wait(jid, timeout=0) == {"y": 4}  # stored result, no message needed


def test_wait_missed_message(engine: Client, q, monkeypatch) -> None:
    # the job completes without a reply message (reply=False): the stored result is found
    jid = q.put("k", {})

    def work() -> None:
        q.pop().complete(7)

    t = threading.Timer(0.1, work)
    t.start()
    assert engine.wait(jid, timeout=5) == 7
    t.join()


def test_wait_failed_and_timeout_and_missing(engine: Client, q) -> None:
    jid = q.put("k", {}, reply=True)
    with pytest.raises(WaitTimeout):
        engine.wait(jid, timeout=0.2)
    q.pop().fail("testing-ValueError", "boom", traceback="tb")
    with pytest.raises(JobFailed) as info:
        engine.wait(jid, timeout=1)
    assert info.value.group == "testing-ValueError" and info.value.traceback == "tb"
    assert isinstance(WaitTimeout("x"), TimeoutError)
    with pytest.raises(JobNotFound):
        engine.wait("nope", timeout=1)


async def test_await_result(engine: Client, q) -> None:
    jid = q.put("k", {}, reply=True)

    async def later() -> None:
        await asyncio.sleep(0.1)
        q.pop().complete("done")

    task = asyncio.create_task(later())
    assert await engine.await_result(jid, timeout=5) == "done"
    await task


def test_unique_put(engine: Client, q, unchanged) -> None:
    q.put("k", {}, jid="same")
    unchanged(DuplicateJob, q.put, "k", {}, jid="same", unique=True)
    unchanged(DuplicateJob, q.put_many, [{"klass": "k", "data": {}, "jid": "same", "unique": True}])
    q.put("k", {"v": 2}, jid="same")  # without unique it is a move (Qless)
    assert engine.jobs["same"].data == {"v": 2}


def test_put_many(engine: Client, q) -> None:
    jids = q.put_many([("k", {"i": i}) for i in range(2500)])
    assert len(jids) == 2500 and q.counts["waiting"] == 2500
    assert [j.data["i"] for j in q.pop(3)] == [0, 1, 2]
    more = q.put_many([{"klass": "k", "data": {}, "priority": 5, "tags": ["t"]}])
    assert q.pop().jid == more[0]


def test_workers(engine: Client, q, clock: ManualClock) -> None:
    engine.workers.register("w1", {"host": "h", "pid": 1})
    q.put("k", {})
    job = engine.pop_from(["testing"], worker="w1")[0]
    counts = {w["name"]: w for w in engine.workers.counts}
    assert counts["w1"]["jobs"] == 1 and counts["w1"]["info"] == {"host": "h", "pid": 1}
    assert engine.workers["w1"]["jobs"] == [job.jid]
    job.complete()
    assert engine.workers["w1"]["jobs"] == []
    clock.advance(86401)
    engine.workers.beat("w2")
    assert [w["name"] for w in engine.workers.counts] == ["w2"]
    engine.workers.deregister("w2")
    assert engine.workers.counts == []


def test_config(engine: Client) -> None:
    assert engine.config["heartbeat"] == 60
    engine.config["heartbeat"] = 120
    assert engine.config["heartbeat"] == 120
    del engine.config["heartbeat"]
    assert engine.config["heartbeat"] == 60
    assert "grace-period" in engine.config.all()
    engine.config["application"] = "mine"
    assert engine.config["application"] == "mine"


def test_next_due_and_wait_for_work(engine: Client, q, clock: ManualClock) -> None:
    assert engine.next_due(["testing"]) is None
    q.put("k", {}, delay=30)
    assert engine.next_due(["testing"]) == 30
    engine.redis.delete(engine.keys.wake("testing"))
    assert engine.wait_for_work(["testing"], 0.05) is False
    q.put("k", {})
    assert engine.wait_for_work(["testing"], 1) is True


def test_complete_many(engine: Client, q, other: Client) -> None:
    for _ in range(3):
        q.put("k", {})
    jobs = q.pop(3)
    lost = other.jobs[jobs[2].jid]
    lost.holder = "another"
    out = engine.complete_many([(jobs[0], 1), (jobs[1], 2), (lost, 3)])
    assert out == ["complete", "complete", "LostLease"]
    assert engine.wait(jobs[1].jid, timeout=0) == 2


def test_unfail(engine: Client, q) -> None:
    for _ in range(3):
        q.put("k", {})
        q.pop().fail("g", "m")
    assert engine.unfail("g", "other", count=2) == 2
    assert engine.jobs.failed() == {"g": 1}
    assert engine.queues["other"].counts["waiting"] == 2
    assert q.stats()["failed"] == 1


def test_release_and_heartbeat_many(engine: Client, q, clock: ManualClock) -> None:
    first = q.put("k", {})
    second = q.put("k", {})
    a, b = q.pop(2)
    clock.advance(5)
    assert engine.heartbeat_many([a, b]) == [clock.now + 60, clock.now + 60]
    b.release()
    assert engine.jobs[second].state.value == "waiting"
    third = q.put("k", {})
    job = q.pop()
    assert job.jid == second and job.retries_left == 5
    a.complete()
    assert engine.heartbeat_many([a]) == ["WrongState"]
    assert q.pop().jid == third
    assert first


def test_wait_for_work_longer_than_socket_timeout(redis_url: str, redis_conn) -> None:
    c = Client.from_url(redis_url, namespace="test", socket_timeout=0.2)
    try:
        assert c.wait_for_work(["x"], 0.5) is False
    finally:
        c.close()


def test_delayed_retry_wakes_workers(engine: Client, q) -> None:
    q.put("k", {})
    job = q.pop()
    engine.redis.delete(engine.keys.wake("testing"))
    job.retry(delay=30)
    assert engine.wait_for_work(["testing"], 0.1) is True


def test_move_publishes_moved(engine: Client, q) -> None:
    jid = q.put("k", {})
    pubsub, drain = _collect(engine)
    try:
        engine.jobs[jid].move("other")
        events = drain()
    finally:
        pubsub.close()
    assert [(e.name, e.queue, e.data.get("from")) for e in events] == [("moved", "other", "testing")]
