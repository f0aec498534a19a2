"""Reading a qless-core keyspace (read only) and turning its records into import items.

Key layout read (``ql:`` is the prefix): ``config`` (hash), ``queues`` (zset, first-seen),
``paused_queues`` (set), ``q:<q>-work|locks|scheduled|depends|recur`` (zsets), ``j:<jid>``
(hash) with ``j:<jid>-history`` (list of ``[when, what, extra]`` or ``{when, what, ...}``;
very old records keep a JSON ``history`` field), ``j:<jid>-dependencies|-dependents``
(sets), ``r:<jid>`` (template hash), ``t:<tag>`` (zset), ``tracked`` and ``completed``
(zsets), ``failures`` (set) with ``f:<group>`` (lists, newest first), ``workers`` (zset),
``s:wait|run|stats:<day>:<q>`` (hashes). Only commands that read are sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import redis

from queueengine.migrate.report import ImportReport

PRIORITY_LIMIT = 4095
_CHILD = re.compile(r"^(.+)-(\d+)$")


def text(value: Any) -> str:
    """A reply value as str (the source may or may not decode responses)."""
    kind = type(value)
    if kind is bytes:
        return value.decode("utf-8", "replace")  # type: ignore[no-any-return]
    if kind is str:
        return value  # type: ignore[no-any-return]
    return "" if value is None else str(value)


def _number(value: Any, default: float) -> float:
    try:
        n = float(text(value))
    except ValueError:
        return default
    return n if math.isfinite(n) else default


def _json_list(raw: Any) -> list[Any]:
    """A JSON list field (Lua's cjson writes an empty list as ``{}``)."""
    try:
        value = json.loads(text(raw) or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


class QlessSource:
    """Read-only access to one qless-core keyspace."""

    def __init__(self, conn: redis.Redis, prefix: str = "ql:") -> None:
        self.conn = conn
        self.prefix = prefix
        self._zmscore: bool | None = None

    def key(self, name: str) -> str:
        """A source key name."""
        return self.prefix + name

    def qkey(self, queue: str, sub: str) -> str:
        """A queue's sorted set (work, locks, scheduled, depends, recur)."""
        return f"{self.prefix}q:{queue}-{sub}"

    # ------------------------------------------------------------------ listings
    def config(self) -> dict[str, str]:
        """The ``config`` hash (options set explicitly)."""
        return {text(k): text(v) for k, v in self.conn.hgetall(self.key("config")).items()}

    def queues(self) -> list[tuple[str, float]]:
        """Every registered queue with its first-seen time, in registration order."""
        return [(text(m), s) for page in self.zpages(self.key("queues")) for m, s in page]

    def paused(self) -> set[str]:
        """Paused queue names."""
        return {text(m) for m in self.conn.sscan_iter(self.key("paused_queues"), count=1000)}

    def groups(self) -> list[str]:
        """Failure group names."""
        return sorted(text(m) for m in self.conn.sscan_iter(self.key("failures"), count=1000))

    def zpages(self, key: str, size: int = 200, reverse: bool = False, start: int = 0) -> Iterator[list[tuple[str, float]]]:
        """A sorted set page by page (by rank, highest first when ``reverse``)."""
        at = start
        while True:
            page: Any
            if reverse:
                page = self.conn.zrevrange(key, at, at + size - 1, withscores=True)
            else:
                page = self.conn.zrange(key, at, at + size - 1, withscores=True)
            if not page:
                return
            yield [(text(m), float(s)) for m, s in page]
            if len(page) < size:
                return
            at += size

    def list_oldest_first(self, key: str, size: int = 200) -> Iterator[list[str]]:
        """A newest-first list (a failure group) page by page, oldest entries first."""
        n = int(self.conn.llen(key))
        end = n - 1
        while end >= 0:
            first = max(0, end - size + 1)
            page = [text(m) for m in self.conn.lrange(key, first, end)]
            page.reverse()
            yield page
            end = first - 1

    def stats_keys(self) -> Iterator[list[str]]:
        """Per-day stats hash names, a SCAN batch at a time."""
        cursor: Any = 0
        while True:
            cursor, keys = self.conn.scan(cursor, match=self.key("s:*"), count=1000)
            if keys:
                yield [text(k) for k in keys]
            if int(cursor) == 0:
                return

    def job_keys(self) -> Iterator[list[str]]:
        """The jids of every job record, a SCAN batch at a time (nothing on a server whose
        SCAN has no TYPE filter, before Redis 6)."""
        cursor: Any = 0
        start = len(self.prefix) + 2
        while True:
            try:
                cursor, keys = self.conn.scan(cursor, match=self.key("j:*"), count=1000, _type="hash")
            except redis.ResponseError:
                return
            if keys:
                yield [text(k)[start:] for k in keys]
            if int(cursor) == 0:
                return

    def hashes(self, keys: list[str]) -> list[dict[str, str]]:
        """HGETALL of several keys in one round trip."""
        pipe = self.conn.pipeline(transaction=False)
        for k in keys:
            pipe.hgetall(k)
        return [{text(a): text(b) for a, b in h.items()} for h in pipe.execute()]

    def exists_each(self, keys: list[str]) -> list[bool]:
        """EXISTS of several keys in one round trip."""
        pipe = self.conn.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        return [bool(n) for n in pipe.execute()]

    # ------------------------------------------------------------------ one page of jobs
    def multi_score(self) -> bool:
        """Whether the source has ZMSCORE (Redis >= 6.2; Qless often runs on older servers)."""
        if self._zmscore is None:
            version = text(self.conn.info("server").get("redis_version", "0"))
            parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]] + [0, 0]
            self._zmscore = (parts[0], parts[1]) >= (6, 2)
        return self._zmscore

    def snapshot(self, jids: list[str], keep: int = 0, queue: str = "") -> list[dict[str, Any] | None]:
        """Everything about each job of a page: its record, history, dependency sets, tracked
        and completed scores (one MULTI: a consistent view of the page), then its queue's set
        scores, tag times, its worker's last-seen time and a template it may come from (a
        second round trip). A handful of commands per job, scores asked for a page at a time.
        ``keep`` > 0: read only the history the engine keeps (the first entry and the newest
        keep - 1), so a long Qless history costs a bounded read. ``queue``: the page comes from
        that queue's sets, whose scores are then read in the same MULTI (the second round trip
        asks only for jobs that moved to another queue)."""
        batch = _Batch(self.conn.pipeline(transaction=True), self.multi_score())
        rows: list[list[Any]] = []
        for jid in jids:
            base = self.key("j:" + jid)
            row: list[Any] = []
            rows.append(row)
            batch.ask(row.append, "hgetall", base)
            if keep > 0:
                batch.ask(row.append, "lindex", base + "-history", 0)
                batch.ask(row.append, "lrange", base + "-history", -max(keep - 1, 1), -1)
                batch.ask(row.append, "llen", base + "-history")
            else:
                batch.ask(row.append, "lrange", base + "-history", 0, -1)
            batch.ask(row.append, "smembers", base + "-dependencies")
            batch.ask(row.append, "smembers", base + "-dependents")
        tracked: list[Any] = []
        completed: list[Any] = []
        batch.scores(tracked.extend, self.key("tracked"), jids)
        batch.scores(completed.extend, self.key("completed"), jids)
        here: dict[str, list[Any]] = {}
        if queue:
            for sub in ("work", "locks", "scheduled", "depends"):
                here[sub] = []
                batch.scores(here[sub].extend, self.qkey(queue, sub), jids)
        batch.run()
        snaps: list[dict[str, Any] | None] = []
        for i, (jid, row, t, c) in enumerate(zip(jids, rows, tracked, completed, strict=True)):
            h, deps, dents, hist = row[0], row[-2], row[-1], _history_of(row[1:-2])
            if not h:
                snaps.append(None)
                continue
            scores = {sub: v[i] for sub, v in here.items() if v[i] is not None}
            snaps.append({
                "jid": jid, "hash": {text(a): text(b) for a, b in h.items()},
                "history": [text(e) for e in hist], "dependencies": sorted(text(d) for d in deps),
                "dependents": sorted(text(d) for d in dents), "tracked": t, "completed": c,
                "scores": scores, "tag_times": {},
            })
        self._details([s for s in snaps if s is not None], queue)
        return snaps

    def _details(self, snaps: list[dict[str, Any]], known: str) -> None:
        batch = _Batch(self.conn.pipeline(transaction=False), self.multi_score())
        by_queue: dict[str, list[dict[str, Any]]] = {}
        by_tag: dict[str, list[dict[str, Any]]] = {}
        by_worker: dict[str, list[dict[str, Any]]] = {}
        by_template: dict[str, list[dict[str, Any]]] = {}
        for snap in snaps:
            h = snap["hash"]
            if h.get("queue") and h["queue"] != known and h.get("state") not in ("complete", "failed"):
                snap["scores"] = {}   # it moved: the page's queue holds none of it
                by_queue.setdefault(h["queue"], []).append(snap)
            for tag in _json_list(h.get("tags")):
                if isinstance(tag, str):
                    by_tag.setdefault(tag, []).append(snap)
            if h.get("worker"):
                by_worker.setdefault(h["worker"], []).append(snap)
            m = _CHILD.match(snap["jid"])
            if m and not h.get("spawned_from_jid"):
                by_template.setdefault(m.group(1), []).append(snap)
        for queue, group in by_queue.items():
            for sub in ("work", "locks", "scheduled", "depends"):
                batch.scores(_scores_into(group, "scores", sub), self.qkey(queue, sub),
                             [g["jid"] for g in group])
        for tag, group in by_tag.items():
            batch.scores(_scores_into(group, "tag_times", tag), self.key("t:" + tag),
                         [g["jid"] for g in group])
        names = list(by_worker)
        batch.scores(_seen_into([by_worker[n] for n in names]), self.key("workers"), names)
        for tpl, group in by_template.items():
            batch.ask(_template_into(group, tpl), "exists", self.key("r:" + tpl))
        batch.run()


