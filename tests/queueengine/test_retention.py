"""History cap, completed/failed job expiry, stats and histograms."""

from __future__ import annotations

from queueengine import Client
from queueengine.devtools.testing import ManualClock


def _complete(q, n: int) -> list[str]:
    jids = [q.put("k", {}) for _ in range(n)]
    for _ in range(n):
        q.pop().complete()
        q.client.clock.advance(1)
    return jids


def test_jobs_history_count(engine: Client, q) -> None:
    engine.config["jobs-history-count"] = 5
    jids = _complete(q, 10)
    remaining = [j for j in jids if engine.redis.exists(engine.keys.job(j))]
    assert remaining == jids[5:]
    assert len(engine.jobs.complete(count=100)) == 5


def test_jobs_history_age(engine: Client, q, clock: ManualClock) -> None:
    engine.config["jobs-history"] = 0          # 0: completed jobs are deleted at once (-1 is refused)
    _complete(q, 10)
    assert engine.jobs.complete(count=100) == []
    assert engine.redis.keys("*:j:*") == []


def test_expiry_cleans_tags_and_tracking(engine: Client, q, clock: ManualClock) -> None:
    engine.config["jobs-history"] = 100
    jid = q.put("k", {}, tags=("t",))
    engine.track(jid)
    q.pop().complete()
    clock.advance(101)
    q.put("k", {})
    q.pop().complete()
    assert engine.tags() == []
    assert engine.jobs.tracked() == {"jobs": [], "expired": []}


def test_history_cap_keeps_first(engine: Client, q, clock: ManualClock) -> None:
    engine.config["max-job-history"] = 5
    for i in range(100):
        clock.set(i)
        q.put("k", {}, jid="j")
    hist = engine.jobs["j"].history
    assert [h["when"] for h in hist] == [0, 96, 97, 98, 99]


def test_failed_retention(engine: Client, q, clock: ManualClock) -> None:
    engine.config["failed-history-count"] = 2
    jids = []
    for _ in range(4):
        jids.append(q.put("k", {}))
        q.pop().fail("g", "m")
        clock.advance(1)
    assert engine.jobs.failed() == {"g": 2}
    assert [j.jid for j in engine.jobs.failed("g")["jobs"]] == [jids[3], jids[2]]
    engine.config["failed-history-count"] = 0
    engine.config["failed-history"] = 60
    clock.advance(61)
    assert engine.housekeep()["failed_expired"] == 2
    assert engine.jobs.failed() == {}


def test_failed_kept_by_default(engine: Client, q, clock: ManualClock) -> None:
    q.put("k", {})
    q.pop().fail("g", "m")
    clock.advance(10**8)
    engine.housekeep()
    assert engine.jobs.failed() == {"g": 1}


def test_stats_and_histogram(engine: Client, q, clock: ManualClock) -> None:
    t = 86400 * 1000 + 7200
    for wait in (0, 1, 59, 60, 3599, 3600, 86400):
        clock.set(t - wait)
        q.put("k", {})
    clock.set(t)
    jobs = q.pop(10)
    clock.advance(2)
    for job in jobs:
        job.complete()
    s = q.stats()
    assert s["wait"]["count"] == 7 and s["run"]["count"] == 7
    hist = s["wait"]["histogram"]
    assert len(hist) == 148 and len(s["run"]["histogram"]) == 148
    assert hist[0] == 1 and hist[1] == 1 and hist[59] == 1  # s0, s1, s59
    assert hist[60] == 1 and hist[60 + 58] == 1  # m1, m59
    assert hist[119] == 1  # h1
    assert hist[142] == 1  # d1
    assert s["run"]["histogram"][2] == 7 and s["run"]["mean"] == 2 and s["run"]["std"] == 0


def test_stats_mean_std(engine: Client, q, clock: ManualClock) -> None:
    for run in (1, 2, 3, 4):
        q.put("k", {})
        job = q.pop()
        clock.advance(run)
        job.complete()
    s = q.stats()["run"]
    assert s["mean"] == 2.5
    assert abs(s["std"] - 1.2909944487358056) < 1e-9


def test_stats_per_day(engine: Client, q, clock: ManualClock) -> None:
    clock.set(86400 * 10 + 5)
    q.put("k", {})
    q.pop().fail("g", "m")
    assert q.stats(86400 * 10)["failures"] == 1
    assert q.stats(86400 * 11)["failures"] == 0
