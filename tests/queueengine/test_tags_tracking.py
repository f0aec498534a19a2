"""Tags (exact counters) and tracking, without leaks."""

from __future__ import annotations

import pytest

from queueengine import Client, JobNotFound


def test_tags(engine: Client, q) -> None:
    a = q.put("k", {}, tags=("x", "y"))
    engine.clock.advance(1)  # type: ignore[union-attr]
    b = q.put("k", {}, tags=("x",))
    assert engine.jobs.tagged("x") == {"total": 2, "jobs": [a, b]}
    assert engine.tags() == ["x", "y"]
    job = engine.jobs[b]
    assert job.tag("z", "x") == ["x", "z"]
    assert job.tag("z") == ["x", "z"]  # adding twice does not double count
    assert engine.redis.zscore(engine.keys.key("tags"), "z") == 1
    assert job.untag("x", "nope") == ["z"]
    assert engine.redis.zscore(engine.keys.key("tags"), "x") == 1
    engine.jobs[a].untag("x")
    assert engine.redis.zscore(engine.keys.key("tags"), "x") is None
    assert set(engine.tags()) == {"y", "z"}


def test_put_again_replaces_tags(engine: Client, q) -> None:
    q.put("k", {}, tags=("a", "b"), jid="j")
    q.put("k", {}, tags=("b", "c"), jid="j")
    assert set(engine.tags()) == {"b", "c"}
    assert engine.jobs.tagged("a")["total"] == 0


def test_tracking(engine: Client, q) -> None:
    jid = q.put("k", {})
    job = engine.jobs[jid]
    job.track()
    assert engine.jobs[jid].tracked
    tracked = engine.jobs.tracked()
    assert [j.jid for j in tracked["jobs"]] == [jid] and tracked["expired"] == []
    job.untrack()
    assert engine.jobs.tracked()["jobs"] == []
    with pytest.raises(JobNotFound):
        engine.track("nope")


def test_tag_unknown_job(engine: Client) -> None:
    with pytest.raises(JobNotFound):
        engine("tag", "add", "nope", "x")
