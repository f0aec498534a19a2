"""The naming rule (queueengine/store/keys.py): Python (_args.name) and Lua (QE.name) accept exactly
the same names; a refused name is an InvalidArgument naming the argument and writes nothing;
every legal name (with '/', '%', spaces, '?', '#', quotes, ':', non-ASCII) works end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueengine import Client, InvalidArgument, JobNotFound
from queueengine.store.args import NAME_MAX, name, name_problem

EDGES = "{}:/%?#\"' \u00a0\u3000\u2000\u200a\u202f\u2028\u2029\x00\x1f\x7f\x80\x85\x9f\ttéß日本🙂\u200b"
SUFFIXES = [":history", ":dependencies", ":dependents", ":locks", ":pending", ":jobs"]

char = st.one_of(st.sampled_from(EDGES), st.characters(blacklist_categories=("Cs",)))
"""Any character a client can send (lone surrogates are not encodable), edge cases often."""
names_any = st.one_of(
    st.text(char, min_size=0, max_size=12),
    st.builds(lambda a, s: a + s, st.text(char, max_size=6), st.sampled_from(SUFFIXES)),
    st.builds(lambda c, n: c * n, st.sampled_from("aé日🙂 "), st.integers(NAME_MAX - 2, NAME_MAX + 2)),
)
"""Candidate names: short mixed strings, reserved suffixes, lengths around the cap."""
legal_names = st.text(st.sampled_from("ab/%?#\"' :é日🙂&+=.~"), min_size=1, max_size=10).filter(
    lambda s: name_problem(s, "jid") is None and name_problem(s, "throttle") is None)
"""Legal names full of characters that need care in URLs, keys and shells."""

COMMANDS: dict[str, Callable[[Client, str], Any]] = {
    "jid": lambda c, v: c("tag", "add", v, "t"),
    "throttle": lambda c, v: c("throttle.get", v),
    "tag": lambda c, v: c("tag", "add", "no-such-job", v),
}
"""A Lua command per kind of check (jid suffixes, throttle suffixes, plain) that checks the name
and then writes nothing (there is no such job)."""


def lua_problem(engine: Client, arg: str, value: str | bytes) -> str | None:
    """What Lua says of ``value`` as the argument ``arg`` (None: accepted)."""
    try:
        COMMANDS[arg](engine, value)  # type: ignore[arg-type]
    except InvalidArgument as exc:
        assert f" {arg} " in f" {exc} ", f"the error must name {arg}: {exc}"
        return str(exc)
    except JobNotFound:
        return None
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=names_any, arg=st.sampled_from(sorted(COMMANDS)))
def test_python_and_lua_accept_exactly_the_same_names(engine: Client, value: str, arg: str) -> None:
    """Over generated strings, Lua refuses a name exactly when Python does."""
    py = name_problem(value, arg)
    lua = lua_problem(engine, arg, value)
    assert (py is None) == (lua is None), f"{value!r} as {arg}: python {py!r}, lua {lua!r}"


@pytest.mark.parametrize("raw", [b"\xff", b"a\xc3", b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                 b"\xc2\x85", b"\xe2\x80\xa8"])
def test_lua_refuses_invalid_utf8_and_hidden_controls(engine: Client, raw: bytes) -> None:
    """Bytes no Python str produces (invalid, overlong, surrogate, beyond U+10FFFF) and the C1 /
    line-separator characters are refused by Lua too."""
    assert lua_problem(engine, "tag", raw) is not None


def test_python_refuses_lone_surrogates_and_non_strings() -> None:
    """A lone surrogate cannot be sent at all; bytes, None and '' are not names."""
    for bad in ("a\ud800", b"abc", None, "", 5):
        with pytest.raises(InvalidArgument, match="^queue "):
            name(bad, "queue")


def test_the_rule_in_examples() -> None:
    """Real-world names are legal; the few reserved forms are not."""
    for good in ("emails/daily", "café", "has space", "naïve-job", "a%2Fb", "what?#", "it's \"quoted\"", "ns:x",
                 "日本語", "🙂", "x" * NAME_MAX, "..", "~"):
        assert name_problem(good, "jid") is None, good
    for bad, arg in ((" lead", "queue"), ("trail\u3000", "queue"), ("a{b", "queue"), ("a\nb", "tag"),
                     ("x\x85", "group"), ("x:history", "jid"), ("x:dependents", "depends"), ("t:locks", "throttle"),
                     ("x" * (NAME_MAX + 1), "worker")):
        assert name_problem(bad, arg) is not None, (bad, arg)
    assert name_problem("x:history", "queue") is None and name_problem("t:locks", "jid") is None


def test_reads_and_cancel_reach_names_written_before_the_rule(engine: Client, redis_conn: redis.Redis) -> None:
    """get, views and cancel take any non-empty name (data another client wrote stays
    reachable), but never a reserved suffix (that key is another job's history)."""
    jid = engine.queues["q"].put("app.X", {})
    p = engine.prefix
    odd_jid, odd_queue = "odd\njid ", "odd\x01queue"
    redis_conn.rename(p + f"j:{jid}", p + f"j:{odd_jid}")
    redis_conn.hset(p + f"j:{odd_jid}", mapping={"jid": odd_jid, "queue": odd_queue})
    redis_conn.delete(p + "q:q:work")
    redis_conn.zadd(p + f"q:{odd_queue}:work", {odd_jid: 0})
    assert engine.jobs[odd_jid].jid == odd_jid and [j.jid for j in engine.jobs.get(odd_jid)] == [odd_jid]
    assert [j["jid"] for j in engine.views.jobs("waiting", odd_queue)["jobs"]] == [odd_jid]
    batch = engine.views.batch()
    stats = batch.stats(odd_queue)
    batch.run()
    assert engine.views.job(odd_jid)["job"] is not None and stats.value["wait"]["count"] == 0
    with pytest.raises(InvalidArgument, match="jid"):
        engine.jobs[f"{odd_jid}:history"]
    with pytest.raises(InvalidArgument, match="^jids "):
        engine.cancel("x:history")
    assert engine.cancel(odd_jid) == [odd_jid] and odd_jid not in engine.jobs
    assert redis_conn.zcard(p + f"q:{odd_queue}:work") == 0


def test_refused_names_write_nothing(engine: Client, unchanged: Callable[..., Any]) -> None:
    """Through the API and straight to Lua: InvalidArgument naming the argument, keyspace intact."""
    q = engine.queues["fine"]
    q.put("app.X", {}, jid="seed")
    err = unchanged(InvalidArgument, q.put, "app.X", {}, jid="x:history")
    assert str(err).startswith("jid ")
    assert str(unchanged(InvalidArgument, q.put, "app.X", {}, tags=["ok", " pad"])).startswith("tags ")
    assert str(unchanged(InvalidArgument, q.put, "app.X", {}, throttles=["t:pending"])).startswith("throttles ")
    unchanged(InvalidArgument, lambda: engine.queues["a\x07b"])
    for command, args in (("throttle.set", ("t:locks", "3")), ("worker.register", ("w\u2028", "{}")),
                          ("tag", ("add", "seed", "bad\x00tag")), ("track", ("track", "seed:dependencies"))):
        err = unchanged(InvalidArgument, engine, command, *args)
        assert "InvalidArgument" not in str(err) or "must" in str(err)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(queue=legal_names, jid=legal_names, tag=legal_names, group=legal_names)
def test_legal_names_work_end_to_end(engine: Client, redis_conn: redis.Redis, queue: str, jid: str, tag: str,
                                     group: str) -> None:
    """Put, tag, throttle, pop, fail into a group, list, retry and cancel with awkward names."""
    redis_conn.flushdb()
    engine.throttles[tag].maximum = 1
    q = engine.queues[queue]
    assert q.put("app.X", {"n": 1}, jid=jid, tags=[tag], throttles=[tag]) == jid
    assert engine.jobs.tagged(tag)["jobs"] == [jid]
    assert queue in [row["name"] for row in engine.views.queues()]
    popped = engine.pop_from([queue], 1, worker=tag)
    assert [j.jid for j in popped] == [jid] and engine.jobs[jid].worker == tag
    popped[0].fail(group, "boom")
    assert [g["group"] for g in engine.views.groups()["groups"]] == [group]
    assert [j["jid"] for j in engine.views.jobs("failed", group)["jobs"]] == [jid]
    engine.queues[queue + "/again"].put("app.X", {}, jid=jid)
    assert engine.jobs[jid].state == "waiting" and engine.jobs[jid].queue.name == queue + "/again"
    assert engine.cancel(jid) == [jid] and jid not in engine.jobs
