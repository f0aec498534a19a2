"""Search: ``client.jobs.find(...)`` and ``client.jobs.classes(...)`` (the ``find`` commands of
``lua/search.lua``).

``find`` pages through the jobs of a namespace by what they are and what they carry: queue,
state, class (exact, or a prefix ending in ``*``), tag, worker, data path equality
(``{"user.id": 7}``), a substring of the data's JSON and the time of the last change. Each Redis
call does a bounded amount of work (a time budget of about 1 ms and at most ``READ_PER_CALL``
index entries); one ``find()`` makes calls until it has ``limit`` jobs, the cursor runs out, or
``SECONDS_PER_FIND`` have passed, so it may return fewer than ``limit`` jobs with a cursor: call
again with that cursor (and the same arguments) until it is None. Every job that matches for the
whole paging is returned exactly once, however other jobs change meanwhile (docs/engine.md,
"Search").
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from queueengine.exceptions import InvalidArgument
from queueengine.job import Job
from queueengine.operator.rows import check_jids
from queueengine.store import args as _args
from queueengine.types import ClassCount, FindResult, JobPayload, JobState

if TYPE_CHECKING:
    from queueengine.client import Client

FIND_STATES = ("waiting", "scheduled", "depends", "throttled", "running", "stalled", "failed", "complete")
"""The states ``find(state=...)`` takes (a recurring template is not a job: see ``client.views``)."""
MAX_LIMIT = 500
"""Most jobs one ``find()`` returns."""
MAX_DATA_CONDITIONS = 20
READ_PER_CALL = 1000
"""Most class index entries one Redis call reads (the time budget usually stops it sooner)."""
SET_READ_WHOLE = 200
"""A state, tag or worker set at most this large is read whole instead of the class index."""
BUDGET_MS = 1.0
"""Milliseconds of checking one Redis call may spend (it stops at the next entry after that)."""
SECONDS_PER_FIND = 0.25
"""One ``find()`` stops making calls after this long and returns what it has, with a cursor."""

TimeArg = float | int | dt.datetime | None


def _epoch(value: TimeArg, arg: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidArgument(f"{arg}: a datetime must carry its timezone, got {value!r}")
        return value.timestamp()
    return _args.number(value, arg, None)


def _klass(klass: Any) -> tuple[str, bool] | None:
    if klass is None:
        return None
    if isinstance(klass, str):
        if not klass or klass == "*":
            raise InvalidArgument(f"klass must be a class name or a prefix ending in '*', got {klass!r}")
        return (klass[:-1], True) if klass.endswith("*") else (klass, False)
    return _args.klass_path(klass), False


def _data(data: Mapping[str, Any] | None) -> list[tuple[list[str], Any]]:
    if data is None:
        return []
    if not isinstance(data, Mapping) or not data:
        raise InvalidArgument(f"data must be a non-empty dict of dotted path -> JSON value, got {data!r}")
    if len(data) > MAX_DATA_CONDITIONS:
        raise InvalidArgument(f"data: at most {MAX_DATA_CONDITIONS} conditions, got {len(data)}")
    out: list[tuple[list[str], Any]] = []
    for path, value in data.items():
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise InvalidArgument(f"data: a path is dot-separated keys (user.id), got {path!r}")
        _args.dumps(value, f"data.{path}")
        out.append((path.split("."), value))
    return out


def find_filters(*, queue: str | None = None, state: str | JobState | None = None, klass: Any = None,
                 tag: str | None = None, worker: str | None = None, data: Mapping[str, Any] | None = None,
                 text: str | None = None, since: TimeArg = None, until: TimeArg = None) -> dict[str, Any]:
    """The ``find`` command's filters from ``find()``'s arguments; InvalidArgument naming the
    first bad one (nothing is sent)."""
    f: dict[str, Any] = {}
    for name, value in (("queue", queue), ("tag", tag), ("worker", worker)):
        if value is not None:
            f[name] = _args.existing_name(value, name)
    if state is not None:
        value = state.value if isinstance(state, JobState) else state
        if value not in FIND_STATES:
            raise InvalidArgument(f"state must be one of {', '.join(FIND_STATES)}; got {state!r}")
        f["state"] = value
    k = _klass(klass)
    if k is not None:
        f["klass"], f["prefix"] = k
    conditions = _data(data)
    if conditions:
        f["data"] = conditions
    if text is not None:
        if not isinstance(text, str) or not text:
            raise InvalidArgument(f"text must be a non-empty string, got {text!r}")
        f["text"] = text
    lo, hi = _epoch(since, "since"), _epoch(until, "until")
    if lo is not None and hi is not None and lo > hi:
        raise InvalidArgument(f"since ({lo}) must not be after until ({hi})")
    if lo is not None:
        f["since"] = lo
    if hi is not None:
        f["until"] = hi
    return f


def encode_cursor(raw: bytes | None) -> str | None:
    """The opaque cursor string of the Lua cursor bytes."""
    if raw is None:
        return None
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> bytes:
    """The Lua cursor bytes of a cursor string (b'' for None)."""
    if cursor is None:
        return b""
    if not isinstance(cursor, str) or not cursor:
        raise InvalidArgument(f"cursor must be a string find() returned, got {cursor!r}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"cursor is not a cursor find() returned: {cursor[:40]!r}") from None
    if raw[:1] not in (b"A", b"B"):
        raise InvalidArgument(f"cursor is not a cursor find() returned: {cursor[:40]!r}")
    return raw


def find(client: Client, *, queue: str | None = None, state: str | JobState | None = None, klass: Any = None,
         tag: str | None = None, worker: str | None = None, data: Mapping[str, Any] | None = None,
         text: str | None = None, since: TimeArg = None, until: TimeArg = None, limit: int = 25,
         cursor: str | None = None) -> FindResult:
    """See ``Jobs.find``."""
    filters = find_filters(queue=queue, state=state, klass=klass, tag=tag, worker=worker, data=data, text=text,
                           since=since, until=until)
    limit = _args.integer(limit, "limit", 1, MAX_LIMIT)
    raw_cursor = decode_cursor(cursor)
    body = _args.dumps(filters, "filters")
    jobs: list[Job] = []
    scanned = 0
    deadline = time.monotonic() + SECONDS_PER_FIND
    while True:
        reply = client._call("find", body, raw_cursor, limit - len(jobs), READ_PER_CALL, SET_READ_WHOLE,
                             repr(BUDGET_MS))
        page = _args.loads(reply[0])
        jobs.extend(Job(client, cast(JobPayload, p)) for p in page["jobs"])
        scanned += int(page["scanned"])
        nxt = reply[1] if len(reply) > 1 else None
        if nxt is None or len(jobs) >= limit or time.monotonic() >= deadline:
            return {"jobs": jobs, "cursor": encode_cursor(nxt), "scanned": scanned}
        raw_cursor = nxt


FILTER_NAMES = ("queue", "state", "klass", "tag", "worker", "data", "text", "since", "until")
"""The filters of ``find`` (the arguments ``match`` takes by name)."""


def match(client: Client, jids: Sequence[str], filters: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """See ``Operator.matching``: (jids that match now, jids not found), both in the order given."""
    unknown = sorted(set(filters) - set(FILTER_NAMES))
    if unknown:
        raise InvalidArgument(f"filters: unknown filter {unknown[0]!r} (use {', '.join(FILTER_NAMES)})")
    body = _args.dumps(find_filters(**filters), "filters")
    checked = check_jids(jids)
    if not checked:
        return [], []
    reply = _args.loads(client._call("find.match", body, *checked))
    return list(reply["matching"]), list(reply["missing"])


def classes(client: Client, queue: str | None = None, prefix: str = "", limit: int = 50) -> list[ClassCount]:
    """See ``Jobs.classes``."""
    q = _args.existing_name(queue, "queue") if queue is not None else ""
    if not isinstance(prefix, str):
        raise InvalidArgument(f"prefix must be a string, got {prefix!r}")
    limit = _args.integer(limit, "limit", 1, MAX_LIMIT)
    pairs = _args.loads(client._call("find.classes", q, prefix, limit))
    return [{"klass": k, "count": int(n)} for k, n in pairs]


def reindex(client: Client, count: int = 1000, progress: Callable[[int], Any] | None = None) -> int:
    """See ``Jobs.reindex``."""
    count = _args.integer(count, "count", 1, 100_000)
    cursor: bytes | str = "0"
    total = 0
    while True:
        nxt, done = client._call("find.reindex", cursor, count)
        total += int(done)
        if progress is not None:
            progress(total)
        cursor = nxt
        if cursor in (b"0", "0"):
            return total

