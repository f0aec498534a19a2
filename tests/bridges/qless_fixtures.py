"""A real Qless keyspace for the import tests, built with qless-py (which bundles qless-core's Lua).

On Redis >= 7 scripts may not change the ``table`` global, and qless-core's ``qless.lua``
defines ``function table.extend(...)``: the fixture loads a copy where that helper is a local
function (the installed package is never edited). Every Qless command gets ``now`` from the
test's clock, so leases, schedules and retention are deterministic. The Qless keyspace lives
in database 1 of the session's Redis; the engine's namespace in database 0.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterator
from typing import Any

import qless
import redis

from queueengine.devtools.testing import ManualClock

QLESS_DB = 1


def qless_lua() -> str:
    """qless-core's bundled script with ``table.extend`` made a local function."""
    raw = pkgutil.get_data("qless", "qless-core/qless.lua")
    assert raw is not None
    src = raw.decode("utf-8")
    assert src.count("function table.extend(self, other)") == 1
    src = src.replace("function table.extend(self, other)", "local function table_extend(self, other)")
    return src.replace("table.extend(", "table_extend(")


class ClockedQless(qless.Client):  # type: ignore[misc]
    """qless.Client whose commands take ``now`` from a test clock."""

    def __init__(self, url: str, clock: ManualClock, hostname: str = "qless-host") -> None:
        super().__init__(url, hostname=hostname)
        self.clock = clock
        self._lua = self.redis.register_script(qless_lua())

    def __call__(self, command: str, *args: Any) -> Any:
        try:
            return self._lua(keys=[], args=[command, repr(float(self.clock())), *args])
        except redis.ResponseError as exc:
            raise qless.QlessException(str(exc)) from None

    def as_worker(self, name: str) -> ClockedQless:
        """The same keyspace seen by another worker name."""
        other = ClockedQless.__new__(ClockedQless)
        other.__dict__.update(self.__dict__)
        other.worker_name = name
        other.jobs, other.queues = qless.Jobs(other), qless.Queues(other)
        return other


def source_url(redis_url: str) -> str:
    """The session server's URL, database QLESS_DB."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    return f"{base}/{QLESS_DB}"


def open_qless_conn(redis_url: str, redis_conn: redis.Redis) -> Iterator[redis.Redis]:
    """Fixture ``qless_conn``: a raw (bytes) connection to the Qless database, flushed before
    and after. A test module declares it: ``qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")``."""
    conn = redis.Redis.from_url(source_url(redis_url))
    if conn.dbsize():   # never wipe data these tests did not make (REDIS_URL may name a shared server)
        conn.close()
        raise AssertionError(f"database {QLESS_DB} of the test Redis is not empty; the Qless import tests "
                             "need it empty (they flush it after each test)")
    yield conn
    conn.flushdb()
    conn.close()


def open_qless(redis_url: str, qless_conn: redis.Redis, clock: ManualClock) -> Iterator[ClockedQless]:
    """Fixture ``ql``: a qless-py client on the (empty) Qless database, driven by the test clock."""
    client = ClockedQless(source_url(redis_url), clock)
    yield client
    client.redis.close()


def dump_all(conn: redis.Redis) -> dict[bytes, bytes | None]:
    """DUMP of every key (byte-exact contents, whatever the type)."""
    return {k: conn.dump(k) for k in sorted(conn.scan_iter(count=1000))}


