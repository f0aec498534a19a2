"""Delivery modes end to end: the compliance harness, crashes with real processes, Redis restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from queueengine.client import Client as EngineClient
from queueengine.devtools import compliance
from queueengine.devtools.embedded import EmbeddedRedis
from queueengine.dispatch import JobFailed, JobManager, JobTimeout
from queueengine.dispatch import memory as memory_backend
from queueengine.dispatch.reliable import KLASS

NS = "test"
ROOT = Path(__file__).resolve().parents[2]
KINDS = [("memory", "simple"), ("redis", "simple"), ("redis", "recoverable"), ("redis", "reliable")]
IDS = ["memory", "simple", "recoverable", "reliable"]


def cfg(kind: tuple[str, str], url: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": kind[1], "namespace": NS, **extra}
    if kind[0] == "redis":
        out["uri"] = url
    return out


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        if hasattr(thing, "stop"):
            thing.stop(timeout=1)
        else:
            thing.close()
    memory_backend.reset()


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_compliance_harness(kind: tuple[str, str], redis_url: str, redis_conn: redis.Redis,
                            cleanup: list[Any]) -> None:
    """Job::Async's harness: 2,531 additions at client concurrency 1, 2, 4, 8, 50, all checked."""
    jm = JobManager()
    worker = jm.worker(kind[0], **cfg(kind, redis_url, max_concurrent_jobs=4))
    worker.jobs.each(compliance.add)
    cleanup.append(worker.start())
    client = jm.client(kind[0], **cfg(kind, redis_url))
    cleanup.append(client)
    assert compliance.run(client) == 2531
    assert client.pending == 0


