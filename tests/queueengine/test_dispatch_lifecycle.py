"""queueengine.dispatch, continued: ids across forks, threads, stop and prefetch, timeouts and
cancellation, reconnects, the documented tour, over every backend."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
import redis

from queueengine.client import Client as EngineClient
from queueengine.dispatch import JobFailed, JobTimeout
from queueengine.dispatch.base import new_id
from queueengine.exceptions import QueueEngineError

from .dispatchpair import NS, Pair, add, run_async

FORKS = """
import os, random, sys
from queueengine.dispatch.base import new_id
from queueengine.dispatch import JobManager
client = JobManager().client("memory", mode="simple", namespace="forks")
new_id()
random.seed(42)  # the same seeded state in every child: ids must not depend on it
readers = []
for _ in range(4):
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        ids = [new_id() for _ in range(200)] + [client.submit(n=i).jid for i in range(50)]
        os.write(w, "\\n".join(ids).encode())
        os._exit(0)
    os.close(w)
    readers.append(r)
ids = [new_id() for _ in range(200)] + [client.submit(n=i).jid for i in range(50)]
for r in readers:
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    ids += data.decode().split("\\n")
    os.wait()
print(len(ids), len(set(ids)))
"""


def test_job_ids_are_unique_across_forks() -> None:
    """Children forked from one parent (same seeded random state) draw different job ids, both
    from new_id() and from submit(); each is an RFC 4122 version 4 UUID."""
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", FORKS], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1250", "1250"]
    parsed = uuid.UUID(new_id())
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_many_threads_submitting(pair: Pair) -> None:
    """Submits from many threads at once (grouped into shared pushes) all get their own answer."""
    client = pair.client()
    pair.worker(add, max_concurrent_jobs=4)
    results: dict[int, list[int]] = {}

    def submitter(t: int) -> None:
        futures = [client.submit(x=t, y=i) for i in range(100)]
        results[t] = [f.result(20) for f in futures]

    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {t: [t + i for i in range(100)] for t in range(8)}


def test_prefetched_jobs_go_back_in_order_on_stop(redis_url: str, redis_conn: redis.Redis) -> None:
    """simple: jobs a worker prefetched but did not start are handed back, in order, at stop()."""
    made = Pair(("redis", "simple"), redis_url)
    try:
        client = made.client()
        futures = [client.submit(n=i) for i in range(10)]
        first = threading.Event()
        release = threading.Event()

        def handler(job: Any) -> int:
            if job.data["n"] == 0:
                first.set()
                release.wait(10)
            return int(job.data["n"])

        worker = made.worker(handler, prefetch=16)
        assert first.wait(10)
        threading.Timer(0.2, release.set).start()
        assert worker.stop(timeout=5) is True
        assert futures[0].result(5) == 0
        assert redis_conn.llen(f"qe:{{{NS}}}:m:s:default") == 9
        order: list[int] = []
        made.worker(lambda job: order.append(job.data["n"]) or job.data["n"])
        assert [f.result(10) for f in futures] == list(range(10))
        assert order == list(range(1, 10))
    finally:
        made.close()


def test_close_fails_pending_futures(pair: Pair) -> None:
    """Closing a client fails the futures it can no longer resolve instead of leaving them hanging."""
    client = pair.client()
    future = client.submit(x=1, y=1)
    client.close()
    with pytest.raises(QueueEngineError, match="closed"):
        future.result(5)
    with pytest.raises(RuntimeError, match="closed"):
        client.submit(x=1, y=1)


def test_client_timeout_while_running_leaks_nothing(pair: Pair, redis_conn: redis.Redis) -> None:
    """A job that times out at the client while a worker runs it leaves no record behind, and
    the worker carries on with the next job."""
    client = pair.client(timeout=0.3)
    started, release = threading.Event(), threading.Event()

    def handler(job: Any) -> Any:
        if job.data.get("slow"):
            started.set()
            release.wait(10)
        return "done"

    worker = pair.worker(handler)
    slow = client.submit(slow=True)
    assert started.wait(10)
    with pytest.raises(JobTimeout) as info:
        slow.result(10)
    release.set()
    assert pair.client().submit(slow=False).result(10) == "done"   # no 0.3 s limit on a loaded machine
    deadline = time.monotonic() + 5
    while worker.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not [k for k in redis_conn.keys("*") if info.value.jid.encode() in k]
    assert client.pending == 0


def test_handler_may_stop_its_worker(pair: Pair) -> None:
    """A handler calling worker.stop() finishes its job and ends worker.run()."""
    client = pair.client()
    holder: dict[str, Any] = {}

    def handler(job: Any) -> str:
        holder["worker"].stop(timeout=5)
        return "last"

    worker = pair.worker(handler, start=False)
    holder["worker"] = worker
    future = client.submit()
    runner = threading.Thread(target=worker.run)
    runner.start()
    runner.join(10)
    assert not runner.is_alive()
    assert future.result(5) == "last"


def test_counts(pair: Pair) -> None:
    """client.counts() reports the queue's waiting jobs in every mode (and totals in simple)."""
    client = pair.client()
    futures = [client.submit(x=i, y=0) for i in range(3)]
    counts = client.counts()
    assert (counts["name"], counts["waiting"]) == ("default", 3)
    pair.worker(add)
    assert [f.result(10) for f in futures] == [0, 1, 2]
    deadline = time.monotonic() + 5
    while client.counts()["waiting"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.counts()["waiting"] == 0
    if pair.type == "redis" and pair.mode == "simple":
        assert client.counts()["done"] == 3


def test_imports_and_runs_without_django(redis_url: str, redis_conn: redis.Redis) -> None:
    """The modes import and work in a process where Django is not configured (nor imported)."""
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys
from queueengine.dispatch import JobManager
jm = JobManager()
worker = jm.worker("redis", uri={redis_url!r}, mode="simple", namespace="nodjango")
worker.jobs.each(lambda job: job.done(job.data["x"] * 2))
worker.start()
client = jm.client("redis", uri={redis_url!r}, mode="simple", namespace="nodjango")
assert client.submit(x=21).result(10) == 42
worker.stop(2); client.close()
assert "django" not in sys.modules, "django was imported"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cancelling_a_future_withdraws_the_job(pair: Pair) -> None:
    """future.cancel() before a worker took the job removes it: no worker ever sees it."""
    client = pair.client()
    future = client.submit(x=1, y=1)
    assert future.cancel()
    assert client.pending == 0
    assert client.counts()["waiting"] == 0
    worker = pair.worker(add)
    assert client.submit(x=2, y=2).result(10) == 4
    assert worker.processed == 1


def test_a_single_slot_is_freed_by_a_worker_timeout(pair: Pair) -> None:
    """max_concurrent_jobs=1: a job that outlives the worker's timeout fails with the reason and
    the next job still runs (Job::Async leaked the slot and stalled)."""
    client = pair.client()
    release = threading.Event()

    def handler(job: Any) -> Any:
        if job.data.get("hang"):
            release.wait(10)
            return None
        return "next"

    worker = pair.worker(handler, max_concurrent_jobs=1, timeout=1.5)
    stuck, after = client.submit(hang=True), client.submit(hang=False)
    with pytest.raises(JobFailed, match="timeout: the job ran longer than 1.5s"):
        stuck.result(10)
    assert after.result(10) == "next"
    assert worker.in_flight == 0
    release.set()


def test_priority_holds_for_jobs_arriving_while_busy(pair: Pair) -> None:
    """Jobs queued while the worker is busy are taken high queue first, whatever their order."""
    high, low = pair.client(queue="high"), pair.client(queue="low")
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def handler(job: Any) -> str:
        if job.data.get("block"):
            started.set()
            release.wait(10)
        order.append(f"{job.queue}{job.data.get('n', '')}")
        return "ok"

    pair.worker(handler, queues=["high", "low"], prefetch=1) if pair.type == "redis" else \
        pair.worker(handler, queues=["high", "low"])
    blocker = low.submit(block=True)
    assert started.wait(10)
    futures = [low.submit(n=i) for i in range(3)] + [high.submit(n=i) for i in range(3)]
    release.set()
    assert [f.result(10) for f in [blocker, *futures]] == ["ok"] * 7
    assert order == ["low", "high0", "high1", "high2", "low0", "low1", "low2"]


def test_stop_in_the_middle_of_a_stream_orphans_nothing(pair: Pair) -> None:
    """Stop a busy worker while jobs keep arriving: every job is done exactly once (by it or by
    the next worker) and every future resolves: nothing was lost in a fetch in flight."""
    client = pair.client()
    runs: dict[str, int] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def handler(job: Any) -> int:
        with lock:
            runs[job.id] = runs.get(job.id, 0) + 1
            if len(runs) >= 60:
                enough.set()
        return int(job.data["n"]) * 2

    first = pair.worker(handler, max_concurrent_jobs=2)
    futures: list[Any] = []

    def submit_all() -> None:
        for i in range(300):
            futures.append(client.submit(n=i))

    feeder = threading.Thread(target=submit_all)
    feeder.start()
    assert enough.wait(20)
    assert first.stop(timeout=5) is True
    pair.worker(handler, max_concurrent_jobs=2)
    feeder.join(20)
    assert [f.result(20) for f in futures] == [2 * i for i in range(300)]
    assert len(runs) == 300 and set(runs.values()) == {1}
    assert client.pending == 0


def test_heartbeat_option_sets_the_lease_heartbeats(redis_url: str, redis_conn: redis.Redis) -> None:
    """reliable: heartbeat=0.2 renews the lease every 0.2 s while a job runs (the default would
    wait a third of the 60 s lease); the handler finishes once it has seen three heartbeats."""
    made = Pair(("redis", "reliable"), redis_url)
    watcher = EngineClient.from_url(redis_url, namespace=NS)  # its subscriber SSUBSCRIBEs on a cluster
    pubsub = watcher.events.subscriber(watcher.events.channel)
    pubsub.connect()
    beats = threading.Event()

    def count_beats(jid: str) -> None:
        seen = 0
        deadline = time.monotonic() + 10
        while seen < 3 and time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=0.5)
            if msg and b'"heartbeat"' in msg[1] and jid.encode() in msg[1]:
                seen += 1
        if seen >= 3:
            beats.set()

    try:
        client = made.client()

        def handler(job: Any) -> str:
            count_beats(job.id)
            return "beaten" if beats.is_set() else "no heartbeats"

        made.worker(handler, heartbeat=0.2)
        assert client.submit().result(20) == "beaten"
    finally:
        pubsub.close()
        watcher.close()
        made.close()


