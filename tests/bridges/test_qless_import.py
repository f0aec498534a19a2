"""Importing a real Qless keyspace (built with qless-py) into a namespace of the engine,
compared through both public APIs."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.migrate import import_qless
from queueengine.recurring import RecurringJob
from tests.bridges.qless_fixtures import ClockedQless, build_keyspace, dump_all, open_qless, open_qless_conn

qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")
ql = pytest.fixture(open_qless, name="ql")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SKIPPED = {"odd-1", "old-done", "gone-1"}


def namespace_dump(conn: redis.Redis, client: Client) -> dict[bytes, bytes | None]:
    return {k: conn.dump(k) for k in sorted(conn.scan_iter(match=client.prefix + "*", count=1000))}


@pytest.fixture
def imported(ql: ClockedQless, qless_conn: redis.Redis, engine: Client, clock: ManualClock) -> dict[str, Any]:
    made = build_keyspace(ql, clock)
    before = dump_all(qless_conn)
    calls: list[tuple[int, int]] = []
    report = import_qless(qless_conn, engine, progress=lambda done, total: calls.append((done, total)))
    print(report.summary())
    return {"made": made, "before": before, "report": report, "progress": calls}


def test_source_keys_are_left_byte_for_byte(imported: dict[str, Any], qless_conn: redis.Redis) -> None:
    assert imported["before"]
    assert dump_all(qless_conn) == imported["before"]


def test_report_counts_per_queue_and_state_and_skips(imported: dict[str, Any]) -> None:
    report = imported["report"]
    counts = {q: dict(c) for q, c in report.imported.items()}
    assert counts["main"] == {"waiting": 7, "scheduled": 1}
    assert counts["bad"] == {"failed": 3}
    assert counts["deps"] == {"waiting": 1, "depends": 2}
    assert counts["work"] == {"running": 1}
    assert counts["side"] == counts["graceq"] == counts["tq"] == {"stalled": 1}
    assert counts["done"] == {"complete": 1}
    assert counts["cron"] == {"waiting": 1, "recurring": 2}
    assert counts["held"] == {"waiting": 1}
    assert report.jobs == 21
    reasons = " | ".join(report.skipped)
    assert "retention" in reasons and "tracked job no longer exists" in reasons and "tag" in reasons
    assert report.examples[next(r for r in report.skipped if "tag" in r)] == ["odd-1"]
    assert sum(report.adjusted.values()) == 1
    assert report.other["config"] == 6 and report.other["queue"] == 11 and report.other["stats"] > 0
    done, total = imported["progress"][-1]
    assert done == total and total >= 20
    assert "imported 21 jobs" in report.summary()


def _state(qjob: Any, now: float) -> str:
    if qjob.state == "stalled" or (qjob.state == "running" and qjob.expires_at <= now):
        return "stalled"
    return str(qjob.state)


def test_every_job_matches_field_by_field(imported: dict[str, Any], ql: ClockedQless, qless_conn: redis.Redis,
                                          engine: Client, clock: ManualClock) -> None:
    jids = {k.decode()[5:] for k in qless_conn.scan_iter(match="ql:j:*", _type="hash")} - SKIPPED
    assert len(jids) == 21
    for jid in sorted(jids):
        theirs, ours = ql.jobs[jid], engine.jobs[jid]
        assert ours.klass == theirs.klass_name, jid
        assert ours.data == theirs.data, jid
        assert ours.priority == (2 if jid == "w-e" else theirs.priority), jid
        assert ours.tags == theirs.tags, jid
        assert ours.original_retries == theirs.original_retries, jid
        assert ours.retries_left == theirs.retries_left, jid
        assert ours.tracked == theirs.tracked, jid
        assert sorted(ours.dependencies) == sorted(theirs.dependencies), jid
        assert sorted(ours.dependents) == sorted(theirs.dependents), jid
        assert [(h["when"], h["what"]) for h in ours.history] == [(h["when"], h["what"]) for h in theirs.history], jid
        assert str(ours.state) == _state(theirs, clock()), jid
        if theirs.state != "complete":
            assert ours.queue_name == theirs.queue_name, jid
        if theirs.state == "running":
            lock = qless_conn.zscore(f"ql:q:{theirs.queue_name}-locks", jid)
            assert ours.worker_name == theirs.worker_name and ours.expires_at == pytest.approx(lock)
        if theirs.state == "failed":
            assert ours.failure is not None
            for key in ("group", "message", "when", "worker"):
                assert ours.failure[key] == pytest.approx(theirs.failure[key]), (jid, key)
    assert engine.jobs["new-done"].queue_name == "done"   # Qless clears it; taken from the history
    assert engine.jobs["tpl-1-1"].spawned_from_jid == "tpl-1"
    assert [h.get("queue") for h in engine.jobs["w-a"].history][:1] == ["main"]


def test_pop_order_peek_and_lists_match(imported: dict[str, Any], ql: ClockedQless, engine: Client) -> None:
    theirs = [j.jid for j in ql.queues["main"].peek(100)]
    assert [j.jid for j in engine.queues["main"].peek(100)] == theirs
    assert theirs[:3] == ["w-b", "w-f", "w-e"] and theirs[-2:] == ["sched-1", "w-d"]   # sched-1 is due: promoted
    assert engine.jobs.tagged("web") == ql.jobs.tagged("web")
    # Qless's "tag get" reads count as an end index (a bug); the engine pages by count
    assert engine.jobs.tagged("web", 2, 3)["jobs"] == ql.jobs.tagged("web", 0, 25)["jobs"][2:5]
    assert engine.jobs.failed() == ql.jobs.failed()
    for group in ql.jobs.failed():
        assert [j.jid for j in engine.jobs.failed(group)["jobs"]] == [j.jid for j in ql.jobs.failed(group)["jobs"]]
    tracked = engine.jobs.tracked()
    assert sorted(j.jid for j in tracked["jobs"]) == ["fail-1", "w-b"] and tracked["expired"] == []
    assert engine.queues["held"].counts["paused"] is True
    assert "run-1" in engine.workers["worker-1"]["jobs"]
    popped = [j.jid for j in engine.queues["main"].pop(100)]
    assert popped == [j.jid for j in ql.as_worker("w").queues["main"].pop(100)]


def test_recurring_config_and_stats(imported: dict[str, Any], ql: ClockedQless, qless_conn: redis.Redis,
                                    engine: Client, clock: ManualClock) -> None:
    for jid in ("tpl-1", "tpl-2"):
        theirs, ours = ql.jobs[jid], engine.jobs[jid]
        assert isinstance(ours, RecurringJob)
        assert (ours.klass, ours.queue_name, ours.interval, ours.count, ours.priority, ours.tags, ours.retries) == (
            theirs.klass_name, theirs.queue_name, theirs.interval, theirs.count, theirs.priority, theirs.tags,
            theirs.retries)
        assert ours.data == theirs.data
        assert ours.next == pytest.approx(float(qless_conn.zscore("ql:q:cron-recur", jid)))
    assert engine.jobs["tpl-1"].backlog == 4
    for key in ("heartbeat", "jobs-history", "grace-period", "side-heartbeat"):
        assert str(engine.config[key]) == str(ql.config[key])
    assert engine.config["application"] == "shop"
    t0 = imported["made"]["t0"]
    for name in ("done", "bad", "work", "graceq"):
        ours, theirs = engine.queues[name].stats(t0 + 3000), ql.queues[name].stats(t0 + 3000)
        for key in ("failed", "failures", "retries"):
            assert ours[key] == theirs[key], (name, key)
        for kind in ("wait", "run"):
            assert ours[kind]["count"] == theirs[kind]["count"], (name, kind)
            assert ours[kind]["mean"] == pytest.approx(theirs[kind]["mean"]), (name, kind)
            assert ours[kind]["histogram"] == theirs[kind]["histogram"], (name, kind)
    assert engine.queues["bad"].stats(t0 + 3000)["failed"] == 2   # Qless counts no exhausted retry


def test_imported_jobs_keep_working_in_the_engine(imported: dict[str, Any], engine: Client,
                                                  clock: ManualClock) -> None:
    (a,) = engine.queues["deps"].pop(5)
    assert a.jid == "dep-a"
    a.complete()
    assert str(engine.jobs["dep-b"].state) == "waiting" and str(engine.jobs["dep-c"].state) == "depends"
    t = engine.queues["tq"].pop()
    assert t is not None and t.jid == "timeout-1" and t.retries_left == 5   # a timeout spends no retry
    g = engine.queues["graceq"].pop()
    assert g is not None and g.jid == "grace-1" and g.retries_left == 1    # grace over: one retry spent
    assert engine.queues["work"].pop() is None                              # run-1's lease is still live
    f = engine.jobs["fail-1"]
    f.move("main")
    assert engine.jobs.failed()["bad-ValueError"] == 1
    c = [j.jid for j in engine.queues["cron"].pop(50)]
    assert c[:2] == ["tpl-1-1", "tpl-1-2"] and len(c) == 1 + 5   # spawns on from its count, backlog 4


def test_second_run_adds_nothing(imported: dict[str, Any], qless_conn: redis.Redis, redis_conn: redis.Redis,
                                 engine: Client) -> None:
    before = namespace_dump(redis_conn, engine)
    again = import_qless(qless_conn, engine)
    assert namespace_dump(redis_conn, engine) == before
    assert again.jobs == 0 and again.nothing_new
    assert again.already["job"] == 21 and again.already["recurring"] == 2
    assert "already imported" in again.summary()


def test_dry_run_writes_nothing_and_reports_the_same(ql: ClockedQless, qless_conn: redis.Redis,
                                                     redis_conn: redis.Redis, engine: Client,
                                                     clock: ManualClock) -> None:
    build_keyspace(ql, clock)
    dry = import_qless(qless_conn, engine, dry_run=True)
    assert redis_conn.dbsize() == 0
    real = import_qless(qless_conn, engine)
    assert dry.imported == real.imported and dry.skipped == real.skipped
    assert "would import 21 jobs" in dry.summary()


def test_bad_arguments_are_refused(qless_conn: redis.Redis, engine: Client, redis_conn: redis.Redis) -> None:
    from queueengine import InvalidArgument

    with pytest.raises(InvalidArgument, match="chunk"):
        import_qless(qless_conn, engine, chunk=0)
    with pytest.raises(InvalidArgument, match="prefix"):
        import_qless(qless_conn, engine, prefix="")
    assert redis_conn.dbsize() == 0


def test_lua_import_checks_each_item(engine: Client, redis_conn: redis.Redis) -> None:
    import json

    good = {"jid": "j1", "klass": "K", "data": "{}", "state": "waiting", "queue": "q", "priority": 1}
    bad = dict(good, jid="j2", data="{nope")
    sub = redis_conn.pubsub()
    sub.subscribe(engine.keys.events)
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    out = json.loads(engine("import", "job", "0", json.dumps(good), json.dumps(bad), "not json"))
    event = sub.get_message(timeout=5)
    sub.close()
    assert json.loads(event["data"]) == {"e": "imported", "jid": None, "q": "q", "t": engine.now(),
                                         "kind": "job", "count": 1}
    assert out[0] == "imported" and out[1].startswith("invalid: data") and out[2] == "invalid: not JSON"
    assert redis_conn.exists(engine.keys.job("j2")) == 0
    assert [j.jid for j in engine.queues["q"].peek(5)] == ["j1"]
    later = engine.now() + 600   # newer qless-core: a delayed job waiting on a dependency
    held = dict(good, jid="j3", state="depends", at=engine.now(), scheduled=later, dependencies=["j1"])
    dep = json.loads(engine("import", "job", "0", json.dumps(held)))
    assert dep == ["imported"] and json.loads(engine("get", "j3"))["scheduled"] == pytest.approx(later)
    from queueengine.exceptions import InvalidArgument

    with pytest.raises(InvalidArgument, match="kind"):
        engine("import", "nope", "0")
