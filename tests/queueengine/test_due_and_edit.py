"""Job.due_at, job.edit and a worker's per-minute counters (issue 16): what the pages say about
scheduled jobs and workers, and the one way to change a waiting or scheduled job in place."""

from __future__ import annotations

import json
from typing import Any

import pytest

from queueengine import Client, InvalidArgument, Job, WrongState
from queueengine.devtools.testing import ManualClock


# ---------------------------------------------------------------------- due_at
def test_due_at_says_when_a_scheduled_job_becomes_ready(engine: Client, clock: ManualClock) -> None:
    q = engine.queues["q"]
    later = q.put("app.K", {}, delay=90)
    now = q.put("app.K", {})
    job = engine.jobs[later]
    assert job.due_at == pytest.approx(clock.now + 90)
    assert engine.jobs[now].due_at is None
    assert json.loads(engine("get", later))["due_at"] == pytest.approx(clock.now + 90)
    assert engine.views.jobs("scheduled", "q")["jobs"][0]["due_at"] == pytest.approx(clock.now + 90)
    assert engine.jobs.find(state="scheduled")["jobs"][0].due_at == pytest.approx(clock.now + 90)
    template = q.recur("app.R", {}, interval=60, offset=30, jid="every-minute")
    assert engine.jobs[template].due_at == pytest.approx(clock.now + 30)
    clock.advance(100)
    q.peek(5)
    assert engine.jobs[later].due_at is None and engine.jobs[later].state.value == "waiting"


# ---------------------------------------------------------------------- edit
def test_edit_changes_a_waiting_job_in_place(engine: Client, clock: ManualClock) -> None:
    q = engine.queues["q"]
    first = q.put("app.K", {"v": 1}, tags=["old", "keep"])
    second = q.put("app.K", {"v": 2})
    job = engine.jobs[first]
    assert isinstance(job, Job)
    assert job.edit(data={"v": 10}, priority=5, tags=["keep", "new"]) == "waiting"
    assert (job.data, job.priority, sorted(job.tags)) == ({"v": 10}, 5, ["keep", "new"])
    assert engine.tags() and "old" not in engine.tags() and engine.jobs.tagged("new")["jobs"] == [first]
    assert [j.jid for j in q.peek(2)] == [first, second]
    assert job.history[-1]["what"] == "edited"
    assert job.edit(delay=30) == "scheduled" and job.due_at == pytest.approx(clock.now + 30)
    assert job.edit(delay=0) == "waiting" and job.due_at is None
    assert [j.jid for j in q.peek(2)] == [first, second]   # priority 5 pops first


def test_edit_refuses_other_states_and_bad_values(engine: Client, unchanged: Any) -> None:
    q = engine.queues["q"]
    first = q.put("app.K", {"v": 1})
    popped = q.pop()
    assert popped is not None and popped.jid == first
    unchanged(WrongState, engine.jobs[first].edit, data={"v": 3})
    popped.fail("g", "x")
    unchanged(WrongState, engine.jobs[first].edit, priority=1)
    fresh = engine.jobs[q.put("app.K", {"v": 4})]
    assert isinstance(fresh, Job)
    for kwargs in ({}, {"priority": 5000}, {"delay": -1}, {"tags": ["a{b}"]}, {"data": {"x": float("nan")}},
                   {"tags": "one"}):
        unchanged(InvalidArgument, fresh.edit, **kwargs)
    engine.config["max-payload-bytes"] = 20
    unchanged(InvalidArgument, fresh.edit, data={"x": "y" * 50})


# ---------------------------------------------------------------------- per-worker counters
def test_worker_throughput_counts_its_completions_and_failures(engine: Client, other: Client) -> None:
    q = engine.queues["q"]
    for i in range(5):
        q.put("app.K", {"i": i})
    jobs = engine.pop_from(["q"], 3)
    jobs[0].complete()
    engine.complete_many([(jobs[1], None)])
    jobs[2].fail("g", "x")
    other.pop_from(["q"], 1)[0].complete()
    mine = engine.workers.throughput("worker")
    assert (sum(mine["done"]), sum(mine["failed"]), len(mine["done"])) == (2, 1, 60)
    assert sum(other.workers.throughput("another", minutes=5)["done"]) == 1
    with pytest.raises(InvalidArgument, match="minutes"):
        engine.workers.throughput("worker", minutes=0)