def spawn_worker(url: str, mode: str, marker: str) -> subprocess.Popen[bytes]:
    """A worker in its own process whose handler records the job it holds, then hangs."""
    script = f"""
import sys, time
from queueengine.store.connection import connect
from queueengine.dispatch import JobManager
conn = connect({url!r})  # redis://, or redis+cluster:// when the suite runs on a cluster
def hold(job):
    conn.set({marker!r}, job.id)
    time.sleep(600)
worker = JobManager().worker("redis", uri={url!r}, mode={mode!r}, namespace={NS!r})
worker.jobs.each(hold)
worker.run()
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_killed_worker_job_is_done_by_another(mode: str, redis_url: str, redis_conn: redis.Redis,
                                              cleanup: list[Any]) -> None:
    """SIGKILL a worker holding a job: another worker does it and the original future resolves."""
    engine = EngineClient.from_url(redis_url, namespace=NS)
    engine.config["heartbeat"] = 1  # reliable: a 1 s lease ...
    engine.config["grace-period"] = 0  # ... reclaimed as soon as it expires
    engine.close()
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode=mode, namespace=NS)
    cleanup.append(client)
    future = client.submit(x=20, y=22)
    proc = spawn_worker(redis_url, mode, "holding")
    try:
        held = wait_for(lambda: redis_conn.get("holding"))
        assert held.decode().endswith(future_jid_suffix(client, held))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not future.done()
    # recoverable: the rescuer's own periodic sweep finds the dead worker's claim
    sweeping = {"sweep_interval": 0.2, "sweep_older_than": 0.5} if mode == "recoverable" else {}
    rescuer = jm.worker("redis", uri=redis_url, mode=mode, namespace=NS, **sweeping)
    rescuer.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
    cleanup.append(rescuer.start())
    assert future.result(15) == 42
    engine = EngineClient.from_url(redis_url, namespace=NS)
    job = engine.jobs[held.decode()]
    assert job.state.value == "complete"
    poppers = [entry["worker"] for entry in job.history if entry["what"] == "popped"]
    assert len(poppers) == 2 and poppers[0] != poppers[1]  # the dead worker, then the rescuer
    assert poppers[1] == rescuer._backend.name
    engine.close()


def future_jid_suffix(client: Any, held: bytes) -> str:
    """The held jid must be one this client submitted (its jids carry the client prefix)."""
    prefix = getattr(client._backend, "jid_prefix", "")
    assert held.decode().startswith(prefix)
    return held.decode()[len(prefix):]


def test_killed_worker_in_simple_mode_loses_the_job(redis_url: str, redis_conn: redis.Redis,
                                                     cleanup: list[Any]) -> None:
    """simple: a worker killed while holding a job loses it (documented); the client times out."""
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode="simple", namespace=NS, timeout=1.5)
    cleanup.append(client)
    future = client.submit(x=1, y=1)
    proc = spawn_worker(redis_url, "simple", "holding")
    try:
        wait_for(lambda: redis_conn.get("holding"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rescuer = jm.worker("redis", uri=redis_url, mode="simple", namespace=NS)
    rescuer.jobs.each(lambda job: job.done(0))
    cleanup.append(rescuer.start())
    with pytest.raises(JobTimeout):
        future.result(10)
    assert redis_conn.llen(f"qe:{{{NS}}}:m:s:default") == 0  # the payload is gone for good
    assert rescuer.processed == 0


@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_redis_restart_loses_nothing(mode: str, tmp_path: Path, cleanup: list[Any]) -> None:
    """Redis (AOF on) restarts while jobs are queued: every job is done, every future resolves."""
    server = EmbeddedRedis(tmp_path, appendonly=True)
    url = server.start()
    try:
        jm = JobManager()
        client = jm.client("redis", uri=url, mode=mode, namespace=NS)
        cleanup.append(client)
        conn = redis.Redis.from_url(url)
        assert conn.config_get("appendonly")["appendonly"] == "yes"
        assert conn.config_get("save")["save"] == ""  # no RDB snapshot: only the AOF can keep them
        futures = [client.submit(x=i, y=i) for i in range(50)]
        conn.close()
        server.restart()
        engine = EngineClient.from_url(url, namespace=NS)
        assert len(engine.queues["default"].jobs.waiting(count=100)) == 50  # all still queued
        engine.close()
        worker = jm.worker("redis", uri=url, mode=mode, namespace=NS, max_concurrent_jobs=4)
        worker.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
        cleanup.append(worker.start())
        assert [f.result(20) for f in futures] == [2 * i for i in range(50)]
        for thing in reversed(cleanup):
            thing.stop(timeout=1) if hasattr(thing, "stop") else thing.close()
        cleanup.clear()
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_missed_reply_is_read_from_the_record(mode: str, redis_url: str, redis_conn: redis.Redis,
                                              cleanup: list[Any]) -> None:
    """A client that is not listening when the result is published still gets it (and failures)."""
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode=mode, namespace=NS)
    cleanup.append(client)
    client._backend._listener.stop()  # deaf from now on: only the stored results can help
    ok = client.submit(x=2, y=2)
    bad = client.submit(x=None, y=2)
    worker = jm.worker("redis", uri=redis_url, mode=mode, namespace=NS)
    worker.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
    cleanup.append(worker.start())
    assert ok.result(10) == 4
    with pytest.raises(JobFailed, match="TypeError"):
        bad.result(10)


@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_jobs_are_ordinary_engine_jobs(mode: str, redis_url: str, redis_conn: redis.Redis,
                                       cleanup: list[Any]) -> None:
    """Submitted jobs show in the engine's job records, queue counts, stats and events."""
    engine = EngineClient.from_url(redis_url, namespace=NS)
    pubsub = engine.events.subscriber(engine.keys.events)  # SSUBSCRIBE on a cluster
    pubsub.connect()
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode=mode, namespace=NS, queue="reports")
    cleanup.append(client)
    future = client.submit(n=7)
    waiting = engine.queues["reports"].jobs.waiting()
    assert len(waiting) == 1
    job = engine.jobs[waiting[0]]
    assert (job.klass, job.state.value, job.data) == (KLASS, "waiting", {"n": 7})
    worker = jm.worker("redis", uri=redis_url, mode=mode, namespace=NS, queues=["reports"])
    worker.jobs.each(lambda j: j.done(j.data["n"] * 6))
    cleanup.append(worker.start())
    assert future.result(10) == 42
    job = engine.jobs[waiting[0]]
    assert (job.state.value, job.result) == ("complete", 42)
    assert engine.queues["reports"].stats()["run"]["count"] == 1
    registered = engine.workers[worker._backend.name]  # the dashboard's workers page sees it
    assert registered["info"]["mode"] == mode
    events: set[str] = set()
    deadline = time.monotonic() + 5
    while not {"put", "popped", "completed"} <= events and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg is not None:
            events.add(orjson.loads(msg[1])["e"])
    assert {"put", "popped", "completed"} <= events
    pubsub.close()
    engine.close()


