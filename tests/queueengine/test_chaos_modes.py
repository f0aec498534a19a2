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
from queueengine.dispatch import JobManager
from queueengine.embedded import EmbeddedRedis


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
