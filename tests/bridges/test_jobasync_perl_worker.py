"""Python jobasync clients against the real Perl Job::Async::Redis 0.004 worker."""

from __future__ import annotations

import threading
from concurrent.futures import Future, wait
from typing import Any

import pytest
import redis

from queueengine.dispatch import Job, JobManager

from .perl_fixtures import PerlStack, perl, perl_uri  # noqa: F401


@pytest.mark.parametrize("use_multi", [False, True])
def test_python_client_gets_every_result_from_a_perl_worker(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis, use_multi: bool,  # noqa: F811
) -> None:
    worker = perl.worker(perl_uri, *(["--use-multi"] if use_multi else []))
    client = JobManager().client("redis", uri=perl_uri, mode="jobasync", use_multi=use_multi, timeout=60)
    try:
        futures = {i: client.submit(x=i) for i in range(1, 201)}
        got = {i: f.result(60) for i, f in futures.items()}
        half = client.submit(x=1.25).result(60)
        # every kind of field a Python client writes is one a Perl worker decodes (json_, _qe)
        mixed = client.submit(x=3, l=[1, {"a": 2}], s="é", yes=True, none=None).result(60)
    finally:
        client.close()
        assert worker.stop() == 0
    # a Perl worker's scalar results are text ('T' tag): numbers come back as strings
    assert got == {i: str(2 * i) for i in range(1, 201)}
    assert half == "2.5" and mixed == "6"
    assert redis_conn.keys("job::*") == []          # the Python client DELs what it read
    assert redis_conn.llen("jobs::processing") == 0


def test_custom_prefix_and_queue_with_a_perl_worker(perl: PerlStack, perl_uri: str, redis_conn: redis.Redis) -> None:  # noqa: F811
    worker = perl.worker(perl_uri, "billing", "invoices")
    client = JobManager().client("redis", uri=perl_uri, mode="jobasync", prefix="billing", queue="invoices",
                                 timeout=60)
    try:
        assert [client.submit(x=i).result(60) for i in range(5)] == ["0", "2", "4", "6", "8"]
    finally:
        client.close()
        assert worker.stop() == 0
    assert redis_conn.llen("billing::processing") == 0 and redis_conn.llen("billing::invoices") == 0
    assert redis_conn.exists("jobs::pending", "jobs::processing") == 0


def test_perl_and_python_workers_share_one_queue(perl: PerlStack, perl_uri: str, redis_conn: redis.Redis) -> None:  # noqa: F811
    n = 120
    perl_worker = perl.worker(perl_uri)
    client = JobManager().client("redis", uri=perl_uri, mode="jobasync", timeout=60)
    futures: dict[Future[Any], int] = {}
    by_python: list[int] = []
    perl_did_one = threading.Event()

    def handler(job: Job) -> int:
        by_python.append(job.data["x"])
        if len(by_python) == 1:
            # hold the first job until the Perl worker finished another: both must take part
            perl_did_one.wait(30)
        return int(job.data["x"]) * 2

    python_worker = JobManager().worker("redis", uri=perl_uri, mode="jobasync")
    python_worker.jobs.each(handler)
    python_worker.start()
    try:
        for i in range(1, n + 1):
            future = client.submit(x=i)
            future.add_done_callback(lambda f: isinstance(f.result(), str) and perl_did_one.set())
            futures[future] = i
        done, late = wait(futures, timeout=60)
        assert not late
    finally:
        client.close()
        assert python_worker.stop(10)
        assert perl_worker.stop() == 0
    answers = {futures[f]: f.result() for f in done}
    # from a Perl worker a number comes back as text, from a Python worker as a number
    assert {i: int(v) for i, v in answers.items()} == {i: 2 * i for i in range(1, n + 1)}
    from_python = sorted(i for i, v in answers.items() if isinstance(v, int))
    assert from_python == sorted(by_python)
    assert 0 < len(from_python) < n
    assert redis_conn.keys("job::*") == [] and redis_conn.llen("jobs::processing") == 0
