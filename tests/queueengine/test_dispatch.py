"""queueengine.dispatch: the Job::Async API, its fixed bugs and its errors, over every backend."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queueengine.client import Client as EngineClient
from queueengine.dispatch import JobFailed, JobManager, JobTimeout, ModeMismatch
from queueengine.dispatch import memory as memory_backend
from queueengine.dispatch.base import new_id
from queueengine.exceptions import InvalidArgument, QueueEngineError

KINDS = [("memory", "simple"), ("redis", "simple"), ("redis", "recoverable"), ("redis", "reliable")]
IDS = ["memory", "simple", "recoverable", "reliable"]
NS = "test"


class Pair:
    """Builds clients and workers of one kind and tears them all down."""

    def __init__(self, kind: tuple[str, str], url: str) -> None:
        self.type, self.mode = kind
        self.url = url
        self.made: list[Any] = []

    def _cfg(self, cfg: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {"mode": self.mode, "namespace": NS}
        if self.type == "redis":
            base["uri"] = self.url
        return {**base, **cfg}

    def client(self, **cfg: Any) -> Any:
        client = JobManager().client(self.type, **self._cfg(cfg))
        self.made.append(client)
        return client

    def worker(self, handler: Any = None, start: bool = True, **cfg: Any) -> Any:
        worker = JobManager().worker(self.type, **self._cfg(cfg))
        self.made.append(worker)
        if handler is not None:
            worker.jobs.each(handler)
            if start:
                worker.start()
        return worker

    def close(self) -> None:
        for thing in reversed(self.made):
            if hasattr(thing, "stop"):
                thing.stop(timeout=1)
            else:
                thing.close()


@pytest.fixture(params=KINDS, ids=IDS)
def pair(request: pytest.FixtureRequest, redis_url: str, redis_conn: redis.Redis) -> Iterator[Pair]:
    memory_backend.reset()
    made = Pair(request.param, redis_url)
    yield made
    made.close()
    memory_backend.reset()


def add(job: Any) -> None:
    job.done(job.data["x"] + job.data["y"])


def run_async(coro: Any) -> Any:
    """asyncio.run(coro) on a thread of its own, so it works even while another test's event
    loop (e.g. a session-wide Playwright) is running in the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)


def test_submit_is_a_future_resolved_by_a_worker(pair: Pair) -> None:
    """submit() returns a Future; nothing runs before the worker starts; then it resolves."""
    client = pair.client()
    future = client.submit(x=1, y=2)
    worker = pair.worker(add, start=False)
    assert not future.done()
    worker.start()
    assert future.result(10) == 3
    assert client.pending == 0


def test_asubmit(pair: Pair) -> None:
    """await client.asubmit(...) gives the result."""
    client = pair.client()
    pair.worker(add)

    async def go() -> list[int]:
        return list(await asyncio.gather(*(client.asubmit(x=i, y=1) for i in range(20))))

    assert run_async(go()) == [i + 1 for i in range(20)]


def test_handler_styles(pair: Pair) -> None:
    """A handler may return the result, return a coroutine, or call done() later from elsewhere."""
    client = pair.client()

    def handler(job: Any) -> Any:
        kind = job.data["kind"]
        if kind == "return":
            return 41 + 1
        if kind == "async":

            async def later() -> str:
                await asyncio.sleep(0.01)
                return "async"

            return later()
        threading.Timer(0.05, job.done, args=["callback"]).start()
        return None

    pair.worker(handler, max_concurrent_jobs=2)
    futures = [client.submit(kind=k) for k in ("return", "async", "callback")]
    assert [f.result(10) for f in futures] == [42, "async", "callback"]


def test_failures_reach_the_client_and_free_the_slot(pair: Pair) -> None:
    """fail(reason), a raising handler and a worker timeout fail the future with the reason;
    the single concurrency slot is freed each time, so the next job still runs."""
    client = pair.client()
    release = threading.Event()

    def handler(job: Any) -> Any:
        what = job.data["what"]
        if what == "fail":
            job.fail("out of cheese")
        elif what == "raise":
            raise ValueError("bad input 7")
        elif what == "hang":
            release.wait(10)
        else:
            job.done("fine")

    worker = pair.worker(handler, max_concurrent_jobs=2, timeout=1.5)  # the quick jobs need far less
    with pytest.raises(JobFailed, match="out of cheese"):
        client.submit(what="fail").result(10)
    with pytest.raises(JobFailed, match="ValueError: bad input 7") as info:
        client.submit(what="raise").result(10)
    assert info.value.group == "default-ValueError"
    hangs = [client.submit(what="hang") for _ in range(2)]
    for hang in hangs:
        with pytest.raises(JobFailed, match="timeout") as info:
            hang.result(10)
        assert info.value.group == "default-timeout"
    assert client.submit(what="ok").result(10) == "fine"
    assert worker.in_flight == 0
    release.set()


