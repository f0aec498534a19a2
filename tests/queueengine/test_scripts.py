"""The Lua library: assembly, error mapping, key schema in step with base.lua, both run modes."""

from __future__ import annotations

import re
import threading
from importlib import resources

import pytest
import redis

import queueengine.store.keys
from queueengine import Client, Event, JobNotFound
from queueengine.store.scripts import LUA_FILES, LuaLibrary, library


def test_every_file_is_assembled_with_a_marker() -> None:
    lib = library()
    for name in LUA_FILES:
        assert f"-- file: {name}\n" in lib.source
    assert LUA_FILES[-1] == "api.lua"


def test_locate_maps_lines_to_files() -> None:
    lib = library()
    lines = lib.source.split("\n")
    for first, name in lib.offsets:
        assert lines[first - 2] == f"-- file: {name}"
        assert lib.locate(first) == f"{name}:1"
        assert lib.locate(first + 1, "function") == f"{name}:1"


def test_key_schema_matches_base_lua() -> None:
    base = (resources.files("queueengine.store") / "lua" / "base.lua").read_text()
    lua_keys = set(re.findall(r'P\.\."([^"]+)"', base))
    doc = queueengine.store.keys.__doc__ or ""
    py_keys = {line.split()[0] for line in doc.splitlines() if line.startswith("    ") and line.split()}
    channels = {"events", "w:<worker>", "reply:<jid>", "inbox:<name>"}
    assert channels <= lua_keys
    assert lua_keys - channels == py_keys


def test_script_mode_works_too(engine: Client, redis_conn: redis.Redis) -> None:
    # force the EVALSHA path (what Redis 6.2 uses) on this server
    lib = LuaLibrary()
    lib._modes[id(engine.redis.connection_pool)] = "script"
    engine.redis.script_load(lib.source)
    engine.lua = lib
    q = engine.queues["s"]
    jid = q.put("k", {})
    assert q.pop().complete(5) == "complete"
    assert engine.wait(jid, timeout=0) == 5
    with pytest.raises(JobNotFound) as info:
        engine("heartbeat", "ghost", "w", "")
    assert info.value.location and info.value.location.startswith("job.lua:")
    engine.redis.script_flush()
    assert q.put("k", {})  # reloaded after NOSCRIPT


def test_function_reloaded_after_flush(engine: Client, redis_conn: redis.Redis) -> None:
    q = engine.queues["f"]
    q.put("k", {})
    if engine.lua.mode(engine.redis) == "function":
        redis_conn.function_flush()
    q.put("k", {})
    assert len(q.pop(5)) == 2


def test_subscribe_callback(engine: Client, q) -> None:
    got: list[Event] = []
    seen = threading.Event()

    def on(ev: Event) -> None:
        got.append(ev)
        seen.set()

    sub = engine.events.subscribe(on, names=("put",))
    try:
        for _ in range(50):
            q.put("k", {})
            if seen.wait(0.1):
                break
    finally:
        sub.stop()
    assert got and got[0].name == "put"


def test_row_fields_are_declared_once() -> None:
    """pop.lua's QE.ROW_FIELDS is the same list, in the same order, as queueengine.job.ROW_FIELDS
    (Job.from_row reads rows by position)."""
    import inspect

    from queueengine.job import ROW_FIELDS, Job

    pop = (resources.files("queueengine.store") / "lua" / "pop.lua").read_text()
    block = re.search(r"QE\.ROW_FIELDS = \{(.*?)\}", pop, re.S)
    assert block is not None
    assert tuple(re.findall(r"'([^']+)'", block.group(1))) == ROW_FIELDS
    # from_row unpacks exactly as many values as there are fields
    source = inspect.getsource(Job.from_row)
    unpacked = re.search(r"\((jid, .*?)\) = row", source, re.S)
    assert unpacked is not None and len(unpacked.group(1).split(",")) == len(ROW_FIELDS)


def test_a_popped_row_reads_back_as_the_stored_job(engine: Client) -> None:
    """Every field of the row lands where get() puts it: the two readers agree."""
    q = engine.queues["rows"]
    jid = q.put("app.K", {"a": 1}, priority=3, tags=("t1",), retries=2, throttles=("th",))
    popped = q.pop()
    assert popped is not None
    stored = engine.jobs[jid]
    for attr in ("jid", "klass", "data", "priority", "queue_name", "state", "worker", "expires_at",
                 "original_retries", "retries_left", "tags", "throttles"):
        assert getattr(popped, attr) == getattr(stored, attr), attr
