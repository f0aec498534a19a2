"""Operations on many jobs, in chunks, in the background: a failure group's retry-all, cancel-all
and move-all, and the explorer's "act on all matching" (retry, cancel, move, priority, tags).

Neither may block Redis or time out a request: the request starts an operation and returns at
once; a thread of the server process works through the jobs CHUNK at a time, one
``client.operator`` call per chunk, and records its progress with ``client.operator.progress``
(``qe:{ns}:dash:op:<id>``, kept a day), which the pages show and the live bridge pushes (a
``dashboard.op`` event, ``client.events.publish``). One runner serves both kinds; where the jobs
come from is the operation's *source*:

* a failure group (``GroupSource``): how many jobs is fixed when it starts, and each chunk is the
  group's oldest failures (``client.operator.group_jids``), so jobs that fail again while it runs
  are not picked up a second time (Sidekiq's "retry all" loop);
* a query of the explorer (``MatchSource``): the set of jobs is fixed when it starts, by paging
  ``client.jobs.find`` to the end and keeping the jids (state ``finding``); a job that starts
  matching later is never touched. Before each chunk one ``client.operator.matching`` call
  re-checks the chunk with find's own filters: a job that no longer matches (or is gone) is
  skipped with that reason, the rest get the action.

Jobs the engine refuses are skipped and counted by reason. An operation can be stopped from any
server process (``request_stop`` sets a flag in its record; the thread stops before its next
chunk: state ``canceled``). A running operation whose record has not moved for STALE_AFTER
seconds and has no thread here shows as ``interrupted`` (its server stopped). Each operation has
one audit entry: written when it starts, completed by the thread when it ends.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connections

from jobadmin import actions, audit
from queueengine import Client, InvalidArgument, QueueEngineError
from queueengine.operator import BulkResult, check_name, check_names, check_priority

log = logging.getLogger(__name__)

CHUNK = 500
OP_TTL = 86400
STALE_AFTER = 30.0
"""A running operation whose progress has not moved for this long is shown as interrupted."""
KINDS = ("retry", "cancel", "move")
"""What a failure group operation does."""
MATCH_KINDS = ("retry", "cancel", "move", "priority", "tag", "untag")
"""What an "act on all matching" operation does (each needs the permission of that action)."""
MAX_MATCHES = 1_000_000
"""Most jobs one "act on all matching" takes on (their jids are held in memory while it runs)."""
FIND_PAGE = 500
NO_LONGER_MATCHES = "no longer matches the query"
GONE = "not found"
RUNNING_STATES = ("finding", "running")
AUDIT_SAMPLE = audit.MAX_JIDS

before_chunk: Callable[[str, int], None] | None = None
"""Test seam: called with (operation id, chunk number from 0) before each chunk is taken (and
before the stop flag is read), in the operation's thread."""

_threads: dict[str, threading.Thread] = {}


class Stopped(Exception):
    """The operation was asked to stop."""


# ---------------------------------------------------------------------- what to do
@dataclass(frozen=True)
class Action:
    """What an operation does to each chunk: ``kind`` and its argument (a queue, a priority, tags)."""

    kind: str
    queue: str = ""
    priority: int = 0
    tags: tuple[str, ...] = ()

    @classmethod
    def make(cls, kind: str, *, queue: str | None = None, priority: Any = None, tags: Sequence[str] = (),
             kinds: Sequence[str] = MATCH_KINDS) -> Action:
        """A checked action (InvalidArgument naming what is missing or bad)."""
        if kind not in kinds:
            raise InvalidArgument(f"action must be one of {', '.join(kinds)}, got {kind!r}")
        if kind == "move":
            if not queue:
                raise InvalidArgument("queue: name the queue to move the jobs to")
            return cls(kind, queue=check_name(queue, "queue"))
        if kind == "priority":
            try:
                number = int(str(priority).strip())
            except ValueError:
                raise InvalidArgument(f"priority must be a whole number, got {priority!r}") from None
            return cls(kind, priority=check_priority(number))
        if kind in ("tag", "untag"):
            if not tags:
                raise InvalidArgument("tags: give at least one tag")
            return cls(kind, tags=tuple(check_names(list(tags), "tags")))
        return cls(kind)

    def apply(self, client: Client, jids: Sequence[str]) -> BulkResult:
        """One ``client.operator`` call on ``jids``."""
        op = client.operator
        if self.kind == "retry":
            return op.retry(jids)
        if self.kind == "cancel":
            return op.cancel(jids)
        if self.kind == "move":
            return op.move(jids, self.queue)
        if self.kind == "priority":
            return op.set_priority(jids, self.priority)
        return op.tag(jids, self.tags) if self.kind == "tag" else op.untag(jids, self.tags)

    @property
    def value(self) -> str:
        """The argument as text (the record's ``value``)."""
        if self.kind == "move":
            return self.queue
        if self.kind == "priority":
            return str(self.priority)
        return ", ".join(self.tags)

    def sentence(self, what: str) -> str:
        """What it does to ``what`` ("every job matching ..."), as a sentence."""
        return phrase(self.kind, self.value, what)