def build_keyspace(ql: ClockedQless, clock: ManualClock) -> dict[str, Any]:
    """Jobs in every Qless state and every feature the importer copies; returns what was made."""
    t0 = clock()
    cfg = ql.config
    cfg["heartbeat"] = 100000
    cfg["jobs-history"] = 3600
    cfg["grace-period"] = 10
    cfg["application"] = "shop"
    cfg["side-heartbeat"] = 60
    cfg["graceq-heartbeat"] = 60
    made: dict[str, Any] = {"t0": t0}
    main = ql.queues["main"]
    # waiting, mixed priorities (one fractional), FIFO within a priority, tags
    order = [("w-a", 0), ("w-b", 5), ("w-c", 0), ("w-d", -1), ("w-e", 2.5), ("w-f", 5), ("w-g", 0)]
    for i, (jid, p) in enumerate(order):
        clock.advance(0.01)
        main.put("app.jobs.Work", {"n": i}, priority=p, tags=["web", f"t{i % 2}"], retries=3, jid=jid)
    made["waiting"] = [j for j, _ in order]
    clock.advance(1)
    main.put("app.jobs.Later", {"later": True}, delay=500, jid="sched-1", tags=["later"])
    # completed: one beyond retention (completed at t0+1), one within
    done = ql.queues["done"]
    done.put("app.jobs.Old", {}, jid="old-done")
    done.pop().complete()
    clock.set(t0 + 3000)
    done.put("app.jobs.New", {"k": 1}, jid="new-done", tags=["fin"])
    job = done.pop()
    job.complete()
    # dependencies
    deps = ql.queues["deps"]
    deps.put("app.jobs.A", {}, jid="dep-a")
    deps.put("app.jobs.B", {}, jid="dep-b", depends=["dep-a"])
    deps.put("app.jobs.C", {}, jid="dep-c", depends=["dep-a", "dep-b"])
    # running (live lease), stalled (expired lease), in grace, timed out
    work = ql.queues["work"]
    work.put("app.jobs.Run", {"r": 1}, jid="run-1", retries=4)
    w1 = ql.as_worker("worker-1")
    w1.queues["work"].pop()
    side = ql.queues["side"]
    side.put("app.jobs.Stall", {}, jid="stall-1")
    w1.queues["side"].pop()
    graceq = ql.queues["graceq"]
    graceq.put("app.jobs.Grace", {}, jid="grace-1", retries=2)
    w1.queues["graceq"].pop()
    tq = ql.queues["tq"]
    tq.put("app.jobs.T", {}, jid="timeout-1")
    w1.queues["tq"].pop().timeout()
    # failures: explicit, and retries exhausted
    bad = ql.queues["bad"]
    bad.put("app.jobs.Bad", {"x": 1}, jid="fail-1", tags=["oops"])
    clock.advance(0.01)
    bad.put("app.jobs.Bad", {"x": 2}, jid="fail-2")
    clock.advance(0.01)
    ql("put", "bad", "fail-3", "app.jobs.Bad", '{"x": 3}', 0, "retries", 0)   # qless-py turns 0 into 5
    w1.queues["bad"].pop().fail("bad-ValueError", "boom 1")
    clock.advance(1)
    w1.queues["bad"].pop().fail("bad-ValueError", "boom 2")
    clock.advance(1)
    w1.queues["bad"].pop().retry()
    # recurring: a template that spawned a child, and one not yet due (with a backlog)
    ql("recur", "cron", "tpl-1", "app.jobs.Tick", '{"tick": 1}', "interval", 60, 0,
       "priority", 3, "tags", '["tick"]', "retries", 2, "backlog", 4)
    ql("recur", "cron", "tpl-2", "app.jobs.Tock", "{}", "interval", 3600, 900)
    ql.queues["cron"].peek(1)   # spawns tpl-1-1
    # paused queue with a waiting job; tracked jobs (one canceled later: Qless keeps the entry)
    ql.queues["held"].put("app.jobs.Held", {}, jid="held-1")
    ql.queues["held"].pause()
    ql.track("w-b")
    ql.track("fail-1")
    main.put("app.jobs.Gone", {}, jid="gone-1")
    ql.track("gone-1")
    ql.jobs["gone-1"].cancel()
    # a tag the engine cannot hold (braces): that job is skipped, with its reason
    ql.queues["odd"].put("app.jobs.Odd", {}, jid="odd-1", tags=["bad{tag}"])
    clock.set(t0 + 3070)
    ql.as_worker("worker-2").queues["graceq"].pop()   # courtesy: grace-1 gets its grace period
    clock.set(t0 + 5000)
    return made
