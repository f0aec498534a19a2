"""Data JSON cannot carry faithfully is refused with one class (UnsupportedData, an
InvalidArgument and a TypeError) naming the path, everywhere job data or a result enters."""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from queueengine import Client, InvalidArgument, UnsupportedData
from queueengine.dispatch import JobFailed, JobManager
from queueengine.dispatch import memory as memory_backend
from queueengine.worker import Worker

BAD: list[tuple[Any, str]] = [
    ({"v": math.nan}, "data.v"),
    ({"v": math.inf}, "data.v"),
    ({"v": -math.inf}, "data.v"),
    ({"items": [1, 2, math.nan]}, "data.items[2]"),
    ({"items": [1, 2, {3}]}, "data.items[2]"),
    ({"v": 2**64}, "data.v"),
    ({"v": -(2**63) - 1}, "data.v"),
    ({"deep": {"x": [{"y": 10**30}]}}, "data.deep.x[0].y"),
    ({1: "a"}, "data"),
    ({"m": {(1, 2): "a"}}, "data.m"),
    ({"b": b"bytes"}, "data.b"),
    ({"o": object()}, "data.o"),
    ({"odd key": math.nan}, 'data["odd key"]'),
    ({"s": "\ud800"}, "data.s"),
    (math.nan, "data"),
]
IDS = [p for _, p in BAD]


def returns_nan(job: Any) -> Any:
    """A handler whose return value JSON cannot carry."""
    return {"ratio": math.nan}


@dataclasses.dataclass
class Point:
    x: float
    y: float


@pytest.mark.parametrize(("data", "path"), BAD, ids=IDS)
def test_put_refuses_and_names_the_path(engine: Client, q: Any, data: Any, path: str,
                                        unchanged: Callable[..., Any]) -> None:
    err = unchanged(UnsupportedData, q.put, "k", data)
    assert isinstance(err, InvalidArgument) and isinstance(err, TypeError)
    assert str(err).startswith(path + " ")


@pytest.mark.parametrize(("data", "path"), BAD[:6], ids=IDS[:6])
def test_put_many_refuses_the_whole_batch(engine: Client, q: Any, data: Any, path: str,
                                          unchanged: Callable[..., Any]) -> None:
    err = unchanged(UnsupportedData, q.put_many, [("k", {"ok": 1}), ("k", data)])
    assert f"jobs[1]: {path} " in str(err)
    err = unchanged(UnsupportedData, q.put_many, [{"klass": "k", "data": {}}, {"klass": "k", "data": data}])
    assert f"jobs[1]: {path} " in str(err)


def test_recur_requeue_and_recurring_data(engine: Client, q: Any, unchanged: Callable[..., Any]) -> None:
    err = unchanged(UnsupportedData, q.recur, "k", {"v": math.inf}, interval=60)
    assert str(err).startswith("data.v ")
    jid = q.put("k", {})
    unchanged(UnsupportedData, q.requeue, "k", {"v": math.nan}, jid=jid)
    template = engine.jobs[q.recur("k", {}, interval=60)]
    with pytest.raises(UnsupportedData, match=r"data\.x"):
        template.data = {"x": {1, 2}}


def test_complete_heartbeat_and_log_refuse(engine: Client, q: Any, unchanged: Callable[..., Any]) -> None:
    q.put("k", {})
    job = q.pop()
    err = unchanged(UnsupportedData, job.complete, {"score": math.nan})
    assert str(err).startswith("result.score ")
    unchanged(UnsupportedData, engine.complete_many, [(job, [math.inf])])
    unchanged(UnsupportedData, job.heartbeat, {"progress": math.nan})
    unchanged(UnsupportedData, job.log, "step", value=math.inf)
    assert engine.jobs[job.jid].state == "running"
    job.complete({"score": 1.5})
    assert engine.jobs[job.jid].result == {"score": 1.5}


def test_what_json_carries_is_accepted(engine: Client, q: Any) -> None:
    data = {"none": None, "null": "null", "t": True, "big": 2**64 - 1, "low": -(2**63), "f": 0.1,
            "nested": [[], {}, [None, {"k": None}]], "tuple": (1, 2)}
    jid = q.put("k", data)
    assert engine.jobs[jid].data == {**data, "tuple": [1, 2]}
    # what orjson writes natively is converted, as documented: ISO text, objects
    when = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.UTC)
    jid = q.put("k", {"when": when, "p": Point(1.0, 2.0)})
    assert engine.jobs[jid].data == {"when": "2026-12-03T12:00:00+00:00", "p": {"x": 1.0, "y": 2.0}}
    with pytest.raises(UnsupportedData, match=r"^data\.p\.x "):
        q.put("k", {"p": Point(math.nan, 0.0), "n": None})