def _history_of(parts: list[Any]) -> list[Any]:
    """The history entries read: the whole list, or (first, newest, length) of a long one."""
    if len(parts) == 1:
        return list(parts[0])
    first, newest, length = parts
    if first is None:
        return []
    return list(newest) if int(length) <= len(newest) else [first, *newest]


def _scores_into(group: list[dict[str, Any]], field: str, name: str) -> Any:
    """A sink for one score per snapshot of group: snap[field][name] = score (when set)."""
    def sink(values: list[float | None]) -> None:
        for snap, v in zip(group, values, strict=True):
            if v is not None:
                snap[field][name] = v
    return sink


def _seen_into(groups: list[list[dict[str, Any]]]) -> Any:
    """A sink for one worker's last-seen score per group of snapshots (its jobs)."""
    def sink(values: list[float | None]) -> None:
        for group, v in zip(groups, values, strict=True):
            for snap in group:
                snap["seen"] = v
    return sink


def _template_into(group: list[dict[str, Any]], template: str) -> Any:
    """A sink for EXISTS of a template: its children (the group) get spawned_from_jid."""
    def sink(there: Any) -> None:
        if there:
            for snap in group:
                snap["template"] = template
    return sink


class _Batch:
    """Commands queued on one pipeline, each with a callback for its reply; ``scores`` asks for
    many members' scores with one ZMSCORE (or a ZSCORE each on a server without it)."""

    def __init__(self, pipe: Any, zmscore: bool) -> None:
        self.pipe, self.zmscore = pipe, zmscore
        self.sinks: list[tuple[int, Any]] = []

    def ask(self, sink: Any, command: str, *args: Any) -> None:
        getattr(self.pipe, command)(*args)
        self.sinks.append((0, sink))

    def scores(self, sink: Any, key: str, members: list[str]) -> None:
        if not members:
            sink([])
        elif self.zmscore:
            self.pipe.zmscore(key, members)
            self.sinks.append((-1, sink))
        else:
            for m in members:
                self.pipe.zscore(key, m)
            self.sinks.append((len(members), sink))

    def run(self) -> None:
        replies = iter(self.pipe.execute())
        for n, sink in self.sinks:
            if n == 0:
                sink(next(replies))
            elif n < 0:
                sink([None if v is None else float(v) for v in next(replies)])
            else:
                sink([None if v is None else float(v) for v in (next(replies) for _ in range(n))])


