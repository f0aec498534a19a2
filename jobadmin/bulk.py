"""Retry-all, cancel-all and move-all of a failure group, in chunks, in the background.

A group of 100,000 jobs must neither block Redis nor time out a request: the request starts an
operation and returns at once; a thread of the server process works through the group CHUNK
jobs at a time (``client.operator.group_jids``, oldest failures first, then one
``client.operator`` call per chunk) and records its progress with ``client.operator.progress``
(``qe:{ns}:dash:op:<id>``, kept a day), which the page shows and the live bridge pushes (a
``dashboard.op`` event, ``client.events.publish``). The number of jobs to handle is fixed when
the operation starts, so jobs that fail again while it runs are not picked up a second time
(Sidekiq's "retry all" loop); jobs that cannot be handled are skipped and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from jobadmin import actions
from queueengine import Client, InvalidArgument
from queueengine.operator import check_name

log = logging.getLogger(__name__)

CHUNK = 500
OP_TTL = 86400
STALE_AFTER = 30.0
"""A running operation whose progress has not moved for this long is shown as interrupted."""
KINDS = ("retry", "cancel", "move")

_threads: dict[str, threading.Thread] = {}


def start(client: Client, kind: str, group: str, queue: str | None, user: str) -> dict[str, Any]:
    """Start a group operation; returns its record. Nothing runs when an argument is bad."""
    if kind not in KINDS:
        raise InvalidArgument(f"operation must be one of {', '.join(KINDS)}, got {kind!r}")
    check_name(group, "group", existing=True)
    if kind == "move":
        if not queue:
            raise InvalidArgument("queue: name the queue to move the jobs to")
        check_name(queue, "queue")
    total = client.operator.group_size(group)
    if total == 0:
        raise InvalidArgument(f"group {group!r} has no failed jobs")
    op_id = os.urandom(8).hex()
    now = time.time()
    record: dict[str, Any] = {"id": op_id, "kind": kind, "group": group, "queue": queue or "", "total": total,
                              "done": 0, "skipped": 0, "state": "running", "started": now, "updated": now,
                              "user": user, "error": ""}
    client.operator.progress.create(op_id, {k: str(v) for k, v in record.items()}, ttl=OP_TTL)
    thread = threading.Thread(target=_run, args=(client, op_id, kind, group, queue, total),
                              name=f"jobadmin-op-{op_id}", daemon=True)
    _threads[op_id] = thread
    thread.start()
    _publish(client, record)
    return record


def _publish(client: Client, record: Mapping[str, Any]) -> None:
    try:
        client.events.publish("dashboard.op", op=dict(record))
    except Exception:
        log.debug("could not publish operation progress", exc_info=True)


def _run(client: Client, op_id: str, kind: str, group: str, queue: str | None, total: int) -> None:
    done = skipped = 0
    state, error = "done", ""
    try:
        while done + skipped < total:
            # the group's oldest jobs first; skipped ones stay in the group, so skip past them
            jids = client.operator.group_jids(group, skip=skipped, count=min(CHUNK, total - done - skipped))
            if not jids:
                break
            outcome = _apply(client, kind, jids, queue)
            done += len(outcome.done)
            skipped += len(outcome.skipped)
            client.operator.progress.update(op_id, {"done": done, "skipped": skipped, "updated": time.time()},
                                            ttl=OP_TTL)
            _publish(client, get(client, op_id) or {})
    except Exception as exc:  # the operation reports what went wrong; the server goes on
        log.exception("group operation %s failed", op_id)
        state, error = "failed", actions.describe_error(exc)
    client.operator.progress.update(op_id, {"done": done, "skipped": skipped, "state": state, "error": error,
                                            "updated": time.time()}, ttl=OP_TTL)
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
    stored = client.operator.progress.get(op_id)
    if not stored:
        return None
    rec: dict[str, Any] = dict(stored)
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
    out = []
    for op_id in client.operator.progress.recent(51):
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
