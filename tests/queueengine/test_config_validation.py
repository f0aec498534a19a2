"""Config values are checked: known options (and their per-queue forms) have a type and a range,
in Python before anything reaches Redis and in Lua for raw calls; clear() is one call."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from queueengine import Client, Event, InvalidArgument
from queueengine.devtools.testing import ManualClock
from queueengine.store import options

BAD = [
    ("heartbeat", 0), ("heartbeat", -5), ("heartbeat", "abc"), ("heartbeat", 1e30), ("heartbeat", math.nan),
    ("heartbeat", math.inf), ("heartbeat", "0"), ("heartbeat", "nan"), ("heartbeat", "0x10"), ("heartbeat", True),
    ("heartbeat", None), ("heartbeat", [60]), ("grace-period", -1), ("grace-period", "-0.5"),
    ("jobs-history", -1), ("jobs-history", 2.5), ("jobs-history", "1e3"), ("jobs-history-count", -1),
    ("max-job-history", -3), ("max-worker-age", -1), ("stats-history", -1), ("stats-history", 100000),
    ("histogram-history", -1), ("failed-history", -60), ("failed-history-count", 1.5),
    ("housekeeping-batch", 0), ("housekeeping-batch", 10**6), ("max-payload-bytes", -1),
    ("max-payload-bytes", 2**40), ("max-queue-length", -1), ("max-queue-length", 10**400),
    ("application", ""), ("application", "x" * 201), ("application", "a\nb"), ("application", None),
    ("reports-heartbeat", 0), ("reports-heartbeat", -1), ("reports-heartbeat", "soon"),
    ("reports-max-concurrency", -1), ("reports-max-concurrency", 2.5), ("reports-max-queue-length", -2),
    ("free-form", math.nan), ("free-form", math.inf), ("free-form", {"a": 1}), ("free-form", None),
]


def _config_hash(conn: redis.Redis, engine: Client) -> dict[bytes, bytes]:
    return conn.hgetall(engine.keys.key("config"))


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}"[:40] for n, v in BAD])
def test_bad_values_are_refused_and_change_nothing(engine: Client, name: str, value: Any,
                                                   unchanged: Callable[..., Any]) -> None:
    engine.config["heartbeat"] = 30      # something stored already, which must survive
    err = unchanged(InvalidArgument, engine.config.__setitem__, name, value)
    assert name in str(err)
    assert engine.config["heartbeat"] == 30


def test_python_refuses_before_anything_reaches_redis() -> None:
    """A client whose server does not exist: the check raises InvalidArgument, not a
    connection error (nothing was sent)."""
    client = Client.from_url("redis://127.0.0.1:9/0", namespace="nowhere")
    try:
        for name, value in [("heartbeat", 0), ("grace-period", -1), ("jobs-history", 1e30), ("x", math.nan)]:
            with pytest.raises(InvalidArgument, match=name):
                client.config[name] = value
    finally:
        client.close()


RAW_BAD = [
    ("heartbeat", "0"), ("heartbeat", "-5"), ("heartbeat", "abc"), ("heartbeat", "1e30"), ("heartbeat", "nan"),
    ("heartbeat", "inf"), ("heartbeat", "-inf"), ("heartbeat", "0x10"), ("heartbeat", " 5"), ("heartbeat", "+5"),
    ("grace-period", "-1"), ("jobs-history", "-1"), ("jobs-history", "2.5"), ("max-job-history", "1e3"),
    ("housekeeping-batch", "0"), ("application", ""), ("application", "a\tb"), ("q-heartbeat", "0"),
    ("q-max-concurrency", "-1"), ("q-max-queue-length", "1.5"),
]


@pytest.mark.parametrize(("name", "text"), RAW_BAD)
def test_the_lua_check_refuses_raw_calls(engine: Client, name: str, text: str,
                                         unchanged: Callable[..., Any]) -> None:
    err = unchanged(InvalidArgument, engine._call, "config.set", name, text)
    assert name in str(err) and "config.lua" in str(err)


CANDIDATES = ["0", "1", "-1", "60", "0.5", ".5", "5.", "1e3", "1E-3", "2.5e2", "1e30", "-0", "007",
              "315360000", "315360001", "1000000000", "1000000001", "abc", "", "1..2", "1-2", "5e", "nan",
              "inf", "0x10", "+5", " 5", "queueengine", "x" * 201]


@pytest.mark.parametrize("name", sorted(options.KNOWN) + ["q-heartbeat", "q-max-concurrency",
                                                          "q-max-queue-length", "anything-else"])
def test_python_and_lua_agree(engine: Client, redis_conn: redis.Redis, name: str) -> None:
    """The same text is accepted (and stored in the same canonical form) or refused by both."""
    for text in CANDIDATES:
        try:
            expected: str | None = options.check(name, text)
        except InvalidArgument:
            expected = None
        try:
            engine._call("config.set", name, text)
            stored = redis_conn.hget(engine.keys.key("config"), name)
            got = stored.decode() if stored is not None else None
        except InvalidArgument:
            got = None
        assert got == expected, f"{name} = {text!r}: Python {expected!r}, Lua {got!r}"
        redis_conn.delete(engine.keys.key("config"))


def test_good_values_are_stored_in_canonical_form(engine: Client, redis_conn: redis.Redis) -> None:
    engine.config["heartbeat"] = 0.5
    engine.config["grace-period"] = "007"
    engine.config["jobs-history"] = "3600"
    engine.config["reports-heartbeat"] = 120.0
    engine.config["reports-max-concurrency"] = 4
    engine.config["application"] = "my jobs"
    engine.config["myapp-flag"] = True
    engine.config["myapp-note"] = "anything, free-form"
    stored = {k.decode(): v.decode() for k, v in _config_hash(redis_conn, engine).items()}
    assert stored == {"heartbeat": "0.5", "grace-period": "7", "jobs-history": "3600", "reports-heartbeat": "120",
                      "reports-max-concurrency": "4", "application": "my jobs", "myapp-flag": "1",
                      "myapp-note": "anything, free-form"}
    assert engine.config["heartbeat"] == 0.5 and engine.config["reports-heartbeat"] == 120
    assert engine.config.stored() == {**{k: v for k, v in engine.config.all().items() if k in stored}}
    assert engine.queues["reports"].heartbeat == 120 and engine.queues["reports"].max_concurrency == 4


def test_queue_setters_are_checked(engine: Client, unchanged: Callable[..., Any]) -> None:
    q = engine.queues["reports"]
    unchanged(InvalidArgument, setattr, q, "heartbeat", 0)
    unchanged(InvalidArgument, setattr, q, "max_concurrency", -1)
    q.heartbeat = 15
    assert q.heartbeat == 15


def test_a_legacy_bad_lease_falls_back_to_the_default(engine: Client, q, redis_conn: redis.Redis,
                                                       clock: ManualClock) -> None:
    """A value stored before values were checked (written straight into the hash) never makes a
    lease that is born expired: <queue>-heartbeat 0 counts as unset."""
    redis_conn.hset(engine.keys.key("config"), mapping={"testing-heartbeat": "0", "heartbeat": "-5"})
    q.put("k", {})
    job = q.pop()
    assert job.expires_at == clock.now + 60
    assert q.jobs.stalled() == []


def test_describe_gives_meaning_type_default(engine: Client) -> None:
    hb = engine.config.describe("heartbeat")
    assert hb is not None and hb.kind == "number" and hb.default == "60" and "Lease" in hb.meaning
    per_queue = engine.config.describe("reports-max-concurrency")
    assert per_queue is not None and per_queue.name == "<queue>-max-concurrency" and per_queue.kind == "integer"
    assert engine.config.describe("myapp-setting") is None
    defaults = engine.config.all()
    for name, option in options.KNOWN.items():       # every known option has its default in Lua too
        assert str(defaults[name]) == option.default, name


def _wait_for(events: list[Event], pubsub: Any, name: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.2)
        if m is not None:
            events.append(Event.parse(m[1]))
            if events[-1].name == "config" and events[-1].data.get("option") == name:
                return
    raise AssertionError(f"no config event for {name} within the deadline")


def test_clear_resets_everything_in_one_call_and_one_event(engine: Client, redis_conn: redis.Redis) -> None:
    engine.config.update({"heartbeat": 5, "grace-period": 0, "reports-max-concurrency": 2, "myapp": "x"})
    pubsub = engine.events.subscriber(engine.events.channel)
    pubsub.connect()
    try:
        redis_conn.config_resetstat()
        engine.config.clear()
        stats = redis_conn.info("commandstats")
        calls = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"))
        assert calls == 1
        engine.config["marker"] = 1              # events are ordered: read up to this one
        events: list[Event] = []
        _wait_for(events, pubsub, "marker", time.monotonic() + 10)
    finally:
        pubsub.close()
    config_events = [e for e in events if e.name == "config"]
    assert [e.data.get("cleared") for e in config_events] == [4, None]
    assert engine.config.stored() == {"marker": 1}
    assert engine.config["heartbeat"] == 60 and engine.config["grace-period"] == 10
    assert "myapp" not in engine.config


def test_mapping_methods_still_work(engine: Client) -> None:
    engine.config["heartbeat"] = 90
    assert engine.config.pop("heartbeat") == 90
    assert engine.config["heartbeat"] == 60           # back to the default
    engine.config.setdefault("myapp", "v")
    assert engine.config.get("myapp") == "v"
    engine.config.clear()
    assert len(engine.config) == len(options.KNOWN)


def test_update_checks_every_value_first(engine: Client, unchanged: Callable[..., Any]) -> None:
    err = unchanged(InvalidArgument, engine.config.update, {"heartbeat": 30, "grace-period": -1})
    assert "grace-period" in str(err)
    engine.config.update([("heartbeat", 30)], **{"myapp": "x"})
    assert engine.config["heartbeat"] == 30 and engine.config["myapp"] == "x"


def test_qe_config_refuses_a_bad_value(engine: Client, redis_url: str, settings: Any,
                                       unchanged: Callable[..., Any]) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.QUEUEENGINE = {"URL": redis_url, "NAMESPACE": "test"}
    for value in ("0", "NaN", "-1", "soon"):
        err = unchanged(CommandError, call_command, "qe_config", "heartbeat", value)
        assert "heartbeat must be a number" in str(err)