# ---------------------------------------------------------------------- conversion
def history(legacy: str, entries: list[str]) -> list[dict[str, Any]]:
    """Qless history (``[when, what, extra]`` triples or objects, after any legacy JSON
    field) as the engine's ``{when, what, ...}`` entries; ``q`` becomes ``queue``."""
    out: list[dict[str, Any]] = []
    for old in _json_list(legacy):
        if not isinstance(old, dict):
            continue
        out.append({"when": math.floor(_number(old.get("put"), 0)), "what": "put", "queue": old.get("q")})
        for step in ("popped", "failed", "done"):
            if old.get(step):
                e: dict[str, Any] = {"when": math.floor(_number(old[step], 0)), "what": step}
                if step == "popped" and old.get("worker"):
                    e["worker"] = old["worker"]
                out.append(e)
    for raw in entries:
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        when: Any
        what: Any
        if isinstance(value, list) and len(value) >= 2:
            when, what = value[0], value[1]
            extra: dict[str, Any] = value[2] if len(value) > 2 and isinstance(value[2], dict) else {}
        elif isinstance(value, dict):
            when, what = value.get("when"), value.get("what")
            extra = {k: v for k, v in value.items() if k not in ("when", "what")}
        else:
            continue
        if not isinstance(what, str):
            continue
        entry = {"when": _number(when, 0), "what": what}
        for k, v in extra.items():
            entry["queue" if k == "q" else k] = v
        out.append(entry)
    return out


