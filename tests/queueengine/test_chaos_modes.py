"""Regressions of the chaos run (issue 13) in the delivery modes: the reliable worker's outcome
reaches Redis after a crash (SIGKILL) and AOF restart; the recoverable sweep never hands back a
claim younger than ``older_than`` (checked in the same Lua call that hands it back)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.chaos import crash
from queueengine import Client
from queueengine.devtools.embedded import EmbeddedRedis
from queueengine.dispatch import JobManager


@pytest.fixture
def aof_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private server with its AOF fsynced at every write (a SIGKILL then loses nothing)."""
    server = EmbeddedRedis(tmp_path, appendonly=True, extra_args=("--appendfsync", "always"))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("slots", [1, 2], ids=["inline-deferred", "pool"])
def test_the_reliable_workers_outcome_reaches_redis_after_a_crash_and_restart(
        aof_server: EmbeddedRedis, slots: int) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def handler(job: Any) -> Any:
        runs.append(job.id)
        started.set()
        assert release.wait(30)
        return job.data["x"] * 2

    jobman = JobManager()
    client = jobman.client("redis", uri=aof_server.url, mode="reliable", queue="q", namespace="crash")
    worker = jobman.worker("redis", uri=aof_server.url, mode="reliable", queues=["q"], namespace="crash",
                           max_concurrent_jobs=slots)
    worker.jobs.each(handler)
    worker.start()
    try:
        future = client.submit(x=21)
        assert started.wait(15), "the job never started"
        crash(aof_server)                    # Redis dies while the handler runs ...
        release.set()                        # ... which returns: its outcome cannot be stored now
        aof_server.start()                   # back on its AOF
        assert future.result(timeout=30) == 42
        engine = Client.from_url(aof_server.url, namespace="crash")
        try:
            job = engine.jobs[runs[0]]
            assert job.state == "complete" and job.result == 42
        finally:
            engine.close()
        assert len(runs) == 1, "the job ran again: its outcome was dropped"
    finally:
        worker.stop(5)
        client.close()


def _claimed(engine: Client, n: int, worker: str) -> list[str]:
    jobs = engine.pop_from(["q"], n, worker=worker)
    assert len(jobs) == n
    return [job.jid for job in jobs]


@pytest.fixture
def recoverable(engine: Client) -> Client:
    """The test namespace with a recoverable queue ``q`` (claims that never expire by themselves)."""
    from queueengine.dispatch.recoverable import CLAIM_LEASE

    engine.queues["q"].heartbeat = CLAIM_LEASE
    return engine


def test_a_sweep_hands_back_only_claims_older_than_older_than(recoverable: Client, clock: Any) -> None:
    from queueengine.dispatch.recoverable import sweep

    q = recoverable.queues["q"]
    for i in range(5):
        q.put("k", {"i": i})
    old = _claimed(recoverable, 2, "dead")
    clock.advance(20)
    young = _claimed(recoverable, 3, "alive")
    clock.advance(15)                                  # old claims are 35 s old, young ones 15 s
    assert sweep(recoverable, 30, ["q"]) == 2
    assert sorted(j.jid for j in recoverable.pop_from(["q"], 5, worker="next")) == sorted(old)
    assert all(recoverable.jobs[jid].worker == "alive" for jid in young)
    assert sweep(recoverable, 30, ["q"]) == 0          # nothing stale left (the reclaimed are fresh)


def test_a_sweep_never_hands_back_a_claim_taken_since_it_looked(
        recoverable: Client, other: Client, clock: Any) -> None:
    """Another sweeper hands back a dead worker's claim and a live worker takes it, just before
    this sweep's call reaches Redis: the sweep must leave the fresh claim alone."""
    from queueengine.dispatch.recoverable import sweep

    jid = recoverable.queues["q"].put("k", {})
    _claimed(recoverable, 1, "dead")
    clock.advance(100)
    real = recoverable._call
    raced: list[str] = []

    def racing_call(command: str, *args: Any) -> Any:
        if command in ("timeout", "sweep") and not raced:   # just before the hand-back reaches Redis
            raced.append(command)
            sweep(other, 30, ["q"])         # the other sweeper ...
            assert other.pop_from(["q"], 1, worker="live")[0].jid == jid   # ... and a live worker's claim
        return real(command, *args)

    recoverable._call = racing_call  # type: ignore[method-assign]
    sweep(recoverable, 30, ["q"])
    job = recoverable.jobs[jid]
    assert (job.state, job.worker) == ("running", "live"), "the sweep handed back a claim 0 s old"
