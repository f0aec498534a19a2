"""Conversion of Qless records the live fixture cannot make: legacy history, object entries,
priorities out of range, servers without ZMSCORE."""

from __future__ import annotations

import json

import pytest
import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.migrate import import_qless
from queueengine.migrate.qless import QlessSource, history, priority
from queueengine.migrate.report import ImportReport
from tests.bridges.qless_fixtures import ClockedQless, build_keyspace, open_qless, open_qless_conn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")
ql = pytest.fixture(open_qless, name="ql")


def test_history_formats_become_engine_entries() -> None:
    legacy = json.dumps([{"q": "a", "put": 10.7, "popped": 11.2, "worker": "w", "done": 12.9}])
    entries = [json.dumps([13, "put", {"q": "b"}]), json.dumps({"when": 14, "what": "popped", "worker": "w2"}),
               json.dumps([15, "timed-out"]), "not json", json.dumps([16, 17])]
    assert history(legacy, entries) == [
        {"when": 10, "what": "put", "queue": "a"}, {"when": 11, "what": "popped", "worker": "w"},
        {"when": 12, "what": "done"}, {"when": 13, "what": "put", "queue": "b"},
        {"when": 14, "what": "popped", "worker": "w2"}, {"when": 15, "what": "timed-out"},
    ]


def test_priorities_are_rounded_down_and_clamped() -> None:
    report = ImportReport()
    assert [priority(p, "j", report) for p in ("3", "2.5", "-0.5", "1e6", "-99999", "x")] == [3, 2, -1, 4095, -4095, 0]
    assert sum(report.adjusted.values()) == 4


def test_same_result_without_zmscore(ql: ClockedQless, qless_conn: redis.Redis, engine: Client, clock: ManualClock,
                                     redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build_keyspace(ql, clock)
    with_zmscore = import_qless(qless_conn, engine)
    other = Client.from_url(redis_url, namespace="old-redis", clock=clock)
    try:
        monkeypatch.setattr(QlessSource, "multi_score", lambda self: False)   # a Redis < 6.2 source
        without = import_qless(qless_conn, other)
        assert without.imported == with_zmscore.imported and without.skipped == with_zmscore.skipped
        for jid in ("w-b", "run-1", "fail-1", "dep-b", "tpl-1-1"):
            a, b = engine.jobs[jid], other.jobs[jid]
            assert (a.state, a.expires_at, a.tags, a.dependencies, a.spawned_from_jid) == (
                b.state, b.expires_at, b.tags, b.dependencies, b.spawned_from_jid)
        assert [j.jid for j in other.queues["main"].peek(20)] == [j.jid for j in engine.queues["main"].peek(20)]
    finally:
        other.close()


def test_jobs_no_index_leads_to_are_found_by_scan(ql: ClockedQless, qless_conn: redis.Redis, engine: Client,
                                                  clock: ManualClock) -> None:
    build_keyspace(ql, clock)
    qless_conn.zrem("ql:queues", "held")                     # a queue missing from the registry
    qless_conn.lrem("ql:f:bad-ValueError", 0, "fail-2")      # a failure list that lost a job
    qless_conn.zrem("ql:completed", "new-done")              # a completed job outside the completed set
    report = import_qless(qless_conn, engine)
    assert str(engine.jobs["held-1"].state) == "waiting"
    assert engine.jobs["fail-2"].failure["message"] == "boom 2"
    assert engine.jobs.failed()["bad-ValueError"] == 2
    assert report.examples["completed job missing from Qless's completed set"] == ["new-done"]
    assert "old-done" not in engine.jobs                      # beyond retention: still left out


def test_import_in_script_mode(ql: ClockedQless, qless_conn: redis.Redis, engine: Client,
                               clock: ManualClock) -> None:
    from queueengine.store.scripts import LuaLibrary

    lib = LuaLibrary()   # the EVALSHA path, what a Redis 6.2 target uses
    lib._modes[id(engine.redis.connection_pool)] = "script"
    engine.redis.script_load(lib.source)
    engine.lua = lib
    build_keyspace(ql, clock)
    report = import_qless(qless_conn, engine)
    assert report.jobs == 21 and dict(report.imported["bad"]) == {"failed": 3}
    assert [j.jid for j in engine.queues["main"].peek(3)] == ["w-b", "w-f", "w-e"]


def test_a_long_history_is_read_and_kept_bounded(ql: ClockedQless, qless_conn: redis.Redis, engine: Client,
                                                 clock: ManualClock) -> None:
    ql.config["max-job-history"] = 5          # imported first: the namespace keeps first + newest 4
    for i in range(30):                        # this qless-core keeps every entry
        clock.advance(1)
        ql.queues["q"].put("app.jobs.Again", {"i": i}, jid="again")
    assert qless_conn.llen("ql:j:again-history") == 30
    import_qless(qless_conn, engine)
    theirs = ql.jobs["again"].history
    assert [h["when"] for h in engine.jobs["again"].history] == [h["when"] for h in [theirs[0], *theirs[-4:]]]
    ql.queues["q"].put("app.jobs.Short", {}, jid="short")
    import_qless(qless_conn, engine)
    assert [h["what"] for h in engine.jobs["short"].history] == ["put"]


def test_edges_are_linked_both_ways_whatever_the_import_order(engine: Client) -> None:
    def item(jid: str, state: str, **extra: object) -> str:
        return json.dumps({"jid": jid, "klass": "K", "data": "{}", "state": state, "queue": "q", **extra})

    # the dependent arrives first, its dependency later without the edge (read before it existed)
    assert json.loads(engine("import", "job", "0", item("b", "depends", dependencies=["a"]))) == ["imported"]
    assert json.loads(engine("import", "job", "0", item("a", "waiting"))) == ["imported"]
    assert engine.jobs["a"].dependents == [] and engine.jobs["b"].dependencies == ["a"]
    # the dependency first, then a dependent: the dependency learns about it
    assert json.loads(engine("import", "job", "0", item("c", "depends", dependencies=["a"]))) == ["imported"]
    assert engine.jobs["a"].dependents == ["c"]
    (a,) = engine.queues["q"].pop(1)
    a.complete()
    assert str(engine.jobs["c"].state) == "waiting"
