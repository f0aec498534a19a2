"""The worker as a real process: qe_worker under signals, SIGKILL recovery, the supervisor."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from queueengine import Client
from queueengine.worker import Worker
from tests.jobfixtures import blpop

NS = "wp"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(redis_url: str, redis_conn: redis.Redis) -> Iterator[Client]:
    c = Client.from_url(redis_url, namespace=NS, worker_name="tester")
    yield c
    c.close()


class Proc:
    """A child process whose stderr+stdout lines are collected as they arrive."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1)
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line)
            self.lines.put(line)

    def expect(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"{text!r} never appeared; output so far:\n{''.join(self.output)}")

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 20) -> int:
        code = self.popen.wait(timeout)
        self.reader.join(5)  # the output up to the exit is in self.output
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def spawn(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """``spawn("qe_worker", "-q", "q", ...)`` runs ``manage.py`` with the test Redis and namespace."""
    procs: list[Proc] = []
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": redis_url, "QE_NAMESPACE": NS,
           "CHANNEL_LAYER": "memory", "DJANGO_SECRET_KEY": "worker-tests-" + "x" * 40, "QE_DATA_DIR": str(tmp_path),
           "QE_TEST_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}

    def start(*args: str) -> Proc:
        proc = Proc([sys.executable, "manage.py", *args], env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def key() -> str:
    return f"t:{uuid.uuid4().hex}"




def test_sigterm_finishes_in_flight_jobs_then_exits_0(client: Client, redis_conn: redis.Redis,
                                                     spawn: Callable[..., Proc]) -> None:
    started = key()
    jids = [client.queues["q"].put("tests.jobfixtures.sleep_then_finish", {"started": started, "seconds": 1.0})
            for _ in range(2)]
    waiting = client.queues["q"].put("tests.jobfixtures.add", {"x": 1, "y": 2}, priority=-1)
    proc = spawn("qe_worker", "-q", "q", "--concurrency", "2")
    blpop(redis_conn, started)
    blpop(redis_conn, started)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, "".join(proc.output)
    assert [client.jobs[j].state for j in jids] == ["complete", "complete"]
    assert client.jobs[waiting].state == "waiting", "no new job was fetched after the signal"
    assert client.workers.counts == [], "deregistered on exit"


def test_second_signal_exits_at_once(client: Client, redis_conn: redis.Redis, spawn: Callable[..., Proc]) -> None:
    started, release = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.signal_and_wait", {"started": started, "release": release})
    proc = spawn("qe_worker", "-q", "q")
    blpop(redis_conn, started)
    proc.signal(signal.SIGINT)
    proc.expect("finishing running jobs")
    began = time.monotonic()
    proc.signal(signal.SIGINT)
    code = proc.wait(25)
    assert code != 0
    assert time.monotonic() - began < 20, "did not wait for the running job (shutdown_timeout is 30 s)"
    assert client.jobs[jid].state == "running", "left for lease expiry: nobody completed it"


def test_sigkilled_worker_job_is_reclaimed_after_lease_and_grace(
        client: Client, redis_conn: redis.Redis, spawn: Callable[..., Proc]) -> None:
    client.config["heartbeat"] = 1
    client.config["grace-period"] = 0
    started, counter = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.block_first_run", {"started": started, "counter": counter},
                                 reply=True)
    proc = spawn("qe_worker", "-q", "q")
    blpop(redis_conn, started)
    proc.popen.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.monotonic()

    rescuer = Worker(client, ["q"], name="rescuer", install_signals=False)
    thread = threading.Thread(target=rescuer.run, daemon=True)
    thread.start()
    try:
        assert client.wait(jid, timeout=15) == "second run"
        elapsed = time.monotonic() - killed_at
    finally:
        rescuer.stop()
        thread.join(10)
    job = client.jobs[jid]
    assert job.state == "complete" and job.retries_left == job.original_retries - 1
    assert elapsed < 30, f"reclaimed {elapsed:.1f}s after the kill (lease 1 s, grace 0; the default lease is 60 s)"


def test_supervisor_runs_n_processes_restarts_dead_ones_and_stops_them(
        client: Client, redis_conn: redis.Redis, spawn: Callable[..., Proc]) -> None:
    proc = spawn("qe_worker", "-q", "q", "--processes", "2", "--name", "sup")
    for _ in range(2):
        proc.expect("worker sup-")
    deadline = time.monotonic() + 20

    def workers() -> dict[str, Any]:
        return {w["name"]: w for w in client.workers.counts}

    while len(workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    names = workers()
    assert set(names) == {"sup-0", "sup-1"}
    pid = int(client.workers["sup-0"]["info"]["pid"])
    assert pid != proc.popen.pid, "workers run in child processes"
    os.kill(pid, signal.SIGKILL)
    proc.expect("restarting")
    while time.monotonic() < deadline:
        info = client.workers["sup-0"]["info"]
        if info and int(info["pid"]) != pid:
            break
        time.sleep(0.05)
    assert int(client.workers["sup-0"]["info"]["pid"]) != pid, "the dead child was replaced"

    started = key()
    jid = client.queues["q"].put("tests.jobfixtures.record_start", {"started": started})
    blpop(redis_conn, started)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, "".join(proc.output)
    assert client.jobs[jid].state == "complete"
    assert not workers(), "every child deregistered"


def test_burst_with_several_processes_exits_when_the_queue_is_empty(
        client: Client, spawn: Callable[..., Proc]) -> None:
    jids = [client.queues["q"].put("tests.jobfixtures.add", {"x": i, "y": 1}) for i in range(20)]
    proc = spawn("qe_worker", "-q", "q", "--processes", "2", "--burst")
    assert proc.wait(30) == 0, "".join(proc.output)
    assert [client.jobs[j].result for j in jids] == [i + 1 for i in range(20)]


@pytest.mark.parametrize("mode", ["simple", "recoverable"])
def test_qe_worker_runs_the_other_delivery_modes_with_a_handler(
        mode: str, redis_url: str, redis_conn: redis.Redis, spawn: Callable[..., Proc]) -> None:
    from queueengine.dispatch import JobManager

    proc = spawn("qe_worker", "-q", "default", "--mode", mode, "--handler", "tests.jobfixtures.mode_add")
    proc.expect(f"{mode} worker: queues default")
    client = JobManager().client("redis", uri=redis_url, namespace=NS, mode=mode, queue="default")
    try:
        assert client.submit(x=20, y=22).result(timeout=15) == 42
    finally:
        client.close()
    proc.signal(signal.SIGTERM)
    assert proc.wait(60) == 0, "".join(proc.output)  # a graceful stop: generous for a loaded machine


def test_every_command_help_runs_from_manage_py(spawn: Callable[..., Proc]) -> None:
    for name in ("qe_worker", "qe_put", "qe_stats", "qe_sweep", "qe_config"):
        proc = spawn(name, "--help")
        assert proc.wait() == 0, "".join(proc.output)
        text = "".join(proc.output)
        assert f"usage: manage.py {name}" in text and "examples:" in text


def test_supervisor_second_signal_exits_at_once(client: Client, redis_conn: redis.Redis,
                                               spawn: Callable[..., Proc]) -> None:
    """The second signal kills the children at once, also when it reaches the supervisor before
    its first child has exited (it used to be taken for the first one then, and the supervisor
    waited the whole shutdown timeout: seen under load, when the idle child logs first)."""
    started, release = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.signal_and_wait", {"started": started, "release": release})
    proc = spawn("qe_worker", "-q", "q", "--processes", "2", "--name", "sup2")
    blpop(redis_conn, started)
    proc.signal(signal.SIGTERM)
    proc.expect("finishing running jobs")
    began = time.monotonic()
    proc.signal(signal.SIGTERM)
    proc.wait(25)
    assert time.monotonic() - began < 20, "did not wait for the running job (shutdown_timeout is 30 s)"
    assert client.jobs[jid].state == "running", "nobody completed it; its lease will expire"


def test_sigterm_hands_back_jobs_that_outlive_the_shutdown_timeout(
        client: Client, redis_conn: redis.Redis, spawn: Callable[..., Proc]) -> None:
    started, release = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.signal_and_wait", {"started": started, "release": release},
                                 retries=3)
    proc = spawn("qe_worker", "-q", "q", "--shutdown-timeout", "0.5")
    blpop(redis_conn, started)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, "".join(proc.output)
    job = client.jobs[jid]
    assert job.state == "waiting" and job.retries_left == 3, "handed back without spending a retry"
    assert "handed back" in "".join(proc.output)


def test_worker_rides_out_a_redis_restart(tmp_path: Path) -> None:
    """A private Redis (AOF on) is stopped under a running worker and started again on the same port."""
    from queueengine.devtools.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    url = server.start()
    old_url = os.environ.get("QE_TEST_REDIS_URL")
    os.environ["QE_TEST_REDIS_URL"] = url  # the handlers report on this server
    client = Client.from_url(url, namespace=NS, worker_name="tester")
    conn = redis.Redis.from_url(url)
    worker = Worker(client, ["q"], install_signals=False, max_wait=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        thread.start()
        started = key()
        first = client.queues["q"].put("tests.jobfixtures.record_start", {"started": started}, reply=True)
        assert client.wait(first, timeout=10) == "ok"
        server.stop()
        time.sleep(1.5)  # Redis is away; the worker keeps trying
        EmbeddedRedis(tmp_path / "redis", port=server.port, appendonly=True).start()
        # the same client: its pool and reply inbox reconnect by themselves
        second = client.queues["q"].put("tests.jobfixtures.record_start", {"started": started}, reply=True)
        assert client.wait(second, timeout=20) == "ok"
        assert conn.llen(started) == 2
    finally:
        worker.stop()
        thread.join(15)
        client.close()
        conn.close()
        with contextlib.suppress(Exception):
            redis.Redis.from_url(url).shutdown(nosave=True)
        if old_url is not None:
            os.environ["QE_TEST_REDIS_URL"] = old_url
