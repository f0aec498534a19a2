"""Bad input: a specific error naming the argument, and the keyspace untouched."""

from __future__ import annotations

import math

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueengine import (
    Client,
    InvalidArgument,
    JobNotFound,
    LostLease,
    QueueEngineError,
    WrongState,
)
from queueengine.store.scripts import library

from .conftest import snapshot


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"data": {1, 2}}, "data"),
        ({"data": object()}, "data"),
        ({"klass": ""}, "klass"),
        ({"delay": -1}, "delay"),
        ({"delay": math.nan}, "delay"),
        ({"delay": "5"}, "delay"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"priority": 10**6}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"tags": "abc"}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"depends": "abc"}, "depends"),
        ({"jid": ""}, "jid"),
        ({"jid": "a{b}"}, "jid"),
        ({"jid": "x", "depends": ["x"]}, "depends"),
        ({"unique": "yes"}, "unique"),
        ({"throttles": [None]}, "throttles"),
        ({"backoff": {"base": -1}}, "backoff"),
        ({"backoff": {"factor": 0.5}}, "backoff"),
        ({"backoff": {"bogus": 1}}, "backoff"),
    ],
)
def test_put_bad_arguments(engine: Client, q, unchanged, kwargs: dict, word: str) -> None:
    q.put("k", {}, jid="existing")
    args = {"klass": "k", "data": {}} | kwargs
    err = unchanged(InvalidArgument, q.put, **args)
    assert word in str(err)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["w", "q", "j", "k", "{bad", 0, 0, "[]", 5, "[]", 0, "[]", 0, ""], "data"),
        (["w", "q", "j", "", "{}", 0, 0, "[]", 5, "[]", 0, "[]", 0, ""], "klass"),
        (["w", "q", "j", "k", "{}", -1, 0, "[]", 5, "[]", 0, "[]", 0, ""], "delay"),
        (["w", "q", "j", "k", "{}", 0, 0.5, "[]", 5, "[]", 0, "[]", 0, ""], "priority"),
        (["w", "q", "j", "k", "{}", 0, 0, "{}x", 5, "[]", 0, "[]", 0, ""], "tags"),
        (["w", "q", "j", "k", "{}", 0, 0, '{"a":1}', 5, "[]", 0, "[]", 0, ""], "tags"),
        (["w", "q", "j", "k", "{}", 0, 0, "[]", -2, "[]", 0, "[]", 0, ""], "retries"),
        (["w", "q", "j", "k", "{}", 0, 0, "[]", 5, "[1]", 0, "[]", 0, ""], "depends"),
        (["w", "q", "j", "k", "{}", 0, 0, "[]", 5, "[]", 7, "[]", 0, ""], "unique"),
        (["w", "q", "j", "k", "{}", 0, 0, "[]", 5, "[]", 0, "[]", 0, "{}x"], "backoff"),
        (["w", "", "j", "k", "{}", 0, 0, "[]", 5, "[]", 0, "[]", 0, ""], "queue"),
    ],
)
def test_lua_put_checks(engine: Client, unchanged, args: list, word: str) -> None:
    err = unchanged(InvalidArgument, engine, "put", *args)
    assert word in str(err)
    assert err.location and err.location.endswith(".lua:" + err.location.rsplit(":", 1)[1])


def test_lua_level_errors(engine: Client, unchanged, redis_conn) -> None:
    unchanged(InvalidArgument, engine, "nope")
    lib = library()
    with pytest.raises(QueueEngineError):
        lib.call(redis_conn, engine.prefix, "get", "not-a-number", "x")
    # no key (so no namespace prefix): refused
    with pytest.raises(redis.ResponseError, match="prefix"):
        if lib.mode(redis_conn) == "function":
            redis_conn.fcall(lib.function_name, 0, "get", "1", "x")
        else:
            redis_conn.evalsha(lib.sha, 0, "get", "1", "x")


def test_state_errors(engine: Client, q, other: Client, unchanged) -> None:
    jid = q.put("k", {})
    waiting = engine.jobs[jid]
    unchanged(WrongState, waiting.fail, "g", "m")
    unchanged(WrongState, waiting.retry)
    unchanged(WrongState, waiting.heartbeat)
    unchanged(WrongState, waiting.timeout)
    job = q.pop()
    theirs = other.jobs[jid]
    unchanged(LostLease, theirs.fail, "g", "m")
    unchanged(LostLease, theirs.retry)
    unchanged(LostLease, theirs.complete)
    unchanged(InvalidArgument, job.fail, "", "m")
    unchanged(InvalidArgument, job.fail, "g", 5)
    unchanged(InvalidArgument, job.retry, -1)
    unchanged(InvalidArgument, job.complete, {1})
    unchanged(JobNotFound, engine, "heartbeat", "ghost", "worker", "")
    unchanged(JobNotFound, engine, "priority", "ghost", 1)
    unchanged(JobNotFound, engine, "log", "ghost", "msg", "")
    unchanged(InvalidArgument, engine, "log", jid, "msg", "[1,2")
    unchanged(InvalidArgument, engine, "jobs", "bogus", "testing", 0, 10)
    unchanged(InvalidArgument, engine, "depends", jid, "sideways", "x")
    unchanged(InvalidArgument, engine, "pop", "worker", -1, "testing")
    unchanged(InvalidArgument, engine, "recur.update", "ghost-none", "priority")


def test_timeout_all_or_nothing(engine: Client, q, unchanged) -> None:
    q.put("k", {}, jid="a")
    q.put("k", {}, jid="b")
    q.pop()
    unchanged(WrongState, engine, "timeout", "a", "b")


def test_put_many_rejects_whole_batch(engine: Client, q, unchanged) -> None:
    unchanged(InvalidArgument, q.put_many, [("k", {}), ("k", {1})])
    unchanged(InvalidArgument, engine, "put_many", "w", "q", 2,
              "a", "k", "{}", 0, 0, "[]", 5, "[]", 0, "[]", 0, "",
              "b", "k", "{bad", 0, 0, "[]", 5, "[]", 0, "[]", 0, "")


def test_error_location_is_a_lua_file(engine: Client) -> None:
    with pytest.raises(JobNotFound) as info:
        engine("heartbeat", "ghost", "w", "")
    assert info.value.location is not None and info.value.location.startswith("job.lua:")
    assert "user_script" not in str(info.value)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**7, 10**7), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.text(max_size=3), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delay=scalars, priority=scalars, retries=scalars, tags=scalars, depends=scalars)
def test_put_fuzz(engine: Client, redis_conn, delay, priority, retries, tags, depends) -> None:
    q = engine.queues["fuzz"]
    before = snapshot(redis_conn)
    try:
        jid = q.put("k", {"x": 1}, delay=delay, priority=priority, retries=retries, tags=tags, depends=depends)
    except InvalidArgument:
        assert snapshot(redis_conn) == before
    else:
        job = engine.jobs[jid]
        assert job.priority == priority and job.original_retries == retries
        job.cancel()
