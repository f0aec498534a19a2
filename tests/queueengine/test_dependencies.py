"""Dependencies and cancel (qless.md §6)."""

from __future__ import annotations

import pytest

from queueengine import Client, JobNotFound, JobState, WrongState
from queueengine.devtools.testing import ManualClock


def test_dependency_unlocks_on_final_complete(engine: Client, q) -> None:
    a = q.put("k", {}, jid="a")
    b = q.put("k", {}, jid="b", depends=[a])
    assert engine.jobs[b].state is JobState.DEPENDS
    assert engine.jobs[b].dependencies == ["a"] and engine.jobs[a].dependents == ["b"]
    assert q.counts["depends"] == 1 and q.jobs.depends() == ["b"]
    job = q.pop()
    assert job.jid == a and q.pop() is None
    job.complete()
    assert engine.jobs[b].state is JobState.WAITING
    assert q.pop().jid == b


def test_advancing_does_not_unlock(engine: Client, q) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b", depends=["a"])
    q.pop().complete(next_queue="other")
    assert engine.jobs["b"].state is JobState.DEPENDS


def test_complete_next_with_depends_and_delay(engine: Client, q, clock: ManualClock) -> None:
    clock.set(0)
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b")
    clock.set(3)
    a = q.pop()
    assert a.jid == "a"
    assert a.complete(next_queue="foo", depends=["b"], delay=10) == "depends"
    assert engine.jobs["a"].state is JobState.DEPENDS
    clock.set(6)
    q.pop().complete()
    assert engine.jobs["a"].state is JobState.SCHEDULED
    foo = engine.queues["foo"]
    clock.set(12)
    assert foo.pop() is None
    clock.set(13)
    assert foo.pop().jid == "a"


def test_delayed_dependent_goes_to_scheduled(engine: Client, q) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b", delay=1000, depends=["a"])
    q.pop().complete()
    assert engine.jobs["b"].state is JobState.SCHEDULED


def test_missing_dependency_is_satisfied(engine: Client, q) -> None:
    q.put("k", {}, jid="b", depends=["ghost"])
    assert engine.jobs["b"].state is JobState.WAITING


def test_chain(engine: Client, q) -> None:
    q.put("k", {}, jid="j0")
    for i in range(1, 5):
        q.put("k", {}, jid=f"j{i}", depends=[f"j{i - 1}"])
    order = []
    while (job := q.pop()) is not None:
        order.append(job.jid)
        job.complete()
    assert order == [f"j{i}" for i in range(5)]


def test_depends_on_off(engine: Client, q) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="c")
    q.put("k", {}, jid="b", depends=["a"])
    job = engine.jobs["b"]
    job.depend("c")
    assert sorted(engine.jobs["b"].dependencies) == ["a", "c"]
    job.undepend("a")
    assert engine.jobs["b"].dependencies == ["c"]
    job.undepend(all=True)
    assert engine.jobs["b"].state is JobState.WAITING
    with pytest.raises(WrongState):
        engine.jobs["b"].depend("a")


def test_cancel_refuses_to_orphan(engine: Client, q, unchanged) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b", depends=["a"])
    unchanged(WrongState, engine.cancel, "a")
    assert engine.cancel("a", "b") == ["a", "b"]
    with pytest.raises(JobNotFound):
        engine.jobs["a"]


def test_cancel_either_order(engine: Client, q) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b", depends=["a"])
    assert sorted(engine.cancel("b", "a")) == ["a", "b"]
    assert engine.redis.keys("*j:*") == []


def test_cancel_missing_is_fine(engine: Client) -> None:
    assert engine.cancel("nope") == []


def test_cancel_cleans_everything(engine: Client, q, redis_conn) -> None:
    jid = q.put("k", {}, tags=("t1", "t2"))
    engine.track(jid)
    job = q.pop()
    job.fail("g", "m")
    engine.jobs[jid].cancel()
    assert engine.jobs.tracked() == {"jobs": [], "expired": []}
    assert engine.tags() == [] and engine.jobs.tagged("t1")["total"] == 0
    assert engine.jobs.failed() == {}
    assert q.stats()["failed"] == 0
    keys = {k.decode() for k in redis_conn.keys("*")}
    assert not any(":j:" in k or ":t:" in k or k.endswith((":tracked", ":failed", ":tags")) for k in keys), keys


def test_cancel_running_notifies_worker(engine: Client, q) -> None:
    q.put("k", {}, jid="a")
    job = q.pop()
    assert job.cancel() == ["a"]
    assert job.state is JobState.CANCELED
    assert q.counts["running"] == 0
    assert engine.workers["worker"]["jobs"] == []
