"""Generated arguments thrown at every command: each call either works or fails with a typed error
(never a Lua bug, a ScriptError) and leaves the keyspace exactly as it was.

Two levels: the raw Lua commands (every entry of lua/api.lua, arguments drawn from names that
exist in the state, numbers, JSON and junk), and the public Python API (arguments of any type).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueengine import Client, QueueEngineError, ScriptError

from .conftest import snapshot

API = (resources.files("queueengine.store") / "lua" / "api.lua").read_text()
COMMANDS = sorted(set(re.findall(r"^\s*\['([\w.]+)'\]\s*=", API, re.M)))

WORDS = ["", "q", "other", "w1", "r1", "f1", "d1", "rt", "th", "worker", "another", "g", "t", "all", "on",
         "off", "add", "remove", "get", "top", "track", "untrack", "waiting", "running", "complete",
         "interval", "cron", "*/5 * * * *", "priority", "queue", "heartbeat", "grace-period", "a{b", "\x01"]
JSONISH = ["[]", "{}", "null", "[1,", '{"a":1}', '["w1"]', '["r1","w1"]', "[1]", '"x"', "1e999"]
numbers = st.one_of(st.integers(-3, 70000), st.floats(allow_nan=True, allow_infinity=True)).map(str)
raw_arg = st.one_of(st.sampled_from(WORDS), st.sampled_from(JSONISH), numbers, st.text(max_size=6))


def _world(engine: Client) -> None:
    """Jobs in most states, a template, a throttle, a worker (as in test_command_errors)."""
    q = engine.queues["q"]
    q.put("k", {}, jid="r1", tags=("t",))
    q.pop()
    q.put("k", {}, jid="f1")
    q.pop().fail("g", "boom")
    q.put("k", {}, jid="w1")
    q.put("k", {}, jid="d1", depends=["w1"])
    q.recur("k", {}, interval=60, jid="rt", offset=3600)
    engine.throttles["th"].maximum = 2


def _clean(redis_conn: redis.Redis, call: Callable[[], Any], what: Any) -> None:
    before = snapshot(redis_conn)
    try:
        call()
    except QueueEngineError as exc:
        assert not isinstance(exc, ScriptError), (what, exc)
        assert snapshot(redis_conn) == before, f"{what} raised {exc!r} after changing the keyspace"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), args=st.lists(raw_arg, max_size=9))
def test_every_lua_command_works_or_fails_cleanly(engine: Client, redis_conn: redis.Redis, command: str,
                                                  args: list[str]) -> None:
    if not redis_conn.exists(engine.keys.job("w1")):
        _world(engine)
    _clean(redis_conn, lambda: engine(command, *args), (command, args))


anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["q", "w1", "r1", "f1", "d1", "rt", "g", "t", "a{b", "", " "]),
    st.lists(st.sampled_from(["w1", "r1", "", "t", 3]), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                       st.integers(), max_size=2),
    st.just({1, 2}), st.just(object()), st.just(math.nan),
)


def _api_calls(engine: Client) -> dict[str, Callable[..., Any]]:
    """Public API entry points, each taking up to three generated arguments."""
    q = engine.queues["q"]

    def job(jid: str) -> Any:
        return engine.jobs[jid]

    def set_priority(jid: Any, value: Any, _: Any) -> None:
        job("w1").priority = value

    def set_config(key: Any, value: Any, _: Any) -> None:
        engine.config[key] = value

    def set_throttle(name: Any, value: Any, _: Any) -> None:
        engine.throttles[name].maximum = value

    return {
        "put": lambda a, b, c: q.put(a, b, priority=c),
        "put-delay": lambda a, b, c: q.put("k", {}, delay=a, retries=b, tags=c),
        "put-depends": lambda a, b, c: q.put("k", {}, depends=a, jid=b, unique=c),
        "put_many": lambda a, b, c: q.put_many([a, (b, c)]),
        "pop": lambda a, b, c: q.pop(a),
        "pop_from": lambda a, b, c: engine.pop_from(a, b, worker=c),
        "peek": lambda a, b, c: q.peek(a),
        "recur": lambda a, b, c: q.recur("k", a, interval=b, offset=c),
        "recur-cron": lambda a, b, c: q.recur("k", {}, cron=a, backlog=b, jid=c),
        "complete": lambda a, b, c: job("r1").complete(a, next_queue=b, delay=c),
        "complete-depends": lambda a, b, c: job("r1").complete(None, next_queue="q", depends=a),
        "fail": lambda a, b, c: job("r1").fail(a, b, traceback=c),
        "retry": lambda a, b, c: job("r1").retry(delay=a, group=b, message=c),
        "heartbeat": lambda a, b, c: job("r1").heartbeat(a),
        "priority": set_priority,
        "tag": lambda a, b, c: job("w1").tag(a, b),
        "untag": lambda a, b, c: job("w1").untag(a, b),
        "depend": lambda a, b, c: job("d1").depend(a),
        "undepend": lambda a, b, c: job("d1").undepend(a),
        "log": lambda a, b, c: job("w1").log(a, detail=b),
        "move": lambda a, b, c: job("w1").move(a, delay=b),
        "cancel": lambda a, b, c: engine.cancel(a, b),
        "track": lambda a, b, c: engine.track(a),
        "unfail": lambda a, b, c: engine.unfail(a, b, c),
        "tagged": lambda a, b, c: engine.jobs.tagged(a, a and b, c),
        "failed": lambda a, b, c: engine.jobs.failed(a, b, c),
        "complete-list": lambda a, b, c: engine.jobs.complete(a, b),
        "get": lambda a, b, c: engine.jobs.get(a, b),
        "stats": lambda a, b, c: q.stats(a),
        "listing": lambda a, b, c: q.jobs.waiting(a, b),
        "config": set_config,
        "throttle": set_throttle,
        "tags": lambda a, b, c: engine.tags(a, b),
        "wait": lambda a, b, c: engine.wait(a, timeout=0),
        "housekeep": lambda a, b, c: engine.housekeep(a),
        "next_due": lambda a, b, c: engine.next_due(a),
        "workers": lambda a, b, c: engine.workers[a],
        "register": lambda a, b, c: engine.workers.register(a, b),
        "metrics": lambda a, b, c: engine.metrics(queue=a, klass=b, step=c),
        "metrics-window": lambda a, b, c: q.metrics(since=a, until=b, step=c),
        "metrics-by-class": lambda a, b, c: engine.metrics.by_class(a, b, c),
        "metrics-histogram": lambda a, b, c: engine.metrics.histogram(a, b, until=c),
        "metrics-failures": lambda a, b, c: engine.metrics.failures(a, since=b, step=c),
        "metrics-backlog": lambda a, b, c: engine.metrics.backlog(a, b),
    }


API_NAMES = sorted(["put", "put-delay", "put-depends", "put_many", "pop", "pop_from", "peek", "recur",
                    "recur-cron", "complete", "complete-depends", "fail", "retry", "heartbeat", "priority",
                    "tag", "untag", "depend", "undepend", "log", "move", "cancel", "track", "unfail",
                    "tagged", "failed", "complete-list", "get", "stats", "listing", "config", "throttle",
                    "tags", "wait", "housekeep", "next_due", "workers", "register", "metrics", "metrics-window",
                    "metrics-by-class", "metrics-histogram", "metrics-failures", "metrics-backlog"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(API_NAMES), a=anything, b=anything, c=anything)
def test_every_api_call_works_or_fails_cleanly(engine: Client, redis_conn: redis.Redis, name: str,
                                               a: Any, b: Any, c: Any) -> None:
    if not redis_conn.exists(engine.keys.job("w1")):
        _world(engine)
    fn = _api_calls(engine)[name]
    before = snapshot(redis_conn)
    try:
        fn(a, b, c)
    except (QueueEngineError, KeyError) as exc:  # KeyError: config/jobs lookups, as a mapping does
        assert not isinstance(exc, ScriptError), (name, a, b, c, exc)
        assert snapshot(redis_conn) == before, f"{name}({a!r}, {b!r}, {c!r}) raised {exc!r} after a write"
    except TimeoutError:
        assert name == "wait"


def test_the_fuzzed_api_table_is_complete(engine: Client) -> None:
    assert sorted(_api_calls(engine)) == API_NAMES
    assert all(callable(fn) for fn in _api_calls(engine).values())
    assert len(COMMANDS) > 50