def test_client_timeout_leaks_nothing(pair: Pair, redis_conn: redis.Redis) -> None:
    """A client-side timeout fails the future and withdraws the job: no pending entry, no key."""
    client = pair.client(timeout=0.2)
    before = set(redis_conn.keys(f"qe:{{{NS}}}:*"))
    future = client.submit(x=1, y=1)
    with pytest.raises(JobTimeout):
        future.result(10)
    exc = future.exception()
    assert isinstance(exc, TimeoutError)
    assert client.pending == 0
    if pair.mode == "simple":  # nothing at all is left
        assert set(redis_conn.keys(f"qe:{{{NS}}}:*")) == before
    else:  # engine jobs: the job and its history are gone, the queue is empty
        assert not [k for k in redis_conn.keys('*') if exc.jid.encode() in k]
        assert b"" not in redis_conn.zrange(f"qe:{{{NS}}}:q:default:work", 0, -1)
        assert redis_conn.zcard(f"qe:{{{NS}}}:q:default:work") == 0
    worker = pair.worker(add)
    # the withdrawn job is never run: a job queued after it is the only one the worker takes
    assert pair.client().submit(x=1, y=1).result(10) == 2
    assert worker.processed == 1


def test_strict_priority_over_several_queues(pair: Pair) -> None:
    """Jobs of the first queue all run before any job of the second one."""
    low = pair.client(queue="low")
    high = pair.client(queue="high")
    lows = [low.submit(n=i) for i in range(5)]
    highs = [high.submit(n=i) for i in range(5)]
    order: list[str] = []
    pair.worker(lambda job: order.append(job.queue) or job.done(job.data["n"]), queues=["high", "low"])
    assert [f.result(10) for f in highs + lows] == list(range(5)) * 2
    assert order == ["high"] * 5 + ["low"] * 5


def test_stop_finishes_in_flight_jobs(pair: Pair) -> None:
    """stop(timeout) waits for running jobs and returns True."""
    client = pair.client()
    started = threading.Event()

    def slow(job: Any) -> None:
        started.set()
        time.sleep(0.2)
        job.done("finished")

    worker = pair.worker(slow)
    future = client.submit()
    assert started.wait(10)
    assert worker.stop(timeout=5) is True
    assert future.result(5) == "finished"


def test_stop_hands_back_unfinished_jobs(pair: Pair) -> None:
    """A job still running when stop's timeout ends is handed back and done by another worker."""
    client = pair.client()
    started = threading.Event()
    worker = pair.worker(lambda job: started.set(), max_concurrent_jobs=1)  # never finishes
    future = client.submit(x=2, y=3)
    assert started.wait(10)
    assert worker.stop(timeout=0.1) is False
    pair.worker(add)
    assert future.result(10) == 5


def test_stop_while_fetching_orphans_nothing(pair: Pair) -> None:
    """stop() on an idle worker returns at once; a job queued afterwards is not lost."""
    client = pair.client()
    worker = pair.worker(add, poll_interval=60)
    time.sleep(0.05)  # let it enter its blocking fetch (stopping earlier proves less, never fails)
    started = time.monotonic()
    assert worker.stop(timeout=5) is True
    assert time.monotonic() - started < 20  # far under the 60 s poll: the fetch was unblocked
    future = client.submit(x=1, y=1)
    pair.worker(add)
    assert future.result(10) == 2


def test_mode_mismatch_names_both_modes(pair: Pair, redis_conn: redis.Redis) -> None:
    """A client or worker of another mode fails at start, naming both modes; nothing written."""
    pair.client()
    other = "reliable" if pair.mode != "reliable" else "simple"
    before = {k: redis_conn.dump(k) for k in redis_conn.keys('*')}
    kind = {"uri": pair.url} if pair.type == "redis" else {}
    with pytest.raises(ModeMismatch, match=rf"'{pair.mode}'.*'{other}'"):
        JobManager().client(pair.type, mode=other, namespace=NS, **kind)
    with pytest.raises(ModeMismatch, match=rf"'{pair.mode}'.*'{other}'"):
        JobManager().worker(pair.type, mode=other, namespace=NS, **kind)
    assert {k: redis_conn.dump(k) for k in redis_conn.keys('*')} == before
    if pair.type == "redis":
        assert redis_conn.get(f"qe:{{{NS}}}:mode") == pair.mode.encode()


