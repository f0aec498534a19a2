"""client.views: one page per call, bounded, read-only, and strict about its arguments."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from queueengine import Client, InvalidArgument
from queueengine.devtools.testing import ManualClock
from tests.queueengine.conftest import snapshot


def test_jobs_pages_every_kind(engine: Client, clock: ManualClock) -> None:
    """Waiting (pop order), scheduled, running, stalled, depends, failed, complete, tagged,
    tracked, worker and recurring lists, with totals and next offsets."""
    q = engine.queues["v"]
    jids = q.put_many([{"klass": "app.X", "data": {"i": i}, "priority": i % 2, "tags": ["t"]} for i in range(6)])
    later = q.put("app.Later", {}, delay=60)
    dep = q.put("app.Dep", {}, depends=[jids[0]])
    page = engine.views.jobs("waiting", "v", 0, 4)
    assert page["total"] == 6 and page["next"] == 4 and len(page["jobs"]) == 4
    assert [j["priority"] for j in page["jobs"]] == [1, 1, 1, 0]
    assert engine.views.jobs("waiting", "v", 4, 4)["next"] is None
    assert engine.views.jobs("scheduled", "v")["jobs"][0]["jid"] == later
    assert engine.views.jobs("depends", "v")["jobs"][0]["jid"] == dep
    popped = q.pop(2)
    assert {j["jid"] for j in engine.views.jobs("running", "v")["jobs"]} == {p.jid for p in popped}
    assert {j["jid"] for j in engine.views.jobs("worker", "worker")["jobs"]} == {p.jid for p in popped}
    clock.advance(3600)
    stalled = engine.views.jobs("stalled", "v")
    assert stalled["total"] == 2 and all(j["state"] == "stalled" for j in stalled["jobs"])
    popped[0].fail("v-Err", "m" * 1000)
    failed = engine.views.jobs("failed", "v-Err")
    assert failed["total"] == 1 and len(failed["jobs"][0]["failure"]["message"]) == 300
    assert engine.views.jobs("failed")["total"] == 1
    engine.jobs[jids[2]].track()
    assert engine.views.jobs("tracked")["jobs"][0]["jid"] == jids[2]
    assert engine.views.jobs("tagged", "t")["total"] == 6
    tmpl = q.recur("app.R", {}, interval=30)
    rec = engine.views.jobs("recurring", "v")["jobs"][0]
    assert rec["jid"] == tmpl and rec["interval"] == 30 and rec["type"] == "interval"


def test_data_is_cut_to_a_preview(engine: Client) -> None:
    """Lists carry at most ``trunc`` bytes of data and the full size."""
    jid = engine.queues["v"].put("app.X", {"blob": "y" * 5000})
    row = engine.views.jobs("waiting", "v", trunc=50)["jobs"][0]
    assert row["jid"] == jid and len(row["data"]) == 50 and row["data_size"] == 5011


def test_filters_scan_a_bounded_window(engine: Client) -> None:
    """Filters match class prefixes, tags and states; no more than scan_cap entries are read."""
    q = engine.queues["v"]
    for i in range(30):
        q.put("app.billing.Invoice" if i % 3 == 0 else "app.mail.Send", {"i": i}, tags=["eu"] if i % 2 else [])
    hits = engine.views.jobs("waiting", "v", count=100, filters={"klass": "app.billing.*"})
    assert hits["filtered"] and len(hits["jobs"]) == 10 and hits["next"] is None
    both = engine.views.jobs("waiting", "v", count=100, filters={"klass": "app.billing.Invoice", "tag": "eu"})
    assert len(both["jobs"]) == 5
    capped = engine.views.jobs("waiting", "v", count=100, filters={"klass": "app.billing.*"}, scan_cap=9)
    assert capped["scanned"] == 9 and len(capped["jobs"]) == 3 and capped["next"] == 9
    rest = engine.views.jobs("waiting", "v", offset=9, count=100, filters={"klass": "app.billing.*"})
    assert len(rest["jobs"]) == 7


def test_queues_view_oldest_and_throughput(engine: Client, clock: ManualClock) -> None:
    """The longest-waiting job's time across priority bands, today's totals, per-minute counts."""
    q = engine.queues["v"]
    old = q.put("app.X", {}, priority=0)
    clock.advance(10)
    q.put("app.X", {}, priority=5)
    for job in q.pop(1):
        job.complete()
    row = next(r for r in engine.views.queues() if r["name"] == "v")
    assert row["oldest"] == engine.jobs[old].time
    assert row["today"]["completed"] == 1 and row["done"][-1] == 1 and len(row["done"]) == 60
    clock.advance(120)
    row = next(r for r in engine.views.queues(minutes=5) if r["name"] == "v")
    assert row["done"] == [0, 0, 1, 0, 0]


def test_groups_workers_job_tags_tracked(engine: Client) -> None:
    """Failure groups with first/last seen; workers with their jobs; one job with links."""
    q = engine.queues["v"]
    a = q.put("app.A", {})
    b = q.put("app.B", {}, depends=[a])
    for job in q.pop(1):
        job.fail("v-Boom", "first")
    groups = engine.views.groups()
    assert groups["total"] == 1 and groups["groups"][0]["count"] == 1 and groups["groups"][0]["sample"] == a
    engine.workers.register("w9", {"host": "h"})
    engine.queues["w"].put("app.C", {})
    held = engine.pop_from(["w"], worker="w9")[0]
    w = next(x for x in engine.views.workers()["workers"] if x["name"] == "w9")
    assert w["info"] == {"host": "h"} and w["jobs"][0]["jid"] == held.jid and w["running"] == 1
    view = engine.views.job(b)
    assert view["job"] is not None and view["job"]["jid"] == b and view["dependencies"][0]["jid"] == a
    assert engine.views.job(a)["dependents"][0]["jid"] == b
    assert engine.views.job("missing")["job"] is None
    engine.jobs[b].track()
    assert engine.views.tracked_states() == {"total": 1, "sampled": 1, "states": {"depends": 1}}
    engine.jobs[b].tag("x")
    assert engine.views.tags() == [["x", 1]]


def test_one_batch_is_one_round_trip(engine: Client, redis_conn: redis.Redis) -> None:
    """A batch of views is answered by a single pipeline, and errors stay with their view."""
    engine.queues["v"].put("app.X", {})
    batch = engine.views.batch()
    q = batch.queues()
    g = batch.groups()
    bad = batch.jobs("waiting", "v", 0, 5, filters={"tag": "t"})
    batch.run()
    assert q.value[0]["name"] == "v" and g.value["total"] == 0 and bad.value["total"] == 1
    redis_conn.config_resetstat()
    batch = engine.views.batch()
    for _ in range(5):
        batch.queues()
    batch.run()
    calls = redis_conn.info("commandstats")
    fcalls = calls.get("cmdstat_fcall", calls.get("cmdstat_evalsha", {})).get("calls", 0)
    assert fcalls == 5


@pytest.mark.parametrize(("call", "message"), [
    (lambda v: v.jobs("sideways", "v"), "kind must be one of"),
    (lambda v: v.jobs("waiting", ""), "queue"),
    (lambda v: v.jobs("waiting", "v", -1), "offset must be >= 0"),
    (lambda v: v.jobs("waiting", "v", 0, 0), "count must be between 1 and 500"),
    (lambda v: v.jobs("waiting", "v", 0, 501), "count must be between 1 and 500"),
    (lambda v: v.jobs("waiting", "v", filters={"colour": "red"}), "unknown keys"),
    (lambda v: v.jobs("waiting", "v", filters={"klass": ""}), "klass must be a non-empty string"),
    (lambda v: v.jobs("waiting", "v", scan_cap=0), "scan_cap"),
    (lambda v: v.jobs("tagged", ""), "tag"),
    (lambda v: v.queues(minutes=0), "minutes"),
    (lambda v: v.workers(jobs_each=101), "jobs_each"),
    (lambda v: v.job(""), "jid"),
    (lambda v: v.tracked_states(0), "sample"),
])
def test_bad_arguments_are_named_and_change_nothing(engine: Client, redis_conn: redis.Redis, call: Any,
                                                    message: str) -> None:
    """Each bad argument raises InvalidArgument naming it; the keyspace is untouched."""
    engine.queues["v"].put("app.X", {})
    before = snapshot(redis_conn)
    with pytest.raises(InvalidArgument, match=message):
        call(engine.views)
    assert snapshot(redis_conn) == before


def test_lua_checks_the_same_arguments(engine: Client, redis_conn: redis.Redis) -> None:
    """Called directly, the Lua side refuses bad arguments with the same error class."""
    before = snapshot(redis_conn)
    with pytest.raises(InvalidArgument, match="count must be between 1 and 500"):
        engine("view.jobs", "waiting", "v", "0", "9999", "", "", "")
    with pytest.raises(InvalidArgument, match="filters: unknown field"):
        engine("view.jobs", "waiting", "v", "0", "5", "", '{"nope": "x"}', "")
    with pytest.raises(InvalidArgument, match="kind must be one of"):
        engine("view.jobs", "everything", "", "0", "5", "", "", "")
    assert snapshot(redis_conn) == before


def test_views_write_nothing(engine: Client, redis_conn: redis.Redis, clock: ManualClock) -> None:
    """Reading every view leaves the keyspace exactly as it was (even with due work)."""
    q = engine.queues["v"]
    q.put("app.X", {}, delay=5)
    q.recur("app.R", {}, interval=10)
    clock.advance(100)
    before = snapshot(redis_conn)
    batch = engine.views.batch()
    batch.queues(); batch.groups(); batch.workers(); batch.recurring(); batch.tags(); batch.tracked_states()  # noqa: E702
    for kind in ("waiting", "scheduled", "running", "stalled", "depends", "recurring", "throttled"):
        batch.jobs(kind, "v")
    batch.run()
    assert snapshot(redis_conn) == before
