"""The worker in this process (a thread), against real Redis time: async and thread concurrency,
strict priorities, idle cost, scheduled work, aborts, graceful stop, registration and housekeeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from queueengine import Client
from queueengine.worker import Worker
from queueengine.worker.handlers import resolve
from tests import jobfixtures
from tests.jobfixtures import blpop
from tests.queueengine.workerfixtures import burst, client, key, other, start_worker

__all__ = ["client", "other", "start_worker"]   # fixtures, imported for pytest


# ---------------------------------------------------------------------- concurrency
def test_async_handlers_run_concurrently_on_the_loop(client: Client) -> None:
    q = client.queues["q"]
    group = key()
    jids = [q.put("tests.jobfixtures.async_rendezvous", {"key": group, "n": 4}) for _ in range(4)]
    plain = q.put("tests.jobfixtures.async_add", {"x": 4, "y": 5})
    bad = q.put("tests.jobfixtures.async_boom", {})
    burst(client, ["q"], concurrency=6)
    assert [client.jobs[j].result for j in jids] == [4, 4, 4, 4], "all four were running at the same time"
    assert client.jobs[plain].result == 9
    assert client.jobs[bad].failure["group"] == "q-ValueError"


def test_sync_handlers_run_in_threads_up_to_concurrency(client: Client) -> None:
    q = client.queues["q"]
    group = key()
    jids = [q.put("tests.jobfixtures.thread_rendezvous", {"key": group, "n": 3}) for _ in range(6)]
    burst(client, ["q"], concurrency=3)
    assert all(client.jobs[j].state == "complete" for j in jids), "3 threads met at the barrier, twice"
    assert jobfixtures.peak(group) == 3, "never more than `concurrency` jobs at once"


def test_queues_are_worked_in_strict_priority_order(client: Client, redis_conn: redis.Redis) -> None:
    started = key()
    low = [client.queues["low"].put("tests.jobfixtures.record_start", {"started": started}) for _ in range(3)]
    high = [client.queues["high"].put("tests.jobfixtures.record_start", {"started": started}) for _ in range(3)]
    burst(client, ["high", "low"], concurrency=1)
    order = [entry.decode().split(":")[0] for entry in redis_conn.lrange(started, 0, -1)]
    assert order == high + low


# ---------------------------------------------------------------------- no polling
def count_client_commands(url: str, seconds: float) -> list[str]:
    """Commands clients send during ``seconds`` (MONITOR; commands run inside Lua scripts are not counted)."""
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        conn = redis.Redis.from_url(url, socket_timeout=None)
        with conn.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if done.is_set():
                    return
                if command.get("client_type") != "lua":
                    seen.append(str(command["command"]).split(" ")[0])

    ready = threading.Event()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(seconds)  # the measurement window
    done.set()
    redis.Redis.from_url(url).ping()  # lets the monitor read one more line and return
    thread.join(5)
    return seen


def test_idle_worker_wakes_within_milliseconds_and_costs_almost_nothing(
        client: Client, redis_url: str, redis_conn: redis.Redis, start_worker: Callable[..., Worker]) -> None:
    started = key()
    q = client.queues["q"]
    start_worker(["q"])
    q.put("tests.jobfixtures.record_start", {"started": started})
    blpop(redis_conn, started)  # the worker ran it and is now idle, blocked on the wake keys

    commands = count_client_commands(redis_url, 4.5)
    print(f"idle worker sent {len(commands)} commands in 4.5 s: {commands}")
    assert len(commands) <= 9, f"an idle worker sent {commands} in 4.5 s"

    put_at = time.time()
    q.put("tests.jobfixtures.record_start", {"started": started})
    jid_time = blpop(redis_conn, started)
    latency = float(jid_time.split(":")[1]) - put_at
    print(f"put -> start latency while idle: {latency * 1000:.1f} ms")
    assert latency < 2.5, "the job started at once, not at the next poll (max_wait is 5 s)"


def test_scheduled_job_starts_when_due_without_a_put(client: Client, redis_conn: redis.Redis,
                                                      start_worker: Callable[..., Worker]) -> None:
    started = key()
    start_worker(["q"], max_wait=5.0)
    put_at = time.time()
    client.queues["q"].put("tests.jobfixtures.record_start", {"started": started}, delay=0.5)
    ran_at = float(blpop(redis_conn, started).split(":")[1])
    assert 0.45 <= ran_at - put_at < 4.5, "woken when the job was due, not by the 5 s cap"


# ---------------------------------------------------------------------- aborts
def test_lost_lease_by_move_aborts_the_job_and_it_is_not_completed(
        client: Client, other: Client, redis_conn: redis.Redis, start_worker: Callable[..., Worker]) -> None:
    started, aborted = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.until_aborted", {"started": started, "aborted": aborted})
    start_worker(["q"])
    blpop(redis_conn, started)
    other.jobs[jid].move("elsewhere")
    assert blpop(redis_conn, aborted) == "JobAborted:True"
    job = other.jobs[jid]
    assert job.state == "waiting" and job.queue_name == "elsewhere", "the aborted job was not completed"


def test_cancel_aborts_a_running_job(client: Client, other: Client, redis_conn: redis.Redis,
                                     start_worker: Callable[..., Worker]) -> None:
    started, aborted = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.until_aborted", {"started": started, "aborted": aborted})
    start_worker(["q"])
    blpop(redis_conn, started)
    other.jobs[jid].cancel()
    assert blpop(redis_conn, aborted).startswith("JobAborted")
    assert jid not in other.jobs


def test_timeout_aborts_an_async_job_by_cancelling_its_task(
        client: Client, other: Client, redis_conn: redis.Redis, start_worker: Callable[..., Worker]) -> None:
    started, aborted = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.async_until_aborted", {"started": started, "aborted": aborted})
    start_worker(["q"], shutdown_timeout=1)
    blpop(redis_conn, started)
    other.jobs[jid].timeout()
    assert blpop(redis_conn, aborted) == "CancelledError"
    assert other.jobs[jid].state != "complete"
    # the timeout woke the worker: the job is leased again at once, without spending a retry
    blpop(redis_conn, started)
    job = other.jobs[jid]
    assert job.state == "running" and job.retries_left == job.original_retries


def test_background_heartbeats_keep_a_long_job_alive(client: Client, other: Client, redis_conn: redis.Redis,
                                                    start_worker: Callable[..., Worker]) -> None:
    client.config["heartbeat"] = 1
    client.config["grace-period"] = 0
    started = key()
    jid = client.queues["q"].put("tests.jobfixtures.sleep_then_finish", {"started": started, "seconds": 2.5},
                                 reply=True)
    start_worker(["q"])
    blpop(redis_conn, started)
    deadline = time.monotonic() + 10
    while client.jobs[jid].state == "running" and time.monotonic() < deadline:
        # a competing worker probes all along: a lapsed lease (grace 0) would hand it the job
        assert other.queues["q"].pop() is None, "the lease lapsed while the job was running"
        time.sleep(0.05)
    assert client.wait(jid, timeout=10) == "slept"
    assert not [h for h in client.jobs[jid].history if h["what"] == "timed-out"]


# ---------------------------------------------------------------------- stopping
def test_stop_finishes_running_jobs(client: Client, redis_conn: redis.Redis) -> None:
    started = key()
    jid = client.queues["q"].put("tests.jobfixtures.sleep_then_finish", {"started": started, "seconds": 0.3})
    worker = Worker(client, ["q"], install_signals=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    blpop(redis_conn, started)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert client.jobs[jid].state == "complete"


def test_stop_hands_back_jobs_that_outlive_the_shutdown_timeout(client: Client, redis_conn: redis.Redis) -> None:
    started, release = key(), key()
    jid = client.queues["q"].put("tests.jobfixtures.signal_and_wait",
                                 {"started": started, "release": release}, retries=2)
    worker = Worker(client, ["q"], shutdown_timeout=0.2, install_signals=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    blpop(redis_conn, started)
    worker.stop()
    thread.join(10)
    assert not thread.is_alive()
    job = client.jobs[jid]
    assert job.state == "waiting" and job.queue_name == "q", "handed back to its queue"
    assert job.retries_left == 2, "no retry was burnt"
    redis_conn.rpush(release, "go")  # let the orphaned thread end
    assert client.jobs[jid].state == "waiting", "the abandoned run never completes the job"


def test_worker_registers_with_info_and_deregisters(client: Client, redis_conn: redis.Redis,
                                                   start_worker: Callable[..., Worker]) -> None:
    started = key()
    worker = start_worker(["high", "low"], concurrency=3, name="w-info")
    client.queues["high"].put("tests.jobfixtures.record_start", {"started": started})
    blpop(redis_conn, started)
    info = client.workers["w-info"]["info"]
    assert info["queues"] == ["high", "low"] and info["concurrency"] == 3
    assert {"host", "pid", "started", "mode"} <= set(info)
    worker.stop()
    deadline = time.monotonic() + 10
    while any(w["name"] == "w-info" for w in client.workers.counts) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(w["name"] == "w-info" for w in client.workers.counts)


def test_bad_worker_arguments(client: Client) -> None:
    with pytest.raises(ValueError, match="queues"):
        Worker(client, [])
    with pytest.raises(ValueError, match="concurrency"):
        Worker(client, ["q"], concurrency=0)
    with pytest.raises(ValueError, match="twice"):
        Worker(client, ["q", "q"])
    with pytest.raises(ValueError, match="mode"):
        Worker(client, ["q"], mode="bogus")


def test_prefetched_jobs_are_handed_back_at_once_on_stop(client: Client, redis_conn: redis.Redis) -> None:
    started, release, others = key(), key(), key()
    first = client.queues["q"].put("tests.jobfixtures.signal_and_wait", {"started": started, "release": release},
                                   priority=10)
    rest = [client.queues["q"].put("tests.jobfixtures.record_start", {"started": others}) for _ in range(3)]
    worker = Worker(client, ["q"], concurrency=1, prefetch=3, install_signals=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    blpop(redis_conn, started)
    assert all(client.jobs[j].state == "running" for j in rest), "popped with the first job (prefetch 3)"
    worker.stop()
    deadline = time.monotonic() + 10
    while any(client.jobs[j].state != "waiting" for j in rest) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(client.jobs[j].state == "waiting" for j in rest), "handed back before the running job ended"
    redis_conn.rpush(release, "go")
    thread.join(10)
    assert not thread.is_alive()
    assert client.jobs[first].state == "complete" and client.jobs[first].result == "released"
    assert redis_conn.llen(others) == 0, "no prefetched job was started after the stop"
    assert all(client.jobs[j].retries_left == 5 for j in rest)


def test_a_simple_or_recoverable_namespace_is_refused(client: Client, redis_conn: redis.Redis) -> None:
    redis_conn.set(client.keys.key("mode"), "recoverable")
    q = client.queues["q"]
    q.put("tests.jobfixtures.noop", {})
    with pytest.raises(ValueError, match="--mode recoverable"):
        Worker(client, ["q"], burst=True, install_signals=False).run()
    assert q.counts["waiting"] == 1, "nothing was popped"


def test_bad_prefetch(client: Client) -> None:
    with pytest.raises(ValueError, match="prefetch"):
        Worker(client, ["q"], prefetch=-1)


def test_short_jobs_are_popped_and_completed_in_batches(client: Client, redis_conn: redis.Redis) -> None:
    """One worker drains short jobs with few Lua calls: pops of many jobs, and completions that ride
    on the next pop (a count of calls, not a timing: the speed itself is measured in bench/)."""
    q = client.queues["q"]
    for _ in range(5):
        q.put_many([("tests.jobfixtures.noop", {}) for _ in range(1000)])
    redis_conn.config_resetstat()
    worker = burst(client, ["q"], concurrency=8)
    stats = redis_conn.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))
    print(f"drained {worker.processed} no-op jobs with {calls} Lua calls")
    assert worker.processed == 5000
    assert client.queues["q"].counts["waiting"] == 0
    assert len(client.jobs.complete(count=6000)) == 5000
    assert calls < 5000 / 4, f"{calls} Lua calls for 5000 jobs: jobs are not batched"


def test_worker_runs_housekeeping_and_prunes_dead_workers(client: Client, other: Client, redis_conn: redis.Redis,
                                                         start_worker: Callable[..., Worker]) -> None:
    workers_key = client.keys.key("workers")  # read raw: reading client.workers would prune by itself
    client.config["max-worker-age"] = 1
    other.workers.register("ghost", {"host": "gone"})
    assert redis_conn.zscore(workers_key, "ghost") is not None
    time.sleep(1.2)  # the ghost's last beat ages past max-worker-age
    start_worker(["q"], housekeep_interval=0.1, beat_interval=0.2, name="keeper")
    deadline = time.monotonic() + 10
    while redis_conn.zscore(workers_key, "ghost") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_conn.zscore(workers_key, "ghost") is None, "pruned by the worker's housekeeping"
    assert redis_conn.zscore(workers_key, "keeper") is not None
    with pytest.raises(ValueError, match="housekeep_interval"):
        Worker(client, ["q"], housekeep_interval=0)


def test_async_method_and_async_retry(client: Client, start_worker: Callable[..., Worker]) -> None:
    a = client.queues["q"].put("tests.jobfixtures.AsyncReport", {}, reply=True)
    b = client.queues["q"].put("tests.jobfixtures.async_flaky", {"counter": key()}, reply=True)
    start_worker(["q"])
    assert client.wait(a, timeout=10) == "async method"
    assert client.wait(b, timeout=10) == "async ok after 2"
    assert client.jobs[b].retries_left == 4


def test_a_paused_queue_with_due_work_does_not_make_the_worker_spin(
        client: Client, redis_url: str, redis_conn: redis.Redis, start_worker: Callable[..., Worker]) -> None:
    started = key()
    q = client.queues["q"]
    q.pause()
    jid = q.put("tests.jobfixtures.record_start", {"started": started})
    q.put("tests.jobfixtures.record_start", {"started": started}, delay=0.1)
    start_worker(["q"])
    commands = count_client_commands(redis_url, 3.0)
    print(f"worker facing a paused queue sent {len(commands)} commands in 3 s: {commands}")
    # it backs off (0.02 s, 0.04 s, ... up to its 4 s cap); a spinning worker would send thousands
    assert len(commands) <= 40, f"the worker spins on a paused queue: {len(commands)} commands in 3 s"
    q.unpause()
    assert blpop(redis_conn, started).startswith(jid) or client.jobs[jid].state in ("running", "complete")


def test_a_queue_named_like_a_builtin_attribute_still_uses_process() -> None:
    handler = resolve("tests.jobfixtures.Resize", "mro")
    assert handler.call is not None and handler.call(None) == "process"
    assert resolve("tests.jobfixtures.Resize", "__init__").call(None) == "process"  # type: ignore[misc]


def test_a_second_live_worker_with_the_same_name_is_warned_about(
        client: Client, other: Client, caplog: pytest.LogCaptureFixture, start_worker: Callable[..., Worker]) -> None:
    other.workers.register("twin", {"host": "elsewhere", "pid": 1})
    with caplog.at_level("WARNING", logger="queueengine.worker"):
        worker = Worker(client, ["q"], name="twin", burst=True, install_signals=False)
        worker.run()
    assert "another live worker is named 'twin'" in caplog.text
