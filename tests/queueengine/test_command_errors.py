"""Every Lua command's error cases: a typed error whose message names the bad argument (or says
what is wrong with the job), and a keyspace left exactly as it was.

The state every case starts from (``world``): job ``w1`` waiting, ``r1`` running (held by worker
``worker``), ``f1`` failed, ``d1`` waiting in depends on ``w1``, recurring template ``rt``,
throttle ``th``, worker ``worker`` registered. The last test checks that the table covers every
command of the library (lua/api.lua), so a new command cannot come without its error cases.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
import redis

from queueengine import (
    Client,
    DuplicateJob,
    InvalidArgument,
    JobNotFound,
    LostLease,
    QueueEngineError,
    WrongState,
)
from queueengine.store.scripts import library

P12 = ["k", "{}", 0, 0, "[]", 5, "[]", 0, "[]", 0, ""]   # the 11 put fields after the jid

CASES: list[tuple[str, list[Any], type[QueueEngineError], str]] = [
    ("get", [""], InvalidArgument, "jid"),
    ("get", ["a:history"], InvalidArgument, "jid"),
    ("multiget", ["w1", ""], InvalidArgument, "jid"),
    ("put", ["worker", "q", "", *P12], InvalidArgument, "jid"),
    ("put", ["worker", "q", "j", "k", "[1,", 0, 0, "[]", 5, "[]", 0, "[]", 0, ""], InvalidArgument, "data"),
    ("put", ["worker", "q", "w1", "k", "{}", 0, 0, "[]", 5, "[]", 1, "[]", 0, ""], DuplicateJob, "w1"),
    ("requeue", ["worker", "q", "ghost", *P12], JobNotFound, "ghost"),
    ("requeue", ["worker", "q", "w1", "k", "{}", -3, 0, "[]", 5, "[]", 0, "[]", 0, ""], InvalidArgument, "delay"),
    ("put_many", ["worker", "q", 2, "a", *P12], InvalidArgument, "expected"),
    ("put_many", ["worker", "q", -1], InvalidArgument, "count"),
    ("put_many", ["worker", "q", 1, "a", "k", "{}", 0, "x", "[]", 5, "[]", 0, "[]", 0, ""], InvalidArgument, "priority"),
    ("put_batch", ["worker", "q", 2, "k", 0, 0, "[]", 5, "[]", 0, "[]", 0, "", "a", "{}"], InvalidArgument,
     "expected"),
    ("put_batch", ["worker", "q", 1, "", 0, 0, "[]", 5, "[]", 0, "[]", 0, "", "a", "{}"], InvalidArgument, "klass"),
    ("put_batch", ["worker", "q", 2, "k", 0, 0, "[]", 5, "[]", 0, "[]", 0, "", "a", "{}", "", "{}"],
     InvalidArgument, "jid"),
    ("put_batch", ["worker", "q", 2, "k", 0, 0, "[]", 5, "[]", 0, "[]", 0, "", "a", "{}", "b", "{bad"],
     InvalidArgument, "data"),
    ("put_batch", ["worker", "q", 1, "k", 0, 0, "[]", 5, "[]", 1, "[]", 0, "", "w1", "{}"], DuplicateJob, "w1"),
    ("put_batch", ["worker", "q", 1, "k", 0, "x", "[]", 5, "[]", 0, "[]", 0, "", "a", "{}"], InvalidArgument,
     "priority"),
    ("pop", ["", 1, "q"], InvalidArgument, "worker"),
    ("pop", ["worker", "x", "q"], InvalidArgument, "count"),
    ("pop", ["worker", 1], InvalidArgument, "queue"),
    ("pop", ["worker", 1, "q", ""], InvalidArgument, "queue"),
    ("peek", ["", 1], InvalidArgument, "queue"),
    ("peek", ["q", -1], InvalidArgument, "count"),
    ("complete", ["ghost", "worker", "q", "null", "", "", ""], JobNotFound, "ghost"),
    ("complete", ["r1", "another", "q", "null", "", "", ""], LostLease, "another worker"),
    ("complete", ["w1", "worker", "q", "null", "", "", ""], WrongState, "not currently running"),
    ("complete", ["r1", "worker", "elsewhere", "null", "", "", ""], WrongState, "elsewhere"),
    ("complete", ["r1", "worker", "q", "{bad", "", "", ""], InvalidArgument, "result"),
    ("complete", ["r1", "worker", "q", "null", "", "5", ""], InvalidArgument, "delay"),
    ("complete", ["r1", "worker", "q", "null", "", "", '["w1"]'], InvalidArgument, "depends"),
    ("complete", ["r1", "worker", "q", "null", "next", "-1", ""], InvalidArgument, "delay"),
    ("complete", ["r1", "worker", "q", "null", "next", "", '["r1"]'], InvalidArgument, "itself"),
    ("complete", ["r1", "worker", "q", "null", "a{", "", ""], InvalidArgument, "next_queue"),
    ("complete_many", ["x"], InvalidArgument, "count"),
    ("complete_many", [2, "r1", "worker", "q", "null"], InvalidArgument, "expected"),
    ("complete_many", [1, "r1", "worker", "q", "{bad"], InvalidArgument, "result"),
    ("complete_many", [1, "r1", "", "q", "null"], InvalidArgument, "worker"),
    ("complete_pop", [1, "r1", "worker", "q", "null"], InvalidArgument, "expected"),
    ("complete_pop", [1, "r1", "worker", "q", "null", "worker", 1, ""], InvalidArgument, "queue"),
    ("complete_pop", [0, "worker", "x", "q"], InvalidArgument, "count"),
    ("complete_pop", [1, "r1", "worker", "q", "[1,", "worker", 1, "q"], InvalidArgument, "result"),
    ("fail", ["r1", "worker", "", "m", "", ""], InvalidArgument, "group"),
    ("fail", ["r1", "worker", "g"], InvalidArgument, "message"),
    ("fail", ["r1", "worker", "g", "m", "", "{bad"], InvalidArgument, "data"),
    ("fail", ["w1", "worker", "g", "m", "", ""], WrongState, "not currently running"),
    ("fail", ["ghost", "worker", "g", "m", "", ""], JobNotFound, "ghost"),
    ("fail", ["r1", "another", "g", "m", "", ""], LostLease, "another worker"),
    ("retry", ["r1", "q", "worker", "-1", "", ""], InvalidArgument, "delay"),
    ("retry", ["r1", "q", "worker", "x", "", ""], InvalidArgument, "delay"),
    ("retry", ["r1", "q", "worker", "", "g{", "m"], InvalidArgument, "group"),
    ("retry", ["r1", "", "worker", "", "", ""], InvalidArgument, "queue"),
    ("retry", ["w1", "q", "worker", "", "", ""], WrongState, "not currently running"),
    ("retry", ["r1", "q", "another", "", "", ""], LostLease, "another worker"),
    ("heartbeat", ["r1", "worker", "{bad"], InvalidArgument, "data"),
    ("heartbeat", ["ghost", "worker", ""], JobNotFound, "ghost"),
    ("heartbeat", ["w1", "worker", ""], WrongState, "not currently running"),
    ("heartbeat", ["r1", "", ""], InvalidArgument, "worker"),
    ("release", ["ghost", "worker"], JobNotFound, "ghost"),
    ("release", ["w1", "worker"], WrongState, "not currently running"),
    ("release", ["r1", "another"], LostLease, "another worker"),
    ("timeout", [""], InvalidArgument, "jid"),
    ("timeout", ["ghost"], JobNotFound, "ghost"),
    ("timeout", ["r1", "w1"], WrongState, "not running"),
    ("sweep", ["-1", "10", "q"], InvalidArgument, "older_than"),
    ("sweep", ["x", "10", "q"], InvalidArgument, "older_than"),
    ("sweep", ["30", "0", "q"], InvalidArgument, "limit"),
    ("sweep", ["30", "10"], InvalidArgument, "at least one queue"),
    ("sweep", ["30", "10", "q", "a{b}"], InvalidArgument, "queue"),
    ("cancel", ["w1", ""], InvalidArgument, "jid"),
    ("cancel", ["w1"], WrongState, "dependency of d1"),
    ("depends", ["d1", "sideways", "w1"], InvalidArgument, "action"),
    ("depends", ["d1", "on", "d1"], InvalidArgument, "itself"),
    ("depends", ["d1", "on", ""], InvalidArgument, "dependency"),
    ("depends", ["w1", "on", "r1"], WrongState, "depends state"),
    ("depends", ["ghost", "off", "all"], JobNotFound, "ghost"),
    ("priority", ["w1", "x"], InvalidArgument, "priority"),
    ("priority", ["w1", 99999], InvalidArgument, "priority"),
    ("priority", ["w1", "1.5"], InvalidArgument, "priority"),
    ("priority", ["ghost", 1], JobNotFound, "ghost"),
    ("tag", ["sideways", "w1", "t"], InvalidArgument, "action"),
    ("tag", ["add", "ghost", "t"], JobNotFound, "ghost"),
    ("tag", ["add", "w1", ""], InvalidArgument, "tag"),
    ("tag", ["remove", "w1", "t{"], InvalidArgument, "tag"),
    ("tag", ["get", "", 0, 10], InvalidArgument, "tag"),
    ("tag", ["get", "t", -1, 10], InvalidArgument, "offset"),
    ("tag", ["top", 0, "x"], InvalidArgument, "count"),
    ("track", ["sideways", "w1"], InvalidArgument, "action"),
    ("track", ["track", "ghost"], JobNotFound, "ghost"),
    ("track", ["track", ""], InvalidArgument, "jid"),
    ("failed", ["g{"], InvalidArgument, "group"),
    ("failed", ["g", -1, 5], InvalidArgument, "start"),
    ("failed", ["g", 0, "x"], InvalidArgument, "limit"),
    ("unfail", ["", "g"], InvalidArgument, "queue"),
    ("unfail", ["q", "", 5], InvalidArgument, "group"),
    ("unfail", ["q", "g", -1], InvalidArgument, "count"),
    ("jobs", ["bogus", "q", 0, 10], InvalidArgument, "state"),
    ("jobs", ["waiting", "", 0, 10], InvalidArgument, "queue"),
    ("jobs", ["waiting", "q", -1, 10], InvalidArgument, "offset"),
    ("jobs", ["complete", 0, "x"], InvalidArgument, "count"),
    ("queues", ["a{b"], InvalidArgument, "queue"),
    ("workers", ["a{b"], InvalidArgument, "worker"),
    ("worker.register", ["", "{}"], InvalidArgument, "worker"),
    ("worker.register", ["w", "{bad"], InvalidArgument, "info"),
    ("worker.register", ["w", "[1]"], InvalidArgument, "info"),
    ("worker.beat", [""], InvalidArgument, "worker"),
    ("worker.deregister", ["ok", ""], InvalidArgument, "worker"),
    ("stats", ["", ""], InvalidArgument, "queue"),
    ("stats", ["q", "yesterday"], InvalidArgument, "date"),
    ("length", [""], InvalidArgument, "queue"),
    ("pause", ["q", ""], InvalidArgument, "queue"),
    ("unpause", ["a}"], InvalidArgument, "queue"),
    ("log", ["ghost", "msg", ""], JobNotFound, "ghost"),
    ("log", ["w1", "", ""], InvalidArgument, "message"),
    ("log", ["w1", "msg", "[1,2]"], InvalidArgument, "data"),
    ("log", ["w1", "msg", "{bad"], InvalidArgument, "data"),
    ("config.get", ["a{b"], InvalidArgument, "option"),
    ("config.set", ["", "1"], InvalidArgument, "option"),
    ("config.set", ["heartbeat"], InvalidArgument, "value"),
    ("config.unset", [""], InvalidArgument, "option"),
    ("config.set", ["heartbeat", "0"], InvalidArgument, "heartbeat"),
    ("config.clear", ["all"], InvalidArgument, "arguments"),
    ("config.stored", ["x"], InvalidArgument, "arguments"),
    ("recur", ["q", "r2", "k", "{}", "interval", 0, 0, "", "", "", "", "", ""], InvalidArgument, "interval"),
    ("recur", ["q", "r2", "k", "{}", "weekly", 60, 0, "", "", "", "", "", ""], InvalidArgument, "schedule"),
    ("recur", ["q", "r2", "k", "{}", "cron", "61 * * * *", 0, "", "", "", "", "", ""], InvalidArgument, "cron"),
    ("recur", ["q", "r2", "", "{}", "interval", 60, 0, "", "", "", "", "", ""], InvalidArgument, "klass"),
    ("recur", ["q", "r2", "k", "{bad", "interval", 60, 0, "", "", "", "", "", ""], InvalidArgument, "data"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, -1, "", "", "", "", "", ""], InvalidArgument, "offset"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, 0, "x", "", "", "", "", ""], InvalidArgument, "priority"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, 0, "", '{"a": 1}', "", "", "", ""], InvalidArgument, "tags"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, 0, "", "", "-1", "", "", ""], InvalidArgument, "retries"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, 0, "", "", "", "x", "", ""], InvalidArgument, "backlog"),
    ("recur", ["q", "r2", "k", "{}", "interval", 60, 0, "", "", "", "", "", "{bad"], InvalidArgument, "backoff"),
    ("recur", ["q", "w1", "k", "{}", "interval", 60, 0, "", "", "", "", "", ""], DuplicateJob, "w1"),
    ("recur.get", [""], InvalidArgument, "jid"),
    ("recur.update", ["ghost", "priority", 1], JobNotFound, "ghost"),
    ("recur.update", ["rt", "colour", "red"], InvalidArgument, "colour"),
    ("recur.update", ["rt", "priority"], InvalidArgument, "pairs"),
    ("recur.update", ["rt", "priority", "x"], InvalidArgument, "priority"),
    ("recur.update", ["rt", "priority", 3, "interval", -5], InvalidArgument, "interval"),
    ("recur.update", ["rt", "cron", "* *"], InvalidArgument, "cron"),
    ("recur.tag", ["ghost", "t"], JobNotFound, "ghost"),
    ("recur.tag", ["rt", ""], InvalidArgument, "tag"),
    ("recur.untag", ["rt", "t{"], InvalidArgument, "tag"),
    ("unrecur", [""], InvalidArgument, "jid"),
    ("queue.forget", ["q", ""], InvalidArgument, "queue"),
    ("throttle.set", ["", 1], InvalidArgument, "throttle"),
    ("throttle.set", ["th", -1], InvalidArgument, "maximum"),
    ("throttle.get", [""], InvalidArgument, "throttle"),
    ("throttle.delete", ["a{b"], InvalidArgument, "throttle"),
    ("throttle.locks", [""], InvalidArgument, "throttle"),
    ("throttle.pending", [""], InvalidArgument, "throttle"),
    ("housekeep", ["q", ""], InvalidArgument, "queue"),
    ("next_due", ["q", ""], InvalidArgument, "queue"),
    ("view.jobs", ["bogus", "q"], InvalidArgument, "kind"),
    ("view.jobs", ["waiting", "q", -1], InvalidArgument, "offset"),
    ("view.jobs", ["waiting", "q", 0, 0], InvalidArgument, "count"),
    ("view.jobs", ["waiting", "q", 0, 5, 200, '{"colour": "x"}'], InvalidArgument, "filters"),
    ("view.queues", ["x"], InvalidArgument, "minutes"),
    ("view.groups", [-1], InvalidArgument, "offset"),
    ("view.workers", [-1], InvalidArgument, "offset"),
    ("view.job", [""], InvalidArgument, "jid"),
    ("view.recurring", [-1], InvalidArgument, "offset"),
    ("view.tracked_states", ["x"], InvalidArgument, "sample"),
    ("view.tags", [-1], InvalidArgument, "offset"),
    ("import", ["bogus", 0, "{}"], InvalidArgument, "kind"),
    ("import", ["job", "x", "{}"], InvalidArgument, "dry"),
    ("import", ["job", 0, *(["{}"] * 1001)], InvalidArgument, "items"),
    ("metrics.series", ["", "", "100", "50", ""], InvalidArgument, "until"),
    ("metrics.series", ["", "", "", "", "90"], InvalidArgument, "step"),
    ("metrics.series", ["", "", "0", "86400000", "60"], InvalidArgument, "step"),
    ("metrics.series", ["", "", "x", "", ""], InvalidArgument, "since"),
    ("metrics.classes", ["", "", "nan"], InvalidArgument, "until"),
    ("metrics.classes", ["", "9", "8"], InvalidArgument, "until"),
    ("metrics.groups", ["", "", "-60", "g"], InvalidArgument, "step"),
    ("metrics.groups", ["", "", "", ""], InvalidArgument, "group"),
    ("metrics.totals", ["extra"], InvalidArgument, "arguments"),
    ("metrics.backlog", ["", 10], InvalidArgument, "queue"),
    ("metrics.backlog", ["q", 0], InvalidArgument, "limit"),
    ("edit", ["w1"], InvalidArgument, "nothing to edit"),
    ("edit", ["w1", "{bad"], InvalidArgument, "data"),
    ("edit", ["w1", "", "x"], InvalidArgument, "priority"),
    ("edit", ["w1", "", "", "-1"], InvalidArgument, "delay"),
    ("edit", ["w1", "", "", "", '["a{"]'], InvalidArgument, "tags"),
    ("edit", ["ghost", "{}"], JobNotFound, "ghost"),
    ("edit", ["r1", "{}"], WrongState, "running"),
    ("edit", ["d1", "", "3"], WrongState, "depends"),
    ("worker.throughput", ["", 60], InvalidArgument, "worker"),
    ("worker.throughput", ["worker", 121], InvalidArgument, "minutes"),
    ("find", ['{"state": "nonsense"}'], InvalidArgument, "state"),
    ("find", ['{"colour": "red"}'], InvalidArgument, "colour"),
    ("find", ['{"data": [[[], 1]]}'], InvalidArgument, "data"),
    ("find", ['{"since": "x"}'], InvalidArgument, "since"),
    ("find", ["{}", "Zx"], InvalidArgument, "cursor"),
    ("find", ['{"state": "waiting"}', "Bfailed\x00\x001\x001\x00w1"], InvalidArgument, "other filters"),
    ("find", ['{"state": "failed"}', "Bnope\x00\x001\x001\x00w1"], InvalidArgument, "cursor"),
    ("find", ["{}", "", 0], InvalidArgument, "limit"),
    ("find", ["{}", "", 5, 0], InvalidArgument, "read_max"),
    ("find.classes", ["", "", 0], InvalidArgument, "limit"),
    ("find.classes", ["", "", "x"], InvalidArgument, "limit"),
    ("find.match", ['{"state": "nonsense"}', "w1"], InvalidArgument, "state"),
    ("find.match", ["{}", "w1", ""], InvalidArgument, "jid"),
    ("find.match", ["{}", *[f"j{i}" for i in range(501)]], InvalidArgument, "jids"),
    ("find.reindex", ["x", 10], InvalidArgument, "cursor"),
    ("find.reindex", ["0", 0], InvalidArgument, "count"),
]


@pytest.fixture
def world(engine: Client) -> Client:
    """The starting state of every case (see the module docstring)."""
    q = engine.queues["q"]
    q.put("k", {}, jid="r1")
    assert q.pop().jid == "r1"
    q.put("k", {}, jid="f1")
    engine.queues["q"].pop().fail("g", "boom")
    q.put("k", {}, jid="w1")
    q.put("k", {}, jid="d1", depends=["w1"])
    q.recur("k", {}, interval=60, jid="rt", offset=3600)
    engine.throttles["th"].maximum = 2
    engine.workers.register("worker", {"host": "h"})
    return engine


@pytest.mark.parametrize(("command", "args", "error", "word"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_call_names_the_problem_and_changes_nothing(world: Client, unchanged: Callable[..., Any],
                                                        command: str, args: list[Any],
                                                        error: type[QueueEngineError], word: str) -> None:
    err = unchanged(error, world, command, *args)
    assert type(err) is error, f"{command}: expected {error.__name__}, got {type(err).__name__}: {err}"
    assert word.lower() in str(err).lower(), f"{command}: {err} does not mention {word!r}"
    assert err.location and re.match(r"\w+\.lua:\d+$", err.location), err.location


def test_calls_outside_the_convention_are_refused(world: Client, redis_conn: redis.Redis,
                                                  unchanged: Callable[..., Any]) -> None:
    lib = library()
    assert "unknown command" in str(unchanged(InvalidArgument, world, "frobnicate", "x"))
    for now in ("abc", "nan", "inf", "1e999", "0x10", " 5"):
        with pytest.raises(InvalidArgument, match="now must be a number"):
            lib.call(redis_conn, world.prefix, "get", now, "w1")
    send = ((lambda *a: redis_conn.fcall(lib.function_name, *a)) if lib.mode(redis_conn) == "function"
            else (lambda *a: redis_conn.evalsha(lib.sha, *a)))
    for keys in ([], [world.prefix, world.prefix], ["elsewhere:"]):
        with pytest.raises(redis.ResponseError, match="prefix"):
            send(len(keys), *keys, "get", "", "w1")


def test_every_command_has_error_cases() -> None:
    api = (resources.files("queueengine.store") / "lua" / "api.lua").read_text()
    commands = set(re.findall(r"^\s*\['([\w.]+)'\]\s*=", api, re.M))
    assert len(commands) > 50
    covered = {c[0] for c in CASES}
    assert commands - covered == set(), f"commands without error cases: {sorted(commands - covered)}"
