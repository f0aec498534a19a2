"""The brute-force reference the search tests hold ``client.jobs.find`` against: every job of the
namespace read whole and matched in Python, and a check that the class index agrees with the
job records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import redis

from queueengine import Client, Job

QUEUES = ["a", "b/c", "é q"]
CLASSES = ["app.Send", "app.SendLater", "app.other.X", "z"]
TAGS = ["vip", "x y"]
NAMES = ["bob", "al", "bo b"]
"""The generated worlds' queues, classes, tags and names (legal names with spaces, slashes, accents)."""


def all_jids(conn: redis.Redis, client: Client) -> list[str]:
    """Every job record of the client's namespace (its sub-keys are lists and sets)."""
    head = client.keys.job("")
    out = []
    for key in conn.scan_iter(match=head.replace("{", "[{]").replace("}", "[}]") + "*", count=1000):
        if conn.type(key) == b"hash":
            out.append(key.decode()[len(head):])
    return sorted(out)


def last_change(job: Job) -> float:
    t = job.time
    if job.state.value == "failed" and job.failure and float(job.failure.get("when") or 0) > t:
        t = float(job.failure["when"])
    return t


def at_path(doc: Any, path: str) -> Any:
    missing = object()
    v = doc
    for seg in path.split("."):
        if isinstance(v, dict) and seg in v:
            v = v[seg]
        elif isinstance(v, list) and seg.isdigit() and int(seg) < len(v):
            v = v[int(seg)]
        else:
            return missing
    return v


def matches(job: Job, raw_data: str, f: dict[str, Any]) -> bool:
    """The brute-force predicate: what find() must return."""
    klass = f.get("klass")
    if f.get("queue") is not None and job.queue_name != f["queue"]:
        return False
    if klass is not None and not (job.klass.startswith(klass[:-1]) if klass.endswith("*") else job.klass == klass):
        return False
    if f.get("state") is not None and job.state.value != f["state"]:
        return False
    if f.get("tag") is not None and f["tag"] not in job.tags:
        return False
    if f.get("worker") is not None and job.worker != f["worker"]:
        return False
    if f.get("text") is not None and f["text"] not in raw_data:
        return False
    for path, value in (f.get("data") or {}).items():
        if at_path(orjson.loads(raw_data), path) != value:
            return False
    t = last_change(job)
    if f.get("since") is not None and t < f["since"]:
        return False
    return not (f.get("until") is not None and t > f["until"])


def reference(conn: redis.Redis, client: Client, f: dict[str, Any]) -> set[str]:
    """The jids that match ``f`` now."""
    jids = all_jids(conn, client)
    jobs = client.jobs.get(*jids) if jids else []
    return {j.jid for j in jobs if matches(j, conn.hget(client.keys.job(j.jid), "data").decode(), f)}


def index_problems(conn: redis.Redis, client: Client) -> list[str]:
    """Where the class index and the job records disagree (empty: in step)."""
    problems = []
    records = {}
    for jid in all_jids(conn, client):
        queue, klass = conn.hmget(client.keys.job(jid), "queue", "klass")
        records[jid] = (queue.decode(), klass.decode())
    indexed = {}
    for key in conn.scan_iter(match=client.prefix.replace("{", "[{]").replace("}", "[}]") + "q:*:byclass"):
        queue = key.decode()[len(client.prefix) + 2:-len(":byclass")]
        for member in conn.zrange(key, 0, -1):
            klass, _, jid = member.decode().rpartition("\0")
            if jid in indexed:
                problems.append(f"{jid} indexed twice")
            indexed[jid] = (queue, klass)
            if queue.encode() not in conn.smembers(client.keys.key("byclass")):
                problems.append(f"queue {queue} not in the byclass registry")
    for jid, where in records.items():
        if indexed.get(jid) != where:
            problems.append(f"{jid}: record {where}, index {indexed.get(jid)}")
    problems.extend(f"{jid}: indexed, no record" for jid in set(indexed) - set(records))
    return problems


def page_all(client: Client, f: dict[str, Any], limit: int,
             between: Callable[[], None] = lambda: None) -> tuple[list[str], int]:
    """Every page of find(**f) (``between`` runs before each page after the first); the jids in
    the order returned and the number of pages."""
    out: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.jobs.find(**f, limit=limit, cursor=cursor)
        pages += 1
        assert len(page["jobs"]) <= limit
        out.extend(j.jid for j in page["jobs"])
        cursor = page["cursor"]
        if cursor is None:
            return out, pages
        assert pages < 5000, "find does not end"
        between()