@pytest.mark.parametrize("mode", ["simple", "recoverable", "reliable"])
def test_a_reconnecting_client_still_gets_its_results(mode: str, redis_url: str, redis_conn: redis.Redis) -> None:
    """The client's reply connection is killed: it resubscribes by itself; results of the durable
    modes published in the gap are read back, and later jobs are answered over pub/sub again."""
    made = Pair(("redis", mode), redis_url)
    try:
        client = made.client()
        durable = mode != "simple"  # simple stores no result: what is published in the gap is lost
        before = [client.submit(x=i, y=1) for i in range(5)] if durable else []
        assert redis_conn.client_kill_filter(_type="pubsub") >= 1
        made.worker(add)
        assert [f.result(10) for f in before] == ([i + 1 for i in range(5)] if durable else [])

        def subscribed() -> bool:
            if mode == "simple":
                return any(n for _, n in redis_conn.pubsub_numsub(f"qe:{{{NS}}}:m:reply:{client.id}"))
            return bool(redis_conn.pubsub_numpat())

        deadline = time.monotonic() + 10
        while not subscribed() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert subscribed()
        assert [client.submit(x=i, y=2).result(10) for i in range(5)] == [i + 2 for i in range(5)]
    finally:
        made.close()


def _python_block(path: str, heading: str) -> str:
    """The first ```python block after ``heading`` in a Markdown file of the checkout."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / path).read_text()
    after = text[text.index(heading):]
    start = after.index("```python\n") + len("```python\n")
    return after[start:after.index("```", start)]


@pytest.mark.parametrize(("path", "heading"), [("README.md", "## Delivery modes"), ("docs/modes.md", "## The tour")])
def test_the_documented_tour_runs(path: str, heading: str, redis_url: str, redis_conn: redis.Redis,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The Job::Async tour of the README and of docs/modes.md runs as written (on the test server)."""
    import textwrap

    code = _python_block(path, heading).replace("redis://127.0.0.1:6379/0", redis_url)
    assert "await client.asubmit" in code
    namespace: dict[str, Any] = {}
    exec("async def tour():\n" + textwrap.indent(code, "    ") + "\n    return locals()\n", namespace)
    found = run_async(namespace["tour"]())
    assert found["result"] == 3
    assert found["worker"].in_flight == 0 and found["client"].pending == 0
    if path == "README.md":
        assert capsys.readouterr().out.strip() == "Job result was 579"


def test_stop_waits_for_an_outcome_being_recorded(pair: Pair) -> None:
    """A job whose handler has returned but whose outcome is still on its way to the backend is
    not in flight any more, yet stop() must not disconnect under it (it did: the outcome then
    failed on a closed connection, 'Bad file descriptor', and the client's future never
    resolved). stop() returns only after the outcome is stored, and the future gets it."""
    client = pair.client()
    worker = pair.worker(lambda job: job.data["n"] + 1, start=False, max_concurrent_jobs=2)  # a pool thread
    real_finish = worker._backend.finish
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def gated_finish(*args: Any) -> None:
        entered.set()
        assert release.wait(60)
        real_finish(*args)
        order.append("recorded")

    worker._backend.finish = gated_finish
    worker.start()
    future = client.submit(n=41)
    assert entered.wait(20)
    stopper = threading.Thread(target=lambda: (worker.stop(timeout=60), order.append("stopped")))
    stopper.start()
    stopper.join(1.0)
    assert stopper.is_alive()          # waiting for the outcome, not disconnecting under it
    release.set()
    stopper.join(60)
    assert order == ["recorded", "stopped"]
    assert future.result(20) == 42