def phrase(kind: str, value: str, what: str) -> str:
    """``Retry <what>``, ``Move <what> to queue <value>``, ``Add tags <value> to <what>``, ..."""
    plural = "s" if "," in value else ""
    return {"retry": f"Retry {what}", "cancel": f"Cancel (delete) {what}", "move": f"Move {what} to queue {value}",
            "priority": f"Set priority {value} on {what}", "tag": f"Add tag{plural} {value} to {what}",
            "untag": f"Remove tag{plural} {value} from {what}"}.get(kind, f"{kind} {what}")


# ---------------------------------------------------------------------- where the jobs come from
class Source(Protocol):
    """Where an operation's jobs come from."""

    scope: str

    def prepare(self, client: Client, report: Callable[[int], None]) -> int:
        """Fix the jobs to handle (``report(found so far)`` while it looks); returns how many."""
        ...

    def next_chunk(self, client: Client, size: int, done: int, skipped: int) -> tuple[list[str], list[tuple[str, str]]]:
        """The next jids to act on and the jids skipped before acting (with why); both empty
        when there is nothing left."""
        ...


@dataclass
class GroupSource:
    """A failure group: its size when the operation starts, taken oldest failure first."""

    group: str
    total: int = 0
    scope: str = "group"

    def prepare(self, client: Client, report: Callable[[int], None]) -> int:
        """The group's size was counted when the operation was started."""
        return self.total

    def next_chunk(self, client: Client, size: int, done: int, skipped: int) -> tuple[list[str], list[tuple[str, str]]]:
        """The oldest jobs of the group; skipped ones stay in it, so skip past them."""
        left = self.total - done - skipped
        if left <= 0:
            return [], []
        return client.operator.group_jids(self.group, skip=skipped, count=min(size, left)), []