def test_recoverable_sweep_only_takes_old_claims(redis_url: str, redis_conn: redis.Redis,
                                                 cleanup: list[Any]) -> None:
    """sweep(older_than) hands back claims older than the threshold, not younger ones."""
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode="recoverable", namespace=NS)
    cleanup.append(client)
    future = client.submit(x=1, y=2)
    proc = spawn_worker(redis_url, "recoverable", "holding")
    try:
        wait_for(lambda: redis_conn.get("holding"))
        assert client.sweep(older_than=3600) == 0
        time.sleep(0.3)
        assert client.sweep(older_than=0.2) == 1
        assert client.sweep(older_than=0) == 0  # already handed back
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    worker = jm.worker("redis", uri=redis_url, mode="recoverable", namespace=NS)
    worker.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
    cleanup.append(worker.start())
    assert future.result(10) == 3


def test_reliable_heartbeats_keep_a_long_job(redis_url: str, redis_conn: redis.Redis,
                                            cleanup: list[Any]) -> None:
    """A reliable job running for several lease periods is heartbeated, not reclaimed."""
    engine = EngineClient.from_url(redis_url, namespace=NS)
    engine.config["heartbeat"] = 1
    engine.config["grace-period"] = 0
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode="reliable", namespace=NS)
    cleanup.append(client)
    runs: list[str] = []

    def slow(job: Any) -> str:
        runs.append(job.id)
        time.sleep(2.5)
        return "survived"

    for _ in range(2):  # a second, idle worker would take the job if the lease lapsed
        worker = jm.worker("redis", uri=redis_url, mode="reliable", namespace=NS)
        worker.jobs.each(slow)
        cleanup.append(worker.start())
    future = client.submit()
    assert future.result(15) == "survived"
    assert len(runs) == 1
    history = [entry["what"] for entry in engine.jobs[runs[0]].history]
    assert "timed-out" not in history
    engine.close()