def priority(raw: Any, jid: str, report: ImportReport) -> int:
    """A Qless priority (any float) as the engine's whole number in [-4095, 4095]. Rounding
    down and clamping keep the pop order (the import keeps the source's order within a level)."""
    p = _number(raw, 0.0)
    n = max(-PRIORITY_LIMIT, min(PRIORITY_LIMIT, math.floor(p)))
    if n != p:
        report.adjust(f"priority rounded down / clamped to [-{PRIORITY_LIMIT}, {PRIORITY_LIMIT}]", f"{jid}: {p:g} -> {n}")
    return n


def _last_queue(hist: list[dict[str, Any]]) -> str:
    for e in reversed(hist):
        if e.get("what") == "put" and isinstance(e.get("queue"), str):
            return str(e["queue"])
    return ""


def _failure(raw: str) -> dict[str, Any] | None:
    try:
        f = json.loads(raw or "{}")
    except ValueError:
        return None
    if not isinstance(f, dict) or not isinstance(f.get("group"), str):
        return None
    return {"group": f["group"], "message": text(f.get("message")), "when": _number(f.get("when"), 0),
            "worker": text(f.get("worker"))}


def _place(spec: dict[str, Any], snap: dict[str, Any], now: float) -> str | None:
    """Set the item's state and placement from the record and its queue's sets; returns the
    state to report (None when the job sits in none of its queue's sets)."""
    h, scores = snap["hash"], snap["scores"]
    state = h.get("state", "")
    lock, work = scores.get("locks"), scores.get("work")
    worker = h.get("worker", "")
    if state == "complete":
        spec.update(state="complete", at=_number(snap["completed"], _number(h.get("time"), now)))
        spec["queue"] = spec["queue"] or _last_queue(spec["history"])
        return "complete"
    if state == "failed":
        failure = _failure(h.get("failure", ""))
        if failure is None:
            return None
        spec.update(state="failed", failure=failure)
        return "failed"
    if lock is not None and worker and state in ("running", "stalled"):
        spec.update(state="running", worker=worker, expires=lock, grace=h.get("grace", "") not in ("", "0"),
                    seen=_number(snap.get("seen"), now))
        return "stalled" if lock <= now else "running"
    if worker and (state == "stalled" or (work is not None and math.isinf(work))):
        timed = [e["when"] for e in spec["history"] if e["what"] == "timed-out"]
        spec.update(state="running", worker=worker, expires=min(timed[-1] if timed else now, now), timedout=True,
                    seen=_number(snap.get("seen"), now))
        return "stalled"
    for sub, st in (("scheduled", "scheduled"), ("depends", "depends"), ("work", "waiting")):
        if scores.get(sub) is not None:
            spec.update(state=st, at=scores[sub])
            if st == "depends" and _number(h.get("scheduled"), 0) > 0:   # newer qless-core: delay + depends
                spec["scheduled"] = _number(h["scheduled"], 0)
            return st
    return None