@dataclass
class MatchSource:
    """The jobs ``client.jobs.find(**filters)`` returns when the operation starts."""

    filters: dict[str, Any]
    stop: Callable[[], bool] = lambda: False
    jids: list[str] = field(default_factory=list)
    position: int = 0
    scope: str = "match"

    def prepare(self, client: Client, report: Callable[[int], None]) -> int:
        """Page through ``find`` to the end, keeping every jid once."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            if self.stop():
                raise Stopped
            page = client.jobs.find(**self.filters, limit=FIND_PAGE, cursor=cursor)
            for job in page["jobs"]:
                if job.jid not in seen:
                    seen.add(job.jid)
                    self.jids.append(job.jid)
            if len(self.jids) > MAX_MATCHES:
                raise InvalidArgument(f"more than {MAX_MATCHES:,} jobs match: narrow the query")
            report(len(self.jids))
            cursor = page["cursor"]
            if cursor is None:
                return len(self.jids)

    def next_chunk(self, client: Client, size: int, done: int, skipped: int) -> tuple[list[str], list[tuple[str, str]]]:
        """The next jids that still match (one ``client.operator.matching`` call)."""
        chunk = self.jids[self.position:self.position + size]
        self.position += len(chunk)
        if not chunk:
            return [], []
        matching, missing = client.operator.matching(chunk, **self.filters)
        keep, gone = set(matching), set(missing)
        skipped_now = [(jid, GONE if jid in gone else NO_LONGER_MATCHES) for jid in chunk if jid not in keep]
        return matching, skipped_now


# ---------------------------------------------------------------------- starting
def start(client: Client, kind: str, group: str, queue: str | None, user: str,
          actor: audit.Actor | None = None) -> dict[str, Any]:
    """Start a failure group operation (retry, cancel or move every job of ``group``); returns
    its record. Nothing runs when an argument is bad. With ``actor``, one audit entry."""
    action = Action.make(kind, queue=queue, kinds=KINDS)
    check_name(group, "group", existing=True)
    total = client.operator.group_size(group)
    if total == 0:
        raise InvalidArgument(f"group {group!r} has no failed jobs")
    fields = {"scope": "group", "group": group, "total": total, "state": "running"}
    target, detail = group, f"every job of failure group {group}"
    return _launch(client, action, GroupSource(group, total), fields, user, actor, target, detail)


def start_matching(client: Client, action: Action, query: str, filters: Mapping[str, Any], user: str,
                   actor: audit.Actor | None = None, everything: bool = False) -> dict[str, Any]:
    """Start "act on all matching": ``action`` on every job ``client.jobs.find(**filters)``
    returns now (``query`` is the query bar's text, for people). A query without any filter
    matches every job of the namespace: refused unless ``everything``. Returns the record."""
    filters = dict(filters)
    if not filters and not everything:
        raise InvalidArgument("the query has no filter, so it matches every job in the namespace: "
                              "confirm that you mean every job")
    client.operator.matching([], **filters)            # checks the filters (nothing is read)
    fields = {"scope": "match", "query": query, "total": 0, "found": 0, "state": "finding"}
    source = MatchSource(filters)
    detail = f"every job matching {query or '(everything)'}"
    return _launch(client, action, source, fields, user, actor, query or "(every job)", detail)


def _launch(client: Client, action: Action, source: Source, fields: dict[str, Any], user: str,
            actor: audit.Actor | None, target: str, detail: str) -> dict[str, Any]:
    op_id = os.urandom(8).hex()
    now = time.time()
    record: dict[str, Any] = {"id": op_id, "kind": action.kind, "group": "", "queue": action.queue,
                              "value": action.value, "query": "", "found": 0, "done": 0, "skipped": 0,
                              "started": now, "updated": now, "user": user, "error": "", "reasons": "{}",
                              "stop": "", "stopped_by": "", **fields}
    entry = None
    if actor is not None:
        entry = audit.open_entry(actor, action.kind, target=target, count=int(record["total"]),
                                 detail=f"{action.sentence(detail)}: operation {op_id} started").pk
    client.operator.progress.create(op_id, {k: str(v) for k, v in record.items()}, ttl=OP_TTL)
    if isinstance(source, MatchSource):
        source.stop = lambda: stop_requested(client, op_id)
    run = Run(client, op_id, action, source, entry, action.sentence(detail))
    thread = threading.Thread(target=run.run, name=f"jobadmin-op-{op_id}", daemon=True)
    _threads[op_id] = thread
    thread.start()
    _publish(client, record)
    return record


def _publish(client: Client, record: Mapping[str, Any]) -> None:
    try:
        client.events.publish("dashboard.op", op={k: v for k, v in record.items() if k != "reasons_list"})
    except Exception:
        log.debug("could not publish operation progress", exc_info=True)


# ---------------------------------------------------------------------- running
@dataclass
class Run:
    """One operation's thread: prepare the source, then act chunk by chunk until done or stopped."""

    client: Client
    op_id: str
    action: Action
    source: Source
    audit_entry: int | None
    sentence: str
    done: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    done_sample: list[str] = field(default_factory=list)
    skipped_sample: list[tuple[str, str]] = field(default_factory=list)

    def run(self) -> None:
        """The thread's body: never raises (a failure is the operation's state and error)."""
        state, error = "done", ""
        try:
            total = self.source.prepare(self.client, self._found)
            if self.source.scope == "match":
                self._update(found=total, total=total, state="running")
            self._chunks()
        except Stopped:
            state = "canceled"
        except (InvalidArgument, QueueEngineError) as exc:   # said to the operator on the page
            log.warning("operation %s failed: %s", self.op_id, exc)
            state, error = "failed", actions.describe_error(exc)
        except Exception as exc:  # the operation reports what went wrong; the server goes on
            log.exception("operation %s failed", self.op_id)
            state, error = "failed", actions.describe_error(exc)
        try:
            self._update(state=state, error=error)
            self._audit(state, error)
        except Exception:
            log.exception("operation %s could not record its end", self.op_id)
        finally:
            _threads.pop(self.op_id, None)
            connections.close_all()

    def _chunks(self) -> None:
        number = 0
        while True:
            if before_chunk is not None:
                before_chunk(self.op_id, number)
            if stop_requested(self.client, self.op_id):
                raise Stopped
            jids, skipped = self.source.next_chunk(self.client, CHUNK, self.done, self.skipped)
            if not jids and not skipped:
                return
            result = self.action.apply(self.client, jids) if jids else BulkResult()
            self._count(result.done, skipped + result.skipped)
            self._update()
            number += 1

    def _found(self, found: int) -> None:
        self._update(found=found)

    def _count(self, done: Sequence[str], skipped: Sequence[tuple[str, str]]) -> None:
        self.done += len(done)
        self.skipped += len(skipped)
        self.reasons.update(why for _, why in skipped)
        self.done_sample.extend(done[:AUDIT_SAMPLE - len(self.done_sample)])
        self.skipped_sample.extend(skipped[:50 - len(self.skipped_sample)])

    def _update(self, **fields: Any) -> None:
        values = {"done": self.done, "skipped": self.skipped, "reasons": json.dumps(dict(self.reasons)),
                  "updated": time.time(), **fields}
        self.client.operator.progress.update(self.op_id, {k: v if isinstance(v, int | float) else str(v)
                                                          for k, v in values.items()}, ttl=OP_TTL)
        _publish(self.client, get(self.client, self.op_id) or {})

    def _audit(self, state: str, error: str) -> None:
        if self.audit_entry is None:
            return
        reasons = "; ".join(f"{why}: {n}" for why, n in self.reasons.most_common())
        examples = "; ".join(f"{jid}: {why}" for jid, why in self.skipped_sample)
        detail = (f"{self.sentence}: operation {self.op_id} {state}; {self.done:,} done, {self.skipped:,} skipped"
                  + (f" ({reasons})" if reasons else "") + (f"; error: {error}" if error else "")
                  + (f"; skipped: {examples}" if examples else "")
                  + (f"; the first {AUDIT_SAMPLE:,} jids done are listed" if self.done > AUDIT_SAMPLE else ""))
        audit.close_entry(self.audit_entry, count=self.done, jids=self.done_sample, detail=detail)


# ---------------------------------------------------------------------- stopping, reading
def stop_requested(client: Client, op_id: str) -> bool:
    """Has someone asked operation ``op_id`` to stop?"""
    rec = client.operator.progress.get(op_id)
    return bool(rec and rec.get("stop"))


def request_stop(client: Client, op_id: str, user: str) -> dict[str, Any]:
    """Ask a running operation to stop before its next chunk (its thread may run in another
    server process); one that was interrupted is marked canceled at once. Returns its record."""
    rec = get(client, op_id)
    if rec is None:
        raise InvalidArgument(f"operation {op_id!r} does not exist (or has expired)")
    if rec["state"] not in (*RUNNING_STATES, "interrupted"):
        raise InvalidArgument(f"operation {op_id} has already ended ({rec['state']})")
    fields: dict[str, str | float] = {"stop": "1", "stopped_by": user}
    if rec["state"] == "interrupted":
        fields.update(state="canceled", updated=time.time())
    client.operator.progress.update(op_id, fields, ttl=OP_TTL)
    _publish(client, get(client, op_id) or {})
    return get(client, op_id) or rec


def get(client: Client, op_id: str) -> dict[str, Any] | None:
    """An operation's record with ``percent``, ``reasons_list`` ([(reason, n)], most first) and
    ``state`` (``interrupted`` when a running operation stopped moving), or None."""
    stored = client.operator.progress.get(op_id)
    if not stored:
        return None
    return _readable(op_id, stored)


def get_started(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record ``start`` / ``start_matching`` returned, as ``get`` gives records (the
    operation as it was when it started)."""
    return _readable(str(record["id"]), {k: str(v) for k, v in record.items()})


def _readable(op_id: str, stored: Mapping[str, str]) -> dict[str, Any]:
    rec: dict[str, Any] = dict(stored)
    rec.setdefault("scope", "group")
    for name in ("total", "found", "done", "skipped"):
        rec[name] = int(rec.get(name) or 0)
    for name in ("started", "updated"):
        rec[name] = float(rec.get(name) or 0)
    if rec["state"] in RUNNING_STATES and op_id not in _threads and time.time() - rec["updated"] > STALE_AFTER:
        rec["state"] = "interrupted"
    try:
        reasons = json.loads(rec.get("reasons") or "{}")
    except ValueError:
        reasons = {}
    rec["reasons_list"] = sorted(reasons.items(), key=lambda item: -item[1])
    rec["running"] = rec["state"] in RUNNING_STATES
    rec["stoppable"] = rec["state"] == "interrupted" or (rec["running"] and not rec.get("stop"))
    what = "every job matching \0" if rec["scope"] == "match" else "every job of \0"
    before, _, after = phrase(rec["kind"], rec.get("value") or rec.get("queue") or "", what).partition("\0")
    rec["sentence_before"], rec["sentence_after"] = before, after
    handled = rec["done"] + rec["skipped"]
    rec["percent"] = 100 if not rec["total"] else min(100, round(100 * handled / rec["total"]))
    if rec["state"] == "finding":
        rec["percent"] = 0
    return rec


def recent(client: Client, group: str | None = None, limit: int = 10, scope: str | None = None) -> list[dict[str, Any]]:
    """The newest operations (of one failure group, or of one scope: ``group`` / ``match``)."""
    out = []
    for op_id in client.operator.progress.recent(51):
        rec = get(client, op_id)
        if rec is None or (group is not None and rec["group"] != group) or (scope is not None and rec["scope"] != scope):
            continue
        out.append(rec)
        if len(out) >= limit:
            break
    return out


def wait(op_id: str, timeout: float = 60.0) -> bool:
    """Block until the operation's thread has finished (True) or ``timeout`` passed."""
    thread = _threads.get(op_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def wait_all(timeout: float = 60.0) -> bool:
    """Block until every operation thread of this process has finished (True), or ``timeout``
    passed (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    return all(wait(op_id, max(0.0, deadline - time.monotonic())) for op_id in list(_threads))
