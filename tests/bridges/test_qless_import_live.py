"""Importing while Qless keeps running: the import finishes, and a second run once the Qless
worker stopped leaves no Qless job behind (the documented cut-over)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from queueengine import Client
from queueengine.devtools.testing import ManualClock
from queueengine.migrate import import_qless
from tests.bridges.qless_fixtures import ClockedQless, build_keyspace, open_qless, open_qless_conn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

qless_conn = pytest.fixture(open_qless_conn, name="qless_conn")
ql = pytest.fixture(open_qless, name="ql")

LEFT_OUT = {"odd-1", "old-done"}   # a tag the engine cannot hold; completed beyond retention


def wait_for(condition: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_import_while_a_qless_worker_runs(ql: ClockedQless, qless_conn: redis.Redis, engine: Client,
                                          clock: ManualClock) -> None:
    build_keyspace(ql, clock)
    for i in range(1500):
        ql.queues["live"].put("app.jobs.Live", {"i": i}, jid=f"live-{i}")
    stop, done, errors = threading.Event(), [0], []

    def qless_worker() -> None:
        w = ql.as_worker("live-worker")
        try:
            while not stop.is_set():
                n = done[0]
                w.queues["live"].put("app.jobs.Live", {"n": n}, jid=f"live-new-{n}")
                job = w.queues["live"].pop()
                if job is not None:
                    if n % 3:
                        job.complete()
                    else:
                        job.fail("live-Error", f"failure {n}")
                done[0] = n + 1
        except Exception as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=qless_worker, daemon=True)
    thread.start()
    wait_for(lambda: done[0] >= 20 or errors, "the Qless worker to run")
    before = done[0]
    first = import_qless(qless_conn, engine, chunk=50)
    during = done[0] - before
    stop.set()
    thread.join(30)
    assert not errors and not thread.is_alive()
    assert during > 0, "Qless worked on while the import ran"
    ql.queues["live"].put("app.jobs.Live", {}, jid="after-stop")
    ql.as_worker("live-worker").queues["live"].pop(2000)   # whatever is left waiting now runs in Qless
    second = import_qless(qless_conn, engine)
    jids = {k.decode()[5:] for k in qless_conn.scan_iter(match="ql:j:*", _type="hash")}
    missing = sorted(j for j in jids - LEFT_OUT if j not in engine.jobs)
    assert missing == []
    assert first.jobs > 1500 and second.already["job"] >= first.jobs
    # what the Qless worker did after the first run read a job is not carried over (the cut-over
    # pauses the Qless workers first); what it made after that, the second run brought in
    assert str(engine.jobs["after-stop"].state) == "running"
    assert engine.jobs["after-stop"].worker_name == "live-worker"
