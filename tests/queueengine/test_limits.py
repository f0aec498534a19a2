"""Pause, per-queue max-concurrency, named throttles, strict multi-queue pop."""

from __future__ import annotations

from queueengine import Client, JobState


def test_pause(engine: Client, q) -> None:
    q.put("k", {})
    q.pause()
    assert q.pop() is None
    assert q.counts["paused"] is True and q.paused
    assert len(q.peek(5)) == 1
    q.unpause()
    assert q.pop() is not None


def test_max_concurrency(engine: Client, q) -> None:
    q.max_concurrency = 2
    for _ in range(5):
        q.put("k", {})
    jobs = q.pop(5)
    assert len(jobs) == 2
    assert q.pop() is None
    jobs[0].complete()
    assert len(q.pop(5)) == 1
    q.max_concurrency = 0
    assert len(q.pop(5)) == 2


def test_named_throttle(engine: Client, q) -> None:
    engine.throttles["api"].maximum = 2
    other = engine.queues["other"]
    a = [q.put("k", {}, throttles=("api",)) for _ in range(2)]
    b = [other.put("k", {}, throttles=("api",)) for _ in range(2)]
    free = q.put("k", {})
    got = q.pop(5)
    assert [j.jid for j in got] == [*a, free]
    assert other.pop(5) == []
    assert engine.jobs[b[0]].state is JobState.THROTTLED
    assert other.counts["throttled"] == 2 and other.jobs.throttled() == b
    assert engine.throttles["api"].pending() == b
    assert sorted(engine.throttles["api"].locks()) == sorted(a)
    got[0].complete()
    assert engine.jobs[b[0]].state is JobState.WAITING
    job = other.pop()
    assert job.jid == b[0]
    got[1].fail("g", "m")
    assert other.pop().jid == b[1]
    info = engine.throttles["api"].info()
    assert info == {"name": "api", "maximum": 2, "locks": 2, "pending": 0}


def test_throttle_raise_releases_pending(engine: Client, q) -> None:
    engine.throttles["t"].maximum = 1
    jids = [q.put("k", {}, throttles=("t",)) for _ in range(3)]
    assert len(q.pop(3)) == 1
    assert q.counts["throttled"] == 2
    engine.throttles["t"].maximum = 3
    assert [j.jid for j in q.pop(3)] == jids[1:]


def test_throttle_keeps_fifo_place(engine: Client, q) -> None:
    engine.throttles["t"].maximum = 1
    first = q.put("k", {}, throttles=("t",))
    second = q.put("k", {}, throttles=("t",))
    job = q.pop()
    assert job.jid == first
    assert q.pop() is None
    third = q.put("k", {})
    job.complete()
    assert [j.jid for j in q.pop(2)] == [second, third]


def test_pop_from_strict_priority(engine: Client) -> None:
    for name, n in (("c", 3), ("b", 2), ("a", 5)):
        for i in range(n):
            engine.queues[name].put("k", {}, jid=f"{name}{i}")
    got = engine.pop_from(["c", "b", "a"], count=4)
    assert [j.jid for j in got] == ["c0", "c1", "c2", "b0"]
    got = engine.pop_from(["c", "b", "a"], count=10)
    assert [j.jid for j in got] == ["b1", "a0", "a1", "a2", "a3", "a4"]


def test_length(engine: Client, q) -> None:
    q.put("k", {})
    q.put("k", {}, delay=10)
    q.put("k", {}, depends=["x-missing"])
    q.put("k", {}, jid="dep-src")
    q.put("k", {}, depends=["dep-src"])
    q.pop()
    assert len(q) == 4  # running + 2 waiting + scheduled; depends excluded


def test_priority_of_a_throttled_job(engine: Client, q) -> None:
    engine.throttles["t"].maximum = 1
    q.put("k", {}, throttles=("t",), jid="a")
    q.put("k", {}, throttles=("t",), jid="b")
    q.put("k", {}, throttles=("t",), jid="c")
    running = q.pop()
    assert q.pop(5) == []
    engine.jobs["c"].priority = 5
    assert engine.throttles["t"].pending() == ["c", "b"]
    running.complete()
    assert q.pop().jid == "c"
