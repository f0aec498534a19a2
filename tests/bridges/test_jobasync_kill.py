"""A Python jobasync worker killed mid-job: what Job::Async's reliable claim gives, and no more.

The claim is atomic (``BLMOVE``/``LMOVE`` from ``P::Q`` to ``P::processing``), so the id of a
job whose worker died stays in ``jobs::processing`` with its hash (``_started``, no result).
Nothing requeues it: Job::Async's processing list records neither owner nor claim time, and
another worker (Perl or Python) only reads ``jobs::pending``. A Python client withdraws it
(``LREM`` from both lists, ``DEL`` of the hash) when its future times out or is cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import redis

from queueengine.dispatch import JobManager

from .perl_fixtures import ROOT, PerlStack, perl, perl_uri, wait_for  # noqa: F401


def test_killed_python_worker_leaves_the_id_in_processing(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis,  # noqa: F811
) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    held = subprocess.Popen([sys.executable, "-m", "tests.bridges.ja_hold_worker", perl_uri], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    client = JobManager().client("redis", uri=perl_uri, mode="jobasync")
    try:
        future = client.submit(x=21)
        assert held.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(held.stdout or ()), daemon=True)
        reader.start()
        wait_for(lambda: lines or held.poll() is not None, "the Python worker to take the job", 60)
        line = lines[0] if lines else ""
        assert line.startswith("started "), f"worker said {line!r}, exit code {held.poll()}"
        jid = line.split()[1]
        held.send_signal(signal.SIGKILL)
        assert held.wait(10) == -signal.SIGKILL

        assert [i.decode() for i in redis_conn.lrange("jobs::processing", 0, -1)] == [jid]
        assert redis_conn.llen("jobs::pending") == 0
        record = redis_conn.hgetall(f"job::{jid}")
        assert b"_started" in record and b"result" not in record and b"_processed" not in record

        # another worker (here the real Perl one) does new jobs, and never the orphaned one
        worker = perl.worker(perl_uri)
        try:
            assert client.submit(x=5).result(30) == "10"
        finally:
            assert worker.stop() == 0
        assert [i.decode() for i in redis_conn.lrange("jobs::processing", 0, -1)] == [jid]
        assert not future.done()

        # the Python client withdraws it: out of both lists, hash deleted
        assert future.cancel()
        assert redis_conn.llen("jobs::processing") == 0
        assert redis_conn.exists(f"job::{jid}") == 0
    finally:
        client.close()
        if held.poll() is None:
            held.kill()
            held.wait(5)
