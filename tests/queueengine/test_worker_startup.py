"""qe_worker while Redis is unreachable at start-up, as a real process: --burst gives up after
bounded retries with a clear message, a SIGTERM while it waits exits cleanly, and a worker
started during an outage works once Redis answers."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queueengine import Client
from queueengine.devtools.embedded import EmbeddedRedis, free_port
from tests.queueengine.test_worker_process import Proc

NS = "ws"


@pytest.fixture
def spawn_at(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """``spawn_at(url, "qe_worker", ...)`` runs ``manage.py`` against the Redis at ``url``."""
    procs: list[Proc] = []

    def start(url: str, *args: str) -> Proc:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": url, "QE_NAMESPACE": NS,
               "CHANNEL_LAYER": "memory", "DJANGO_SECRET_KEY": "worker-tests-" + "x" * 40,
               "QE_DATA_DIR": str(tmp_path), "QE_TEST_REDIS_URL": url, "PYTHONUNBUFFERED": "1"}
        proc = Proc([sys.executable, "manage.py", *args], env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def test_burst_with_redis_down_gives_up_with_a_clear_message(spawn_at: Callable[..., Proc]) -> None:
    """--burst and nothing listening: a few retries, then exit 1 naming the URL (password
    hidden) and the way out; no traceback."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    proc = spawn_at(url, "qe_worker", "-q", "q", "--burst", "--redis-wait", "1")
    proc.expect("trying again in")
    assert proc.wait(60) == 1
    out = "".join(proc.output)
    assert f"cannot reach Redis at {url.replace(':s3cret@', ':***@')}" in out and "gave up after" in out, out
    assert "REDIS_URL" in out and "s3cret" not in out and "Traceback" not in out, out


def test_sigterm_while_waiting_for_redis_exits_cleanly(spawn_at: Callable[..., Proc]) -> None:
    """A worker started during an outage retries; SIGTERM then stops it at once: exit 0, no traceback."""
    proc = spawn_at(f"redis://127.0.0.1:{free_port()}/0", "qe_worker", "-q", "q")
    proc.expect("trying again in")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, "".join(proc.output)
    out = "".join(proc.output)
    assert "stopped before start-up finished" in out and "Traceback" not in out, out


def test_a_worker_started_during_an_outage_works_once_redis_answers(spawn_at: Callable[..., Proc],
                                                                    tmp_path: Path) -> None:
    """No --burst: it waits as long as it takes, then works the queue like any worker."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    proc = spawn_at(url, "qe_worker", "-q", "q")
    proc.expect("trying again in")
    server = EmbeddedRedis(tmp_path / "redis", port=port)
    server.start()
    client = Client.from_url(url, namespace=NS, worker_name="tester")
    try:
        jid = client.queues["q"].put("tests.jobfixtures.record_start", {"started": "t:started"}, reply=True)
        assert client.wait(jid, timeout=30) == "ok"
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(proc.output)  # a graceful stop: generous for a loaded machine
    finally:
        client.close()
        server.stop()
