"""put / pop / peek / complete / fail / retry / heartbeat: the core lifecycle."""

from __future__ import annotations

import pytest

from queueengine import Client, InvalidArgument, JobNotFound, JobState, LostLease, WrongState
from queueengine.devtools.testing import ManualClock


def test_put_get_pop_complete(engine: Client, q, clock: ManualClock) -> None:
    jid = q.put("app.jobs.Resize", {"w": 10}, tags=("a",))
    job = engine.jobs[jid]
    assert job.state is JobState.WAITING
    assert job.klass == "app.jobs.Resize" and job.data == {"w": 10} and job.tags == ["a"]
    assert job.queue_name == "testing" and job.original_retries == 5 and job.retries_left == 5
    assert [h["what"] for h in job.history] == ["put"]
    clock.advance(1)
    popped = q.pop()
    assert popped is not None and popped.jid == jid
    assert popped.state is JobState.RUNNING and popped.worker == "worker"
    assert popped.expires_at == clock.now + 60
    assert popped.complete({"ok": 1}) == "complete"
    assert popped.state is JobState.COMPLETE
    job = engine.jobs[jid]
    assert job.state is JobState.COMPLETE and job.result == {"ok": 1}
    assert [h["what"] for h in job.history] == ["put", "popped", "done"]
    assert engine.jobs.complete() == [jid]
    assert q.pop() is None


def test_pop_many_and_order(q, clock: ManualClock) -> None:
    jids = [q.put("k", {"i": i}) for i in range(10)]
    jobs = q.pop(4)
    assert [j.jid for j in jobs] == jids[:4]
    assert [j.jid for j in q.peek(10)] == jids[4:]


def test_priority_order(q) -> None:
    for p in range(-10, 10):
        q.put("k", {}, priority=p, jid=f"p{p}")
    assert [j.priority for j in q.peek(100)] == list(range(9, -11, -1))


def test_fifo_within_priority(q, clock: ManualClock) -> None:
    jids = [q.put("k", {}) for _ in range(100)]
    assert [j.jid for j in q.peek(100)] == jids


def test_reprioritise(q) -> None:
    a = q.put("k", {}, priority=0, jid="a")
    q.put("k", {}, priority=1, jid="b")
    job = q.client.jobs[a]
    job.priority = 2
    assert [j.jid for j in q.peek(2)] == ["a", "b"]


def test_delay(q, clock: ManualClock) -> None:
    jid = q.put("k", {}, delay=10)
    assert q.pop() is None
    assert q.client.jobs[jid].state is JobState.SCHEDULED
    assert q.counts["scheduled"] == 1
    clock.advance(10)
    job = q.pop()
    assert job is not None and job.jid == jid


def test_fail_and_put_again(engine: Client, q) -> None:
    jid = q.put("k", {})
    job = q.pop()
    job.fail("testing-Boom", "it broke", traceback="Traceback ...")
    assert job.state is JobState.FAILED
    j = engine.jobs[jid]
    assert j.state is JobState.FAILED
    assert j.failure["group"] == "testing-Boom" and j.failure["message"] == "it broke"
    assert j.failure["traceback"] == "Traceback ..."
    assert engine.jobs.failed() == {"testing-Boom": 1}
    listing = engine.jobs.failed("testing-Boom")
    assert listing["total"] == 1 and listing["jobs"][0].jid == jid
    assert q.stats()["failed"] == 1 and q.stats()["failures"] == 1
    q.put("k", {}, jid=jid)
    assert engine.jobs.failed() == {}
    assert q.stats()["failed"] == 0
    j = engine.jobs[jid]
    assert j.state is JobState.WAITING and j.failure is not None  # Qless: kept until complete
    q.pop().complete()
    assert engine.jobs[jid].failure is None


def test_retry_until_exhausted(engine: Client, q) -> None:
    jid = q.put("k", {}, retries=5)
    for left in range(4, -1, -1):
        assert q.pop().retry() == left
    assert q.pop().retry() == -1
    j = engine.jobs[jid]
    assert j.state is JobState.FAILED
    assert j.failure["group"] == "failed-retries-testing"
    assert j.exhausted is not None