def test_a_handler_returning_nan_fails_its_job_naming_the_path(redis_url: str, redis_conn: redis.Redis) -> None:
    client = Client.from_url(redis_url, namespace="dv")
    try:
        jid = client.queues["q"].put(f"{__name__}.returns_nan", {})
        Worker(client, ["q"], burst=True, install_signals=False).run()
        job = client.jobs[jid]
        assert job.state == "failed" and job.failure["group"] == "q-InvalidArgument"
        assert "result.ratio" in job.failure["message"]
    finally:
        client.close()


KINDS = [("memory", "simple"), ("redis", "simple"), ("redis", "recoverable"), ("redis", "reliable")]


@pytest.fixture(params=KINDS, ids=[m if t == "redis" else t for t, m in KINDS])
def mode_cfg(request: pytest.FixtureRequest, redis_url: str, redis_conn: redis.Redis) -> Iterator[tuple[str, dict[str, Any]]]:
    memory_backend.reset()
    kind, mode = request.param
    cfg: dict[str, Any] = {"mode": mode, "namespace": "dv"}
    if kind == "redis":
        cfg["uri"] = redis_url
    yield kind, cfg
    memory_backend.reset()


@pytest.fixture
def mode_client(mode_cfg: tuple[str, dict[str, Any]]) -> Iterator[Any]:
    kind, cfg = mode_cfg
    client = JobManager().client(kind, **cfg)
    yield client
    client.close()


@pytest.mark.parametrize(("value", "path"), [(math.nan, "data.v"), ([1, {"x": math.inf}], "data.v[1].x"),
                                             (2**70, "data.v"), ({3: 4}, "data.v"), ({1, 2}, "data.v")])
def test_every_delivery_mode_refuses_at_submit(mode_client: Any, redis_conn: redis.Redis, value: Any,
                                               path: str) -> None:
    before = sorted(redis_conn.keys("*"))
    with pytest.raises(UnsupportedData) as info:
        mode_client.submit(ok=1, v=value)
    assert str(info.value).startswith(path + " ")
    assert sorted(redis_conn.keys("*")) == before
    assert mode_client.pending == 0


def test_every_delivery_mode_refuses_an_unstorable_result(mode_cfg: tuple[str, dict[str, Any]],
                                                          mode_client: Any) -> None:
    """done(NaN) raises UnsupportedData in the handler: the job fails and the client hears it."""
    kind, cfg = mode_cfg
    seen: list[BaseException] = []

    def handler(job: Any) -> None:
        try:
            job.done({"x": math.nan})
        except UnsupportedData as exc:
            seen.append(exc)
            job.fail(str(exc))

    worker = JobManager().worker(kind, **cfg)
    worker.jobs.each(handler)
    worker.start()
    try:
        with pytest.raises(JobFailed, match=r"result\.x is nan"):
            mode_client.submit(v=1).result(20)
    finally:
        worker.stop(timeout=5)
    assert len(seen) == 1 and isinstance(seen[0], InvalidArgument)


@pytest.mark.parametrize("text", ['{"v": NaN}', '{"v": [1, -Infinity]}', '{"v": {"w": inf}}', '{"v": 0x10}', "nan"])
def test_a_raw_lua_caller_cannot_store_what_json_cannot_read(engine: Client, text: str,
                                                              unchanged: Callable[..., Any]) -> None:
    """The Python API refuses NaN before Redis sees it; a caller of the Lua library (another language,
    a bridge) is refused by the Lua side, where Redis's cjson would take NaN, Infinity, inf and hex
    numbers and store data no JSON reader can read back."""
    args = ("w", "raw", "raw-jid", "k", text, 0, 0, "[]", 5, "[]", "", "[]", 0, "")
    err = unchanged(InvalidArgument, engine, "put", *args)
    assert "data must be valid JSON" in str(err) and "NaN" in str(err)


def test_the_lua_side_still_reads_every_finite_number(engine: Client) -> None:
    """Strictness costs nothing legal: big exponents that fit a double, a 'nan' inside a string,
    and the decoder setting is restored for the server's other scripts."""
    text = '{"a": 1e308, "b": -2.5E-300, "c": "nan 0x10 1e999 Infinity", "d": [1E+200]}'
    assert engine("put", "w", "raw", "raw-ok", "k", text, 0, 0, "[]", 5, "[]", "", "[]", 0, "") in (b"raw-ok", "raw-ok")
    assert engine.jobs["raw-ok"].data == {"a": 1e308, "b": -2.5e-300, "c": "nan 0x10 1e999 Infinity", "d": [1e200]}
    lenient = engine.redis.eval("return tostring(cjson.decode_invalid_numbers())", 0)
    assert lenient in (b"true", "true")
