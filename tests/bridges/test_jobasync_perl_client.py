"""The real Perl Job::Async::Redis 0.004 client against Python jobasync workers."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import redis

from queueengine.dispatch import Job, JobManager

from .perl_fixtures import PerlStack, perl, perl_uri, results, wait_for  # noqa: F401


def _doubling_worker(uri: str, seen: list[Any], **options: Any) -> Any:
    worker = JobManager().worker("redis", uri=uri, mode="jobasync", **options)

    def handler(job: Job) -> int:
        seen.append(job.data["x"])
        return int(job.data["x"]) * 2

    worker.jobs.each(handler)
    return worker.start()


@pytest.mark.parametrize("use_multi", [False, True])
def test_perl_client_gets_every_result_from_a_python_worker(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis, use_multi: bool,  # noqa: F811
) -> None:
    seen: list[Any] = []
    worker = _doubling_worker(perl_uri, seen, use_multi=use_multi, max_concurrent_jobs=4)
    try:
        run = perl.client(perl_uri, 300, *(["--use-multi"] if use_multi else []))
    finally:
        assert worker.stop(10)
    assert run.returncode == 0, run.stderr
    assert results(run.stdout) == {i: str(2 * i) for i in range(1, 301)}
    # numbers a Perl client submits arrive as strings (text_x), as in Job::Async
    assert sorted(seen, key=int) == [str(i) for i in range(1, 301)]
    # the Perl client DELs every hash it read; the Python worker LREMed every claim
    assert redis_conn.keys("job::*") == []
    assert redis_conn.llen("jobs::processing") == 0
    assert redis_conn.llen("jobs::pending") == 0


@pytest.mark.parametrize(("prefix", "queue", "key"), [("myapp", "urgent", "myapp::urgent"), ("", "work", "work")])
def test_custom_prefix_and_queue(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis, prefix: str, queue: str, key: str,  # noqa: F811
) -> None:
    client = perl.client_async(perl_uri, 20, prefix, queue)
    try:
        # the ids wait in <prefix>::<queue> (bare <queue> with an empty prefix) until a worker comes
        wait_for(lambda: redis_conn.llen(key) == 20, f"20 ids in {key}")
        seen: list[Any] = []
        worker = _doubling_worker(perl_uri, seen, prefix=prefix, queue=queue)
        try:
            out, err = client.communicate(timeout=60)
        finally:
            assert worker.stop(10)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err
    assert results(out) == {i: str(2 * i) for i in range(1, 21)}
    processing = f"{prefix}::processing" if prefix else "processing"
    assert redis_conn.llen(processing) == 0 and redis_conn.llen(key) == 0


def test_an_idle_worker_on_several_queues_wakes_for_a_lower_one(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis,  # noqa: F811
) -> None:
    seen: list[Any] = []
    worker = _doubling_worker(perl_uri, seen, queues=["high", "pending"], poll_interval=30)
    try:
        run = perl.client(perl_uri, 50)       # to jobs::pending, the worker's second queue
    finally:
        assert worker.stop(10)
    assert run.returncode == 0, run.stderr
    assert results(run.stdout) == {i: str(2 * i) for i in range(1, 51)}


NESTED = r"""
use strict; use warnings; use IO::Async::Loop; use Job::Async; use JSON::MaybeXS;
binmode STDOUT, ":encoding(UTF-8)";
my $uri = shift; my $loop = IO::Async::Loop->new; $loop->add(my $jm = Job::Async->new);
my $c = $jm->client(redis => { uri => $uri }); $c->start->get;
my $shared = [7, 8];
my $r = $c->submit(a => 5, name => "caf\x{e9}", list => [1, 'two', 3, undef, -1000, 2.5],
                   h => { rows => [{ k => 1 }, { k => 2 }], same => [$shared, $shared], deep => { x => { y => 'z' } } })->get;
print JSON::MaybeXS->new(canonical => 1)->encode($r), "\n";
$c->client->ping->get;
"""


def test_nested_perl_data_arrives_through_sereal(perl: PerlStack, perl_uri: str, redis_conn: redis.Redis) -> None:  # noqa: F811
    worker = JobManager().worker("redis", uri=perl_uri, mode="jobasync")
    worker.jobs.each(lambda job: job.data)      # echo the decoded parameters as a J result
    worker.start()
    try:
        run = perl.script(NESTED, perl_uri)
    finally:
        assert worker.stop(10)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "a": "5",                    # a plain value: text_a, a string
        "name": "café",
        "list": [1, "two", 3, None, -1000, 2.5],
        "h": {"rows": [{"k": 1}, {"k": 2}], "same": [[7, 8], [7, 8]], "deep": {"x": {"y": "z"}}},
    }


BLESSED = r"""
use strict; use warnings; use IO::Async::Loop; use Job::Async;
binmode STDOUT, ":encoding(UTF-8)";
my $uri = shift; my $loop = IO::Async::Loop->new; $loop->add(my $jm = Job::Async->new);
my $c = $jm->client(redis => { uri => $uri }); $c->start->get;
$c->submit(x => 1, obj => bless({ a => 1 }, 'My::Class'))->retain;
$c->submitter->ping->get;            # the HMSET and LPUSH went out before this returns
"""


def test_a_sereal_field_that_is_not_plain_data_fails_the_job_naming_it(
    perl: PerlStack, perl_uri: str, redis_conn: redis.Redis,  # noqa: F811
) -> None:
    ran = threading.Event()
    worker = JobManager().worker("redis", uri=perl_uri, mode="jobasync")
    worker.jobs.each(lambda job: ran.set())
    worker.start()
    try:
        run = perl.script(BLESSED, perl_uri)
        assert run.returncode == 0, run.stderr
        jid = wait_for(lambda: redis_conn.lindex("jobs::failed", 0), "the id in jobs::failed").decode()
    finally:
        assert worker.stop(10)
    error = json.loads(redis_conn.hget(f"job::{jid}", "_error") or b"{}")
    assert "'sereal_obj'" in error["message"] and "blessed object" in error["message"]
    assert redis_conn.hget(f"job::{jid}", "result") is None    # a Perl client is told nothing
    assert redis_conn.llen("jobs::processing") == 0
    assert not ran.is_set()
