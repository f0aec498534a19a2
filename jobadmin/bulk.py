"""Retry-all, cancel-all and move-all of a failure group, in chunks, in the background.

A group of 100,000 jobs must neither block Redis nor time out a request: the request starts an
operation and returns at once; a thread of the server process works through the group
CHUNK jobs at a time (one read and one pipelined write per chunk, oldest failures first) and
records its progress in Redis (``qe:{ns}:dash:op:<id>``, kept a day), which the page shows and
the live bridge pushes. The number of jobs to handle is fixed when the operation starts, so
jobs that fail again while it runs are not picked up a second time (Sidekiq's "retry all"
loop); jobs that cannot be handled are skipped and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import orjson

from jobadmin import actions
from queueengine import Client, InvalidArgument
from queueengine.store import args as engine_args

log = logging.getLogger(__name__)

CHUNK = 500
OP_TTL = 86400
STALE_AFTER = 30.0
"""A running operation whose progress has not moved for this long is shown as interrupted."""
KINDS = ("retry", "cancel", "move")

_threads: dict[str, threading.Thread] = {}


def _key(client: Client, op_id: str) -> str:
    return client.keys.key(f"dash:op:{op_id}")


def _index(client: Client) -> str:
    return client.keys.key("dash:ops")


def start(client: Client, kind: str, group: str, queue: str | None, user: str) -> dict[str, Any]:
    """Start a group operation; returns its record. Nothing runs when an argument is bad."""
    if kind not in KINDS:
        raise InvalidArgument(f"operation must be one of {', '.join(KINDS)}, got {kind!r}")
    engine_args.existing_name(group, "group")
    if kind == "move":
        if not queue:
            raise InvalidArgument("queue: name the queue to move the jobs to")
        engine_args.name(queue, "queue")
    total = int(client.redis.llen(client.keys.key(f"f:{group}")))
    if total == 0:
        raise InvalidArgument(f"group {group!r} has no failed jobs")
    op_id = os.urandom(8).hex()
    now = time.time()
    record = {"id": op_id, "kind": kind, "group": group, "queue": queue or "", "total": total, "done": 0,
              "skipped": 0, "state": "running", "started": now, "updated": now, "user": user, "error": ""}
    pipe = client.redis.pipeline()
    pipe.hset(_key(client, op_id), mapping={k: str(v) for k, v in record.items()})
    pipe.expire(_key(client, op_id), OP_TTL)
    pipe.zadd(_index(client), {op_id: now})
    pipe.zremrangebyscore(_index(client), "-inf", now - OP_TTL)
    pipe.execute()
    thread = threading.Thread(target=_run, args=(client, op_id, kind, group, queue, total),
                              name=f"jobadmin-op-{op_id}", daemon=True)
    _threads[op_id] = thread
    thread.start()
    _publish(client, record)
    return record


def _publish(client: Client, record: dict[str, Any]) -> None:
    event = {"e": "dashboard.op", "jid": None, "q": None, "t": time.time(), "op": record}
    try:
        client.redis.publish(client.keys.events, orjson.dumps(event))
    except Exception:
        log.debug("could not publish operation progress", exc_info=True)


def _run(client: Client, op_id: str, kind: str, group: str, queue: str | None, total: int) -> None:
    key = _key(client, op_id)
    done = skipped = 0
    state, error = "done", ""
    try:
        while done + skipped < total:
            want = min(CHUNK, total - done - skipped)
            # the group's oldest jobs sit at the end of its list (skipped ones stay there): read
            # from the end, which costs the chunk, not the group's length
            raw = client.redis.lrange(client.keys.key(f"f:{group}"), -(skipped + want), -(skipped + 1))
            jids = [j.decode() for j in reversed(raw)]
            if not jids:
                break
            outcome = _apply(client, kind, jids, queue)
            done += len(outcome.done)
            skipped += len(outcome.skipped)
            client.redis.hset(key, mapping={"done": done, "skipped": skipped, "updated": time.time()})
            _publish(client, get(client, op_id) or {})
    except Exception as exc:  # the operation reports what went wrong; the server goes on
        log.exception("group operation %s failed", op_id)
        state, error = "failed", actions.describe_error(exc)
    client.redis.hset(key, mapping={"done": done, "skipped": skipped, "state": state, "error": error,
                                    "updated": time.time()})
    _publish(client, get(client, op_id) or {})
    _threads.pop(op_id, None)


def _apply(client: Client, kind: str, jids: list[str], queue: str | None) -> actions.Outcome:
    if kind == "retry":
        return actions.retry(client, jids)
    if kind == "cancel":
        return actions.cancel(client, jids)
    return actions.move(client, jids, queue or "")


def get(client: Client, op_id: str) -> dict[str, Any] | None:
    """An operation's record with ``percent`` and ``state`` (``interrupted`` when a running
    operation stopped moving), or None."""
    raw = client.redis.hgetall(_key(client, op_id))
    if not raw:
        return None
    rec: dict[str, Any] = {k.decode(): v.decode() for k, v in raw.items()}
    for name in ("total", "done", "skipped"):
        rec[name] = int(rec.get(name) or 0)
    for name in ("started", "updated"):
        rec[name] = float(rec.get(name) or 0)
    if rec["state"] == "running" and op_id not in _threads and time.time() - rec["updated"] > STALE_AFTER:
        rec["state"] = "interrupted"
    handled = rec["done"] + rec["skipped"]
    rec["percent"] = 100 if not rec["total"] else min(100, round(100 * handled / rec["total"]))
    return rec


def recent(client: Client, group: str | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """The newest operations (of one group, when given)."""
    ids = [i.decode() for i in client.redis.zrevrange(_index(client), 0, 50)]
    out = []
    for op_id in ids:
        rec = get(client, op_id)
        if rec is not None and (group is None or rec["group"] == group):
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