def test_retry_keeps_real_error_on_exhaustion(engine: Client, q) -> None:
    jid = q.put("k", {}, retries=1)
    assert q.pop().retry(group="testing-ValueError", message="bad value") == 0
    j = engine.jobs[jid]
    assert j.state is JobState.WAITING and j.failure["group"] == "testing-ValueError"
    assert q.pop().retry(group="testing-KeyError", message="missing key") == -1
    j = engine.jobs[jid]
    assert j.state is JobState.FAILED
    assert j.failure["group"] == "testing-KeyError" and j.failure["message"] == "missing key"
    assert j.exhausted["message"] == 'Job exhausted retries in queue "testing"'
    assert engine.jobs.failed() == {"testing-KeyError": 1}


def test_retry_with_delay(engine: Client, q, clock: ManualClock) -> None:
    q.put("k", {})
    job = q.pop()
    job.retry(delay=30)
    assert job.state is JobState.SCHEDULED
    assert q.pop() is None
    clock.advance(30)
    assert q.pop() is not None


def test_heartbeat(engine: Client, q, clock: ManualClock, other: Client) -> None:
    q.put("k", {})
    job = q.pop()
    clock.advance(30)
    assert job.heartbeat() == clock.now + 60
    engine.config["testing-heartbeat"] = 10
    assert job.heartbeat() == clock.now + 10
    theirs = other.jobs[job.jid]
    with pytest.raises(LostLease):
        theirs.heartbeat()


def test_complete_errors(engine: Client, q, other: Client, unchanged) -> None:
    jid = q.put("k", {})
    waiting = engine.jobs[jid]
    unchanged(WrongState, waiting.complete)
    job = q.pop()
    unchanged(LostLease, other.jobs[jid].complete)
    unchanged(InvalidArgument, engine, "complete", jid, "worker", "testing", "{bad", "", "", "")
    unchanged(InvalidArgument, job.complete, None, None, 5)
    unchanged(WrongState, engine, "complete", jid, "worker", "elsewhere", "null", "", "", "")
    unchanged(JobNotFound, engine, "complete", "nope", "worker", "testing", "null", "", "", "")
    assert job.complete() == "complete"


def test_complete_next_queue(engine: Client, q) -> None:
    jid = q.put("k", {}, retries=3)
    q.pop().retry()
    job = q.pop()
    assert job.complete(next_queue="other") == "waiting"
    j = engine.jobs[jid]
    assert j.queue_name == "other" and j.retries_left == 3 and j.state is JobState.WAITING
    assert engine.queues["other"].pop().jid == jid


def test_complete_next_same_queue(engine: Client, q) -> None:
    jid = q.put("k", {})
    assert q.pop().complete(next_queue="testing") == "waiting"
    assert q.pop().jid == jid


def test_get_unknown(engine: Client) -> None:
    with pytest.raises(JobNotFound):
        engine.jobs["nope"]
    assert engine.jobs.get("nope") == []


def test_move(engine: Client, q) -> None:
    jid = q.put("k", {"a": 1}, priority=3)
    job = engine.jobs[jid]
    job.move("other")
    assert job.state is JobState.WAITING
    j = engine.jobs[jid]
    assert j.queue_name == "other" and j.priority == 3 and j.data == {"a": 1}
    assert q.counts["waiting"] == 0 and engine.queues["other"].counts["waiting"] == 1


def test_log(engine: Client, q) -> None:
    jid = q.put("k", {})
    job = engine.jobs[jid]
    job.log("started", pid=12)
    assert job.history[-1]["what"] == "started" and job.history[-1]["pid"] == 12


def test_server_time_without_clock(redis_url: str, redis_conn) -> None:
    c = Client.from_url(redis_url, namespace="test", worker_name="w")
    try:
        q = c.queues["x"]
        jid = q.put("k", {})
        job = q.pop()
        now = c.now()
        assert abs(job.expires_at - (now + 60)) < 5
        assert job.jid == jid
    finally:
        c.close()


def test_move_keeps_options(engine: Client, q) -> None:
    jid = q.put("k", {"a": 1}, tags=("t",), retries=2, backoff={"base": 3, "factor": 2, "max": 0}, reply=True)
    engine.jobs[jid].move("other")
    j = engine.jobs[jid]
    assert j.tags == ["t"] and j.original_retries == 2 and j.reply
    assert j.backoff == {"base": 3.0, "factor": 2.0, "max": 0.0}
