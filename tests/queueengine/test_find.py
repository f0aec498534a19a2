"""Search: ``client.jobs.find`` against a brute-force reference (generated jobs, states, tags and
data; every match exactly once across pages, also while jobs change between pages), cursors and
bad arguments, and ``client.operator.matching``. The class index itself: test_class_index.py;
``due_at``, ``job.edit`` and the per-worker counters: test_due_and_edit.py."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueengine import Client, InvalidArgument, Job, WrongState
from queueengine.devtools.testing import ManualClock
from queueengine.operator import search

from .search_reference import (
    CLASSES,
    NAMES,
    QUEUES,
    TAGS,
    all_jids,
    index_problems,
    matches,
    page_all,
    reference,
)


@pytest.fixture
def tiny_calls() -> Iterator[Callable[..., None]]:
    """``tiny_calls(read, whole, budget_ms=None)``: make each Redis call read at most ``read``
    index entries and read a set whole only up to ``whole`` entries (and, with ``budget_ms``,
    work that long), so a few jobs take many calls, or many rounds in one call, and every
    source is used."""
    saved = search.READ_PER_CALL, search.SET_READ_WHOLE, search.BUDGET_MS

    def set_(read: int, whole: int, budget_ms: float | None = None) -> None:
        search.READ_PER_CALL, search.SET_READ_WHOLE = read, whole
        if budget_ms is not None:
            search.BUDGET_MS = budget_ms

    yield set_
    search.READ_PER_CALL, search.SET_READ_WHOLE, search.BUDGET_MS = saved


# ---------------------------------------------------------------------- generated worlds
job_spec = st.fixed_dictionaries({
    "queue": st.sampled_from(QUEUES), "klass": st.sampled_from(CLASSES),
    "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
    "data": st.fixed_dictionaries({"user": st.fixed_dictionaries({"id": st.integers(0, 3)}),
                                   "name": st.sampled_from(NAMES)}),
    "fate": st.sampled_from(["waiting", "scheduled", "running", "complete", "failed", "depends"]),
    "priority": st.integers(-2, 2),
})

FILTER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "queue": st.sampled_from(QUEUES),
    "state": st.sampled_from(["waiting", "scheduled", "running", "stalled", "complete", "failed", "depends"]),
    "klass": st.sampled_from([*CLASSES, "app.S*", "app.*"]),
    "tag": st.sampled_from(TAGS),
    "worker": st.sampled_from(["worker", "another"]),
    "data": st.sampled_from([{"user.id": 1}, {"name": "bob"}, {"user.id": 2, "name": "al"}, {"user": {"id": 0}}]),
    "text": st.sampled_from(["bo", '"id":3', "al"]),
    "since": st.sampled_from([0.05, 1.0]),
    "until": st.sampled_from([2.0, 100.0]),
}
filters = st.lists(st.sampled_from(sorted(FILTER_VALUES)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: FILTER_VALUES[k] for k in keys}))
"""At most three filters at a time (more would match almost nothing in a small world)."""

mutation = st.tuples(st.sampled_from(["pop", "complete", "fail", "retry", "move", "cancel", "put", "priority",
                                      "tag", "untag", "edit", "stall", "advance", "delay"]),
                     st.integers(0, 10_000))


def build(client: Client, other: Client, specs: list[dict[str, Any]], clock: ManualClock) -> None:
    """Jobs with the given fates, in order (a depends job waits on the job put before it)."""
    previous: str | None = None
    for spec in specs:
        q = client.queues[spec["queue"]]
        fate = spec["fate"]
        depends = [previous] if fate == "depends" and previous else []
        jid = q.put(spec["klass"], spec["data"], tags=spec["tags"], priority=spec["priority"],
                    delay=60 if fate == "scheduled" else 0, depends=depends, retries=1)
        clock.advance(0.01)
        if fate in ("running", "complete", "failed"):
            popper = other if spec["data"]["user"]["id"] % 2 else client
            for job in popper.pop_from([spec["queue"]], 50):
                if job.jid != jid:
                    job.release()
                    continue
                if fate == "complete":
                    job.complete({"ok": True})
                elif fate == "failed":
                    job.fail(f"{spec['queue']}-Error", "it broke")
            clock.advance(0.01)
        previous = jid


def _finish(client: Client, job: Job, pick: int, kind: str) -> None:
    if job.state.value in ("running", "stalled"):
        job.holder = job.worker
        job.complete({"n": pick}) if kind == "complete" else job.fail("x-Error", "boom")
    elif kind == "complete" and job.state.value == "waiting":
        for popped in client.pop_from([job.queue_name], 1):
            popped.complete(next_queue=QUEUES[pick % 3])   # advance into a queue


def _when(states: tuple[str, ...], change: Callable[[Client, Job, int], Any]) -> Callable[[Client, Job, int], Any]:
    """``change`` only for a job in one of ``states`` (empty: any state)."""
    return lambda client, job, pick: change(client, job, pick) if not states or job.state.value in states else None


_WAITING = ("waiting", "scheduled")
MUTATIONS: dict[str, Callable[[Client, Job, int], Any]] = {
    "pop": lambda client, job, pick: client.pop_from([job.queue_name], 1 + pick % 3),
    "complete": lambda client, job, pick: _finish(client, job, pick, "complete"),
    "fail": lambda client, job, pick: _finish(client, job, pick, "fail"),
    "retry": _when(("failed",), lambda client, job, pick: client.unfail(job.failure["group"], QUEUES[pick % 3], 1)),
    "move": lambda client, job, pick: None if job.state.value in ("running", "stalled") else job.move(QUEUES[pick % 3]),
    "cancel": lambda client, job, pick: client.cancel(job.jid),
    "priority": lambda client, job, pick: None if job.state.value == "complete" else setattr(job, "priority",
                                                                                           pick % 5 - 2),
    "tag": lambda client, job, pick: job.tag(TAGS[pick % 2]),
    "untag": lambda client, job, pick: job.untag(job.tags[0]) if job.tags else None,
    "edit": _when(_WAITING, lambda client, job, pick: job.edit(data={"user": {"id": pick % 4},
                                                                     "name": NAMES[(pick + 1) % 3]})),
    "delay": _when(_WAITING, lambda client, job, pick: job.edit(delay=(pick % 3) * 30)),
    "advance": lambda client, job, pick: client.housekeep(),
}
"""What a change of each kind does to the job it picked (as the operators and workers make them)."""


def mutate(client: Client, conn: redis.Redis, clock: ManualClock, kind: str, pick: int) -> None:
    """One change to a job picked by ``pick`` (or a new job), as the operators and workers make them."""
    clock.advance(0.013)
    jids = all_jids(conn, client)
    if kind == "put" or not jids:
        client.queues[QUEUES[pick % 3]].put(CLASSES[pick % 4], {"user": {"id": pick % 4}, "name": NAMES[pick % 3]},
                                           tags=[TAGS[pick % 2]])
        return
    if kind == "stall":
        clock.advance(70)   # leases (60 s) expire: running jobs read as stalled
        return
    job = client.jobs.get(jids[pick % len(jids)])[0]
    with contextlib.suppress(WrongState):   # e.g. canceling a job another job depends on: refused
        MUTATIONS[kind](client, job, pick)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=st.lists(job_spec, min_size=3, max_size=30), f=filters, limit=st.integers(1, 4), read=st.integers(1, 12),
       whole=st.integers(0, 12), budget=st.sampled_from([1.0, 1000.0]),
       mutations=st.lists(st.lists(mutation, max_size=3), max_size=12))
def test_find_returns_every_match_once_while_jobs_change(
        engine: Client, other: Client, redis_conn: redis.Redis, clock: ManualClock, tiny_calls: Any,
        specs: list[dict[str, Any]], f: dict[str, Any], limit: int, read: int, whole: int, budget: float,
        mutations: list[list[tuple[str, int]]]) -> None:
    """Against the brute-force reference: a job that matches at every page boundary is returned
    exactly once, no job is returned twice, and each job returned matched when it was returned."""
    redis_conn.flushdb()
    clock.set(1_700_000_000.0)
    start = clock.now
    build(engine, other, specs, clock)
    tiny_calls(read, whole, budget)
    f = dict(f)
    for key in ("since", "until"):
        if key in f:
            f[key] = start + f[key]
    throughout = reference(redis_conn, engine, f)
    returned: list[str] = []
    cursor = None
    steps = iter(mutations)
    while True:
        page = engine.jobs.find(**f, limit=limit, cursor=cursor)
        for job in page["jobs"]:
            raw = redis_conn.hget(engine.keys.job(job.jid), "data")
            assert matches(job, orjson.dumps(job.data).decode() if raw is None else raw.decode(), f), job
        returned.extend(j.jid for j in page["jobs"])
        cursor = page["cursor"]
        if cursor is None:
            break
        for kind, pick in next(steps, []):
            mutate(engine, redis_conn, clock, kind, pick)
        throughout &= reference(redis_conn, engine, f)
    throughout &= reference(redis_conn, engine, f)
    assert len(returned) == len(set(returned)), f"returned twice: {[j for j in returned if returned.count(j) > 1]}"
    assert throughout <= set(returned), f"missed {throughout - set(returned)}"
    assert index_problems(redis_conn, engine) == []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(job_spec, min_size=1, max_size=60), f=filters, limit=st.integers(1, 30),
       read=st.sampled_from([1, 2, 3, 5, 8, 13, 1000]), whole=st.sampled_from([0, 5, 200]),
       noise=st.integers(0, 400), seed=st.integers(0, 2**16), budget=st.sampled_from([1.0, 1000.0]))
def test_find_on_a_quiet_namespace_is_the_reference(engine: Client, other: Client, redis_conn: redis.Redis,
                                                    clock: ManualClock, tiny_calls: Any, specs: list[dict[str, Any]],
                                                    f: dict[str, Any], limit: int, read: int, whole: int,
                                                    noise: int, seed: int, budget: float) -> None:
    """Nothing changing: the pages together are exactly the reference set, whatever each call
    may read; queues of uneven sizes full of jobs no data filter matches make calls go through
    many rounds without a match."""
    redis_conn.flushdb()
    clock.set(1_700_000_000.0)
    build(engine, other, specs, clock)
    import random

    rnd = random.Random(seed)
    spread = [(rnd.choice(QUEUES[: 1 + seed % 3]), rnd.choice(CLASSES)) for _ in range(noise)]
    for queue in QUEUES:
        engine.queues[queue].put_many([(klass, {"user": {"id": 9}, "name": "zz"}) for q, klass in spread if q == queue])
    tiny_calls(read, whole, budget)
    f = {k: (1_700_000_000.0 + v if k in ("since", "until") else v) for k, v in f.items()}
    got, _ = page_all(engine, f, limit)
    assert sorted(got) == sorted(reference(redis_conn, engine, f))
    scanned, cursor = 0, None   # a data scan that matches nothing looks at every job exactly once
    while True:
        page = engine.jobs.find(data={"user.id": -5}, cursor=cursor)
        scanned, cursor = scanned + page["scanned"], page["cursor"]
        if cursor is None:
            break
    assert scanned == len(all_jids(redis_conn, engine))


def test_pages_follow_the_cursor_across_queues_and_sources(engine: Client, redis_conn: redis.Redis,
                                                          tiny_calls: Any) -> None:
    """300 jobs in three queues read 7 entries per call: the class index merged over the queues,
    the failed set read whole or walked in failure order, a tag set: each page picks up exactly
    where the last stopped."""
    for i in range(300):
        engine.queues[QUEUES[i % 3]].put(CLASSES[i % 4], {"i": i, "user": {"id": i % 5}}, tags=["t"] if i % 7 else [])
    for job in engine.pop_from(QUEUES, 40):
        job.fail("g", "boom")
    for whole in (0, 100):
        tiny_calls(7, whole)
        for f in ({}, {"klass": "app.S*"}, {"state": "failed"}, {"tag": "t", "data": {"user.id": 2}},
                  {"state": "waiting", "klass": "z"}):
            got, pages = page_all(engine, f, 5)
            assert sorted(got) == sorted(reference(redis_conn, engine, f)), f
            assert pages >= len(got) / 5


def test_a_job_moved_between_queues_is_returned_once(engine: Client, redis_conn: redis.Redis, tiny_calls: Any) -> None:
    """Jobs moving from a queue the pages have not reached into one they have passed (and back)
    keep their place in the order: each is returned once."""
    tiny_calls(2, 0)
    jids = [engine.queues["a"].put("app.K", {"i": i}) for i in range(20)]
    seen: list[str] = []
    cursor = None
    moves = iter(range(100))
    while True:
        page = engine.jobs.find(klass="app.K", limit=1, cursor=cursor)
        seen.extend(j.jid for j in page["jobs"])
        cursor = page["cursor"]
        if cursor is None:
            break
        n = next(moves)
        engine.jobs[jids[n % 20]].move("b" if n % 2 else "a")   # type: ignore[union-attr]
    assert sorted(seen) == sorted(jids)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize(("kwargs", "named"), [
    ({"state": "nonsense"}, "state"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "5"}, "limit"),
    ({"klass": ""}, "klass"), ({"klass": "*"}, "klass"), ({"queue": ""}, "queue"), ({"tag": 5}, "tag"),
    ({"worker": ""}, "worker"), ({"data": {}}, "data"), ({"data": {"": 1}}, "data"), ({"data": {"a..b": 1}}, "data"),
    ({"data": {"a": float("nan")}}, "data.a"), ({"data": [("a", 1)]}, "data"), ({"text": ""}, "text"),
    ({"since": "yesterday"}, "since"), ({"until": float("inf")}, "until"), ({"since": 10, "until": 5}, "since"),
    ({"since": dt.datetime(2026, 1, 1)}, "since"), ({"cursor": "!!"}, "cursor"), ({"cursor": ""}, "cursor"),
    ({"cursor": "QUJD"}, "cursor"),
])
def test_bad_arguments_name_the_argument_and_change_nothing(engine: Client, unchanged: Any, kwargs: dict[str, Any],
                                                           named: str) -> None:
    engine.queues["q"].put("app.K", {"a": 1})
    error = unchanged(InvalidArgument, engine.jobs.find, **kwargs)
    assert named in str(error)


def test_raw_calls_get_the_same_checks(engine: Client, unchanged: Any) -> None:
    """The Lua command checks what Python checks (another client may call it directly)."""
    for filters, cursor in (('{"state": "nope"}', ""), ('{"colour": "red"}', ""), ('{"data": [[[], 1]]}', ""),
                            ("{}", "Xgarbage"), ("{}", "Bfailed\x00\x001\x001\x00j"), ("[1", "")):
        unchanged(InvalidArgument, engine, "find", filters, cursor, 10, "", "", "")


def test_a_cursor_belongs_to_its_filters(engine: Client, tiny_calls: Any) -> None:
    """A cursor that walks the failed set in failure order refuses to serve another query."""
    q = engine.queues["q"]
    for i in range(30):
        q.put("app.K", {"i": i})
    for job in q.pop(30):
        job.fail("g", "x")
    for i in range(30):
        q.put("app.K", {"i": i})   # the failed set is the smaller source
    tiny_calls(5, 0)
    page = engine.jobs.find(state="failed", limit=2)
    assert page["cursor"] is not None and len(page["jobs"]) == 2
    with pytest.raises(InvalidArgument, match="cursor"):
        engine.jobs.find(state="waiting", cursor=page["cursor"])
    assert len(engine.jobs.find(state="failed", cursor=page["cursor"], limit=100)["jobs"]) == 28


def test_klass_accepts_the_class_itself_and_datetimes_are_epochs(engine: Client, clock: ManualClock) -> None:
    jid = engine.queues["q"].put(test_klass_accepts_the_class_itself_and_datetimes_are_epochs, {})
    got = engine.jobs.find(klass=test_klass_accepts_the_class_itself_and_datetimes_are_epochs)
    assert [j.jid for j in got["jobs"]] == [jid]
    when = dt.datetime.fromtimestamp(clock.now, tz=dt.UTC)
    assert [j.jid for j in engine.jobs.find(since=when - dt.timedelta(seconds=1))["jobs"]] == [jid]
    assert engine.jobs.find(since=when + dt.timedelta(seconds=1))["jobs"] == []


def test_data_paths_reach_into_lists_and_compare_json_values(engine: Client) -> None:
    q = engine.queues["q"]
    a = q.put("app.K", {"items": [{"sku": "x-1"}, {"sku": "y/2"}], "n": 7, "flag": None, "deep": {"l": [1, 2]}})
    b = q.put("app.K", {"items": [], "n": 7.0, "flag": False, "deep": {"l": [1]}})
    find = engine.jobs.find
    assert [j.jid for j in find(data={"items.1.sku": "y/2"})["jobs"]] == [a]
    assert sorted(j.jid for j in find(data={"n": 7})["jobs"]) == sorted([a, b])
    assert [j.jid for j in find(data={"flag": None})["jobs"]] == [a]
    assert [j.jid for j in find(data={"flag": False})["jobs"]] == [b]
    assert [j.jid for j in find(data={"deep": {"l": [1, 2]}})["jobs"]] == [a]
    assert find(data={"missing": None})["jobs"] == []
    assert [j.jid for j in find(text='"sku":"x-1"')["jobs"]] == [a]


def test_jobs_that_fail_again_between_pages_are_not_returned_twice(engine: Client, clock: ManualClock,
                                                                  tiny_calls: Any) -> None:
    """Walking a large failed set in failure order: jobs retried and failed again meanwhile come
    back with a later failure time, after the walk's start, and are not returned a second time;
    the jobs that stayed failed are all returned."""
    q = engine.queues["q"]
    for i in range(40):
        q.put("app.K", {"i": i}, retries=0)
        clock.advance(0.01)
    for job in q.pop(40):
        job.fail("g", "first")
        clock.advance(0.01)
    for i in range(60):
        q.put("app.Other", {"i": i})
    tiny_calls(4, 0)
    returned: list[str] = []
    cursor = None
    while True:
        page = engine.jobs.find(state="failed", limit=3, cursor=cursor)
        returned.extend(j.jid for j in page["jobs"])
        cursor = page["cursor"]
        if cursor is None:
            break
        assert search.decode_cursor(cursor).startswith(b"Bfailed\0")   # the failed set, in failure order
        clock.advance(1)
        engine.unfail("g", "q", 2)            # the oldest two (returned first) run and fail again
        for job in engine.pop_from(["q"], 2):
            job.fail("g", "again")
    assert len(returned) == len(set(returned)) and len(returned) >= 40 - 2 * 14
    stayed = {j.jid for j in engine.jobs.failed("g", 0, 100)["jobs"] if j.failure and j.failure["message"] == "first"}
    assert stayed <= set(returned)


@pytest.mark.parametrize(("raw", "data", "hit"), [
    ('{"user" : {"id" :  7}}', {"user.id": 7}, True),
    ('{"user": {"id": 7.0}}', {"user.id": 7}, True),
    ('{"user": {"id": 7e0}}', {"user.id": 7}, True),
    ('{"user": {"id": 70e-1}}', {"user.id": 7}, True),
    ('{"user": {"id": 8}, "id": 7}', {"user.id": 7}, False),
    ('{"id": 7, "user": {"id": 8}}', {"user.id": 7}, False),
    ('{"name": "a\\"b"}', {"name": 'a"b'}, True),
    ('{"name": "a\\u0062"}', {"name": "ab"}, True),
    ('{"name": "ab"}', {"name": "a"}, False),
    ('{"ok":true, "none" :null}', {"ok": True, "none": None}, True),
    ('{"ok": false}', {"ok": True}, False),
    ('{"tags": ["a", "b"]}', {"tags": ["a", "b"]}, True),
    ('{"x": {"id": 1}, "label": "\\"id\\": 9"}', {"x.id": 1}, True),
])
def test_data_written_by_any_json_encoder_is_matched(engine: Client, redis_conn: redis.Redis, raw: str,
                                                      data: dict[str, Any], hit: bool) -> None:
    """The text is looked at before the document is decoded, never at the cost of a match: spaces,
    other number spellings, escapes, keys elsewhere in the document."""
    jid = engine.queues["q"].put("app.K", {})
    redis_conn.hset(engine.keys.job(jid), "data", raw)   # as another client wrote it
    assert [j.jid for j in engine.jobs.find(data=data)["jobs"]] == ([jid] if hit else [])


@pytest.mark.parametrize("read", [1000, 50, 13, 7, 2])
def test_every_index_entry_is_looked_at_once_across_queues(engine: Client, redis_conn: redis.Redis,
                                                          tiny_calls: Any, read: int) -> None:
    """Four queues of uneven sizes read in rounds: a queue that runs out within a round whose
    bound comes from another queue is read on until its last entry (the scan looks at every
    job once), and sparse matches are all found."""
    import random

    rnd = random.Random(read)
    sizes = {"a": 0, "b": 0, "c": 0, "d": 0}
    for i in range(1200):
        queue = rnd.choice("aabbbcd")
        sizes[queue] += 1
        engine.queues[queue].put(f"k{rnd.randrange(3)}", {"i": i})
    tiny_calls(read, 0, 1000.0)   # many rounds in one call
    scanned, cursor = 0, None
    while True:
        page = engine.jobs.find(data={"i": -1}, cursor=cursor)
        scanned += page["scanned"]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert scanned == 1200
    got, _ = page_all(engine, {"text": '"i":1'}, 7)   # i = 1, 10-19, 100-199, 1000-1199
    assert len(got) == 1 + 10 + 100 + 200 and sorted(got) == sorted(reference(redis_conn, engine, {"text": '"i":1'}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(job_spec, min_size=1, max_size=30), f=filters)
def test_matching_checks_given_jobs_as_find_does(engine: Client, other: Client, redis_conn: redis.Redis,
                                                 clock: ManualClock, specs: list[dict[str, Any]],
                                                 f: dict[str, Any]) -> None:
    """``client.operator.matching(jids, **filters)``: exactly the given jobs the reference says
    match, in the order given, and the jids that are gone (what bulk-on-match re-checks)."""
    redis_conn.flushdb()
    clock.set(1_700_000_000.0)
    build(engine, other, specs, clock)
    f = {k: (1_700_000_000.0 + v if k in ("since", "until") else v) for k, v in f.items()}
    jids = all_jids(redis_conn, engine)
    with contextlib.suppress(WrongState):   # a job gone since the search (unless others depend on it)
        engine.cancel(jids[-1])
    asked = [*reversed(jids), "ghost/1"]
    matching, missing = engine.operator.matching(asked, **f)
    wanted = reference(redis_conn, engine, f)
    assert matching == [j for j in asked if j in wanted]
    assert set(missing) == {"ghost/1"} | ({jids[-1]} if jids[-1] not in engine.jobs else set())
    assert missing == [j for j in asked if j in set(missing)]


def test_matching_refuses_bad_filters_and_too_many_jids(engine: Client, unchanged: Any) -> None:
    jid = engine.queues["q"].put("app.K", {"a": 1})
    assert engine.operator.matching([jid]) == ([jid], [])
    assert engine.operator.matching([]) == ([], [])
    for kwargs, named in (({"state": "nonsense"}, "state"), ({"colour": "red"}, "colour"), ({"limit": 5}, "limit"),
                          ({"data": {}}, "data")):
        assert named in str(unchanged(InvalidArgument, engine.operator.matching, [jid], **kwargs))
    assert "jids" in str(unchanged(InvalidArgument, engine.operator.matching, [f"j{i}" for i in range(501)]))
    assert "jids" in str(unchanged(InvalidArgument, engine.operator.matching, "abc"))
