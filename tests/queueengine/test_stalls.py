"""Lease expiry, grace periods, retries on stalls, timeout, backoff (qless.md §3, §10)."""

from __future__ import annotations

import pytest

from queueengine import Client, JobState, LostLease
from queueengine.devtools.testing import ManualClock


def test_stalled_job_goes_to_another_worker(engine: Client, q, other: Client, clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    clock.set(0)
    jid = q.put("k", {})
    clock.set(1)
    job = q.pop()
    assert job.expires_at == 61
    clock.set(71)
    # lock expired: counts, listings and state agree that it is stalled
    assert q.counts["stalled"] == 1 and q.counts["running"] == 0
    assert q.jobs.stalled() == [jid] and q.jobs.running() == []
    assert engine.jobs[jid].state is JobState.STALLED
    theirs = other.queues["testing"].pop()
    assert theirs is not None and theirs.jid == jid and theirs.worker == "another"
    j = engine.jobs[jid]
    assert [(h["what"], h["when"]) for h in j.history] == [("put", 0), ("popped", 1), ("timed-out", 71), ("popped", 71)]
    assert j.retries_left == 4
    with pytest.raises(LostLease):
        job.heartbeat()
    assert q.stats(71)["retries"] == 1


def test_grace_period(engine: Client, q, other: Client, clock: ManualClock) -> None:
    engine.config["grace-period"] = 10
    q.put("k", {})
    job = q.pop()
    clock.set(job.expires_at + 10)
    assert other.queues["testing"].pop() is None  # courtesy only
    assert engine.jobs[job.jid].state is JobState.RUNNING  # lease extended by the grace
    clock.advance(10)
    theirs = other.queues["testing"].pop()
    assert theirs is not None and theirs.jid == job.jid


def test_old_worker_may_finish_during_grace(engine: Client, q, other: Client, clock: ManualClock) -> None:
    q.put("k", {})
    job = q.pop()
    clock.set(job.expires_at)
    assert other.queues["testing"].pop() is None
    assert job.fail("testing-X", "late") == job.jid


def test_each_expiry_gets_its_own_grace(engine: Client, q, other: Client, clock: ManualClock) -> None:
    engine.config["grace-period"] = 10
    jid = q.put("k", {}, retries=20)
    job = q.pop()
    for _ in range(10):
        clock.set(job.expires_at + 1)
        assert other.queues["testing"].pop() is None
        clock.advance(10)
        job = other.queues["testing"].pop()
        assert job is not None and job.jid == jid
    assert engine.jobs[jid].retries_left == 10


def test_stall_exhaustion_fails(engine: Client, q, clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    jid = q.put("k", {}, retries=0)
    job = q.pop()
    seen = []
    clock.set(job.expires_at + 1)
    assert q.pop(5) == []
    j = engine.jobs[jid]
    assert j.state is JobState.FAILED
    assert j.failure["group"] == "failed-retries-testing"
    assert j.exhausted["reason"] == "stalled"
    assert engine.jobs.failed() == {"failed-retries-testing": 1}
    assert seen == []


def test_timeout_reclaims_without_spending_a_retry(engine: Client, q, other: Client) -> None:
    jid = q.put("k", {})
    job = q.pop()
    job.timeout()
    assert engine.jobs[jid].state is JobState.STALLED
    assert q.counts["stalled"] == 1
    theirs = other.queues["testing"].pop()
    assert theirs.jid == jid and theirs.retries_left == 5


def test_backoff_on_stall_and_retry(engine: Client, q, clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    jid = q.put("k", {}, backoff={"base": 10, "factor": 2, "max": 25})
    job = q.pop()
    assert job.retry() == 4  # first attempt: 10 s
    assert engine.jobs[jid].state is JobState.SCHEDULED
    clock.advance(9)
    assert q.pop() is None
    clock.advance(1)
    job = q.pop()
    clock.set(job.expires_at + 1)  # lease expiry: second backoff = 20 s
    assert q.pop() is None
    assert engine.jobs[jid].state is JobState.SCHEDULED
    clock.advance(20)
    job = q.pop()
    assert job is not None
    assert job.retry() == 2  # capped at 25 s
    clock.advance(24)
    assert q.pop() is None
    clock.advance(1)
    assert q.pop().jid == jid


def test_housekeep_reclaims_to_waiting(engine: Client, q, clock: ManualClock) -> None:
    engine.config["grace-period"] = 0
    jid = q.put("k", {})
    job = q.pop()
    clock.set(job.expires_at + 1)
    out = engine.housekeep()
    assert out["reclaimed"] == 1
    j = engine.jobs[jid]
    assert j.state is JobState.WAITING and j.retries_left == 4
    assert q.pop().jid == jid


def test_heartbeat_during_grace_clears_it(engine: Client, q, other: Client, clock: ManualClock) -> None:
    engine.config["grace-period"] = 10
    q.put("k", {})
    job = q.pop()
    clock.set(job.expires_at)
    assert other.queues["testing"].pop() is None
    job.heartbeat()
    clock.set(job.expires_at)
    assert other.queues["testing"].pop() is None  # a fresh courtesy warning