def job_item(snap: dict[str, Any], now: float, report: ImportReport) -> tuple[dict[str, Any], str] | None:
    """The import item of one snapshot and the state to report, or None (skip recorded)."""
    h, jid = snap["hash"], snap["jid"]
    hist = history(h.get("history", ""), snap["history"])
    spec: dict[str, Any] = {
        "jid": jid, "klass": h.get("klass", ""), "data": h.get("data", "{}"),
        "priority": priority(h.get("priority"), jid, report),
        "tags": [t for t in _json_list(h.get("tags")) if isinstance(t, str)],
        "retries": int(_number(h.get("retries"), 5)), "time": _number(h.get("time"), now),
        "queue": h.get("queue", ""), "history": hist, "dependencies": snap["dependencies"],
        "dependents": snap["dependents"], "tag_times": snap["tag_times"],
    }
    spec["remaining"] = int(_number(h.get("remaining"), spec["retries"]))
    if snap["tracked"] is not None:
        spec["tracked"] = float(snap["tracked"])
    spawned = h.get("spawned_from_jid", "")
    if spawned and spawned != "false":
        spec["spawned_from_jid"] = spawned
    elif snap.get("template"):
        spec["spawned_from_jid"] = snap["template"]
    state = _place(spec, snap, now)
    if state is None:
        why = (f"job in state {h.get('state', '?')!r} found in none of its queue's sets"
               if h.get("state") != "failed" else "failed job without a failure group")
        report.skip(why, jid)
        return None
    return spec, state


def recurring_item(jid: str, nxt: float, h: dict[str, str], report: ImportReport) -> dict[str, Any]:
    """The import item of one recurring template."""
    return {
        "jid": jid, "klass": h.get("klass", ""), "data": h.get("data", "{}"),
        "priority": priority(h.get("priority"), jid, report),
        "tags": [t for t in _json_list(h.get("tags")) if isinstance(t, str)],
        "queue": h.get("queue", ""), "interval": _number(h.get("interval"), 0),
        "retries": int(_number(h.get("retries"), 0)), "backlog": int(_number(h.get("backlog"), 0)),
        "count": int(_number(h.get("count"), 0)), "next": nxt,
    }


def stats_item(key: str, prefix: str, fields: dict[str, str]) -> dict[str, Any] | None:
    """The import item of one per-day stats hash (``<prefix>s:<kind>:<day>:<queue>``)."""
    parts = key[len(prefix) + 2:].split(":", 2)
    if len(parts) != 3 or parts[0] not in ("wait", "run", "stats") or not parts[1].isdigit():
        return None
    values = {k: _number(v, 0) for k, v in fields.items()}
    return {"kind": parts[0], "day": int(parts[1]), "queue": parts[2], "fields": values}