def test_run_stops_on_sigterm(redis_url: str, redis_conn: redis.Redis, cleanup: list[Any]) -> None:
    """worker.run() in a process: SIGTERM lets the job in flight finish, then the process exits."""
    script = f"""
import time
from queueengine.dispatch import JobManager
worker = JobManager().worker("redis", uri={redis_url!r}, mode="reliable", namespace={NS!r})
def slow(job):
    from queueengine.store.connection import connect
    connect({redis_url!r}).set("started", job.id)
    time.sleep(0.5)
    return "finished"
worker.jobs.each(slow)
worker.run()
"""
    client = JobManager().client("redis", uri=redis_url, mode="reliable", namespace=NS)
    cleanup.append(client)
    future = client.submit()
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            cwd=ROOT)
    try:
        wait_for(lambda: redis_conn.get("started"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert future.result(5) == "finished"


def test_reliable_retries_exhausted_fail_the_future(redis_url: str, redis_conn: redis.Redis,
                                                   cleanup: list[Any]) -> None:
    """reliable, retries=0: the worker dies, the lease lapses, the job fails; the future raises."""
    engine = EngineClient.from_url(redis_url, namespace=NS)
    engine.config["heartbeat"] = 1
    engine.config["grace-period"] = 0
    engine.close()
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode="reliable", namespace=NS, retries=0)
    cleanup.append(client)
    future = client.submit(x=1, y=1)
    proc = spawn_worker(redis_url, "reliable", "holding")
    try:
        wait_for(lambda: redis_conn.get("holding"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rescuer = jm.worker("redis", uri=redis_url, mode="reliable", namespace=NS)
    rescuer.jobs.each(lambda job: job.done(0))
    cleanup.append(rescuer.start())
    with pytest.raises(JobFailed) as info:
        future.result(15)
    assert rescuer.processed == 0
    assert info.value.group  # the engine names the group (e.g. the stalled-job group)


def test_qe_sweep_hands_back_a_dead_workers_recoverable_claim(redis_url: str, redis_conn: redis.Redis,
                                                              cleanup: list[Any], settings: Any) -> None:
    """recoverable: `manage.py qe_sweep --older-than 0` requeues the claim of a killed worker; a
    worker that does not sweep by itself then does the job and the original future resolves."""
    from io import StringIO

    from django.core.management import call_command

    settings.QUEUEENGINE = {**settings.QUEUEENGINE, "NAMESPACE": NS, "MODE": "recoverable"}
    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode="recoverable", namespace=NS)
    cleanup.append(client)
    future = client.submit(x=5, y=6)
    proc = spawn_worker(redis_url, "recoverable", "holding")
    try:
        wait_for(lambda: redis_conn.get("holding"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rescuer = jm.worker("redis", uri=redis_url, mode="recoverable", namespace=NS, sweep_interval=3600)
    rescuer.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
    cleanup.append(rescuer.start())
    assert not future.done()
    out = StringIO()
    call_command("qe_sweep", "--older-than", "0", stdout=out)
    assert "recoverable: requeued 1" in out.getvalue()
    assert future.result(15) == 11


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["recoverable", "reliable"])
def test_dispatch_jobs_show_in_the_dashboard(mode: str, redis_url: str, redis_conn: redis.Redis,
                                             cleanup: list[Any], admin_client: Any) -> None:
    """A submitted job has its page in the dashboard (queue list and job detail), like any job."""
    client = JobManager().client("redis", uri=redis_url, mode=mode, namespace=NS, queue="reports")
    cleanup.append(client)
    future = client.submit(n=7)
    engine = EngineClient.from_url(redis_url, namespace=NS)
    (jid,) = engine.queues["reports"].jobs.waiting()
    engine.close()
    queue_page = admin_client.get("/jobs/queue/reports/?tab=waiting")
    assert queue_page.status_code == 200 and jid in queue_page.content.decode()
    job_page = admin_client.get(f"/jobs/job/{jid}/")
    assert job_page.status_code == 200
    assert jid in job_page.content.decode() and KLASS in job_page.content.decode()
    assert not future.done()


@pytest.mark.parametrize("mode", ["simple", "recoverable", "reliable"])
def test_storage_and_claims_of_each_mode(mode: str, redis_url: str, redis_conn: redis.Redis,
                                         cleanup: list[Any]) -> None:
    """What DESIGN.md §4's table says each mode stores while a job waits and while it runs."""
    import threading

    from queueengine.dispatch.recoverable import CLAIM_LEASE

    jm = JobManager()
    client = jm.client("redis", uri=redis_url, mode=mode, namespace=NS)
    cleanup.append(client)
    future = client.submit(word="hello")
    jid = future.jid
    record = f"qe:{{{NS}}}:j:{jid}"
    if mode == "simple":  # the whole payload in a list, no record
        (payload,) = redis_conn.lrange(f"qe:{{{NS}}}:m:s:default", 0, -1)
        message = orjson.loads(payload)
        assert (message["id"], message["d"]) == (jid, {"word": "hello"})
        assert message["r"] == f"qe:{{{NS}}}:m:reply:{client.id}"
        assert not redis_conn.exists(record)
    else:  # an engine job record with the data, waiting in the queue
        assert orjson.loads(redis_conn.hget(record, "data")) == {"word": "hello"}
        assert redis_conn.hget(record, "klass") == KLASS.encode()
    inside = threading.Event()
    release = threading.Event()

    def handler(job: Any) -> str:
        inside.set()
        release.wait(10)
        return job.data["word"].upper()

    worker = jm.worker("redis", uri=redis_url, mode=mode, namespace=NS)
    worker.jobs.each(handler)
    cleanup.append(worker.start())
    assert inside.wait(10)
    now = float(redis_conn.time()[0])
    locks = f"qe:{{{NS}}}:q:default:locks"
    if mode == "simple":  # popped and forgotten: nothing in Redis says a worker holds it
        assert redis_conn.llen(f"qe:{{{NS}}}:m:s:default") == 0 and not redis_conn.keys(f"*{jid}*")
    elif mode == "recoverable":  # a claim that never expires by itself; its score tells the claim time
        claimed_at = redis_conn.zscore(locks, jid) - CLAIM_LEASE
        assert abs(claimed_at - now) < 5
    else:  # a lease of the engine's heartbeat length
        expires = redis_conn.zscore(locks, jid)
        assert 0 < expires - now <= 61
    release.set()
    assert future.result(10) == "HELLO"
    if mode != "simple":  # the result is stored in the record
        assert orjson.loads(redis_conn.hget(record, "result")) == "HELLO"