def test_non_json_data_is_refused(pair: Pair, redis_conn: redis.Redis) -> None:
    """Non-JSON data raises InvalidArgument naming the argument; nothing is written."""
    client = pair.client()
    before = {k: redis_conn.dump(k) for k in redis_conn.keys('*')}
    with pytest.raises(InvalidArgument, match=r"data\.when"):
        client.submit(x=1, when=object())
    assert {k: redis_conn.dump(k) for k in redis_conn.keys('*')} == before
    assert client.pending == 0


def test_bad_configuration_changes_nothing(redis_url: str, redis_conn: redis.Redis) -> None:
    """Unknown type, unknown option, bad uri, bad mode, bad numbers, unreachable Redis: a clear
    error naming the culprit, and the keyspace (with a namespace already in use) is unchanged."""
    existing = JobManager().client("redis", uri=redis_url, mode="reliable", namespace=NS)
    existing.submit(x=1, y=2)
    existing.close()
    before = {k: redis_conn.dump(k) for k in redis_conn.keys("*")}
    assert before
    jm = JobManager()
    bad: list[tuple[str, Any, dict[str, Any]]] = [
        ("'rabbit'", jm.client, {"type": "rabbit"}),
        ("'rabbit'", jm.worker, {"type": "rabbit"}),
        ("'colour'", jm.client, {"colour": "red"}),
        ("'colour'", jm.worker, {"colour": "red"}),
        ("'uri'", jm.client, {"uri": "http://example.com/"}),
        ("'uri'", jm.worker, {"uri": "redis://127.0.0.1:notaport/0"}),
        ("'uri'", jm.client, {"uri": 6379}),
        ("'mode'", jm.worker, {"mode": "fast"}),
        ("'mode'", jm.client, {"mode": None}),
        ("'max_concurrent_jobs'", jm.worker, {"max_concurrent_jobs": 0}),
        ("'max_concurrent_jobs'", jm.worker, {"max_concurrent_jobs": 1.5}),
        ("'timeout'", jm.client, {"timeout": -1}),
        ("'timeout'", jm.worker, {"timeout": "10"}),
        ("'heartbeat'", jm.worker, {"heartbeat": 0}),
        ("'queues'", jm.worker, {"queues": "high"}),
        ("'queues'", jm.worker, {"queues": []}),
        ("twice", jm.worker, {"queues": ["a", "a"]}),
        ("'queue'", jm.client, {"queue": "has space"}),
        ("'namespace'", jm.client, {"namespace": "a{b}"}),
        ("'prefix' and 'namespace'", jm.client, {"prefix": "a", "namespace": "b"}),
    ]
    for expected, factory, cfg in bad:
        kind = cfg.pop("type", "redis")
        options = {"uri": redis_url, "namespace": NS, "mode": "reliable", **cfg}
        if "prefix" in cfg:
            options.pop("namespace")
            options.update(cfg)
        with pytest.raises(InvalidArgument, match=expected):
            factory(kind, **options)
    with pytest.raises(QueueEngineError, match="127.0.0.1:6/0"):
        jm.client("redis", uri="redis://127.0.0.1:6/0")
    with pytest.raises(QueueEngineError, match="127.0.0.1:6/0"):
        jm.worker("redis", uri="redis://127.0.0.1:6/0")
    assert {k: redis_conn.dump(k) for k in redis_conn.keys("*")} == before


def test_prefix_is_another_name_for_the_namespace(pair: Pair, redis_conn: redis.Redis) -> None:
    """prefix="shop" puts every key under qe:{shop}: and pairs with namespace="shop"."""
    base = {"uri": pair.url} if pair.type == "redis" else {}
    client = JobManager().client(pair.type, mode=pair.mode, prefix="shop", **base)
    worker = JobManager().worker(pair.type, mode=pair.mode, namespace="shop", **base)
    pair.made += [client, worker]
    worker.jobs.each(add)
    worker.start()
    assert client.submit(x=2, y=5).result(10) == 7
    if pair.type == "redis":
        keys = redis_conn.keys("*")
        assert keys and all(k.startswith(b"qe:{shop}:") for k in keys)
        assert redis_conn.get("qe:{shop}:mode") == pair.mode.encode()


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
