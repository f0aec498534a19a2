"""Moving from Qless: copy a qless-core keyspace into a namespace of the engine.

``import_qless(source, client)`` reads the Qless keys (read commands only: the source is left
byte for byte as it was) and writes, through the engine's ``import`` Lua command
(``lua/migrate.lua``), every queue with its jobs in every state, recurring templates, the
tracked set, tags, failure groups, config options and per-day stats. Every Redis call handles
one bounded chunk (``chunk`` jobs, 200 by default), so a live Qless or a busy engine is never blocked for
long. A job already in the namespace is left alone, so a second run adds nothing. See the
README section "Moving from Qless" for the mapping and the cut-over steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
import redis

from queueengine.exceptions import InvalidArgument
from queueengine.migrate import qless as q
from queueengine.migrate.report import ImportReport

if TYPE_CHECKING:
    from queueengine.client import Client

__all__ = ["ImportReport", "import_qless"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: items handled so far and the (estimated) total."""

QUEUE_SETS = ("work", "locks", "scheduled", "depends")


class _Run:
    """One import: source, target, report and progress."""

    def __init__(self, source: q.QlessSource, client: Client, dry_run: bool, progress: Progress | None,
                 chunk: int) -> None:
        self.src, self.client, self.chunk = source, client, chunk
        self.report = ImportReport(dry_run=dry_run)
        self.dry = "1" if dry_run else "0"
        self.progress = progress
        self.done = 0
        self.total = 0
        self.seen: set[str] = set()
        self.keep = 0   # history entries the namespace keeps (max-job-history), read after the config
        self.now = float(client.now())

    def tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))

    def send(self, kind: str, items: list[dict[str, Any]]) -> list[str]:
        """One ``import`` call; the per-item outcomes."""
        if not items:
            return []
        raw = self.client._call("import", kind, self.dry, *(orjson.dumps(i) for i in items))
        outcomes = orjson.loads(raw)
        return [] if isinstance(outcomes, dict) else [str(o) for o in outcomes]

    def tally(self, kind: str, labels: Iterable[tuple[str, str, str]], outcomes: list[str]) -> None:
        """Count outcomes: labels are (what, queue, state) per item."""
        for (what, queue, state), outcome in zip(labels, outcomes, strict=True):
            if outcome == "imported":
                if kind in ("job", "recurring"):
                    self.report.count(queue, state)
                else:
                    self.report.other[kind] += 1
            elif outcome == "exists":
                self.report.already[kind] += 1
            else:
                why = outcome.removeprefix("invalid: ").split(", got ")[0]   # one reason for every bad value
                self.report.skip(f"{kind}: {why}", what)

    # ------------------------------------------------------------------ jobs
    def jobs(self, jids: list[str], sweep: bool = False, queue: str = "") -> None:
        """Import one page of jids (in this order: waiting jobs keep their pop order).
        ``sweep``: jids no index led to (completed ones are left to the completed pass)."""
        fresh = [j for j in dict.fromkeys(jids) if j not in self.seen]
        self.seen.update(fresh)
        items: list[dict[str, Any]] = []
        labels: list[tuple[str, str, str]] = []
        for jid, snap in zip(fresh, self.src.snapshot(fresh, self.keep, queue), strict=True):
            if snap is None:
                self.report.skip("job listed in an index but its record is gone", jid)
                continue
            if sweep and snap["hash"].get("state") == "complete":
                if snap["completed"] is None:
                    self.report.skip("completed job missing from Qless's completed set", jid)
                continue
            made = q.job_item(snap, self.now, self.report)
            if made is not None:
                items.append(made[0])
                labels.append((jid, made[0]["queue"], made[1]))
        self.tally("job", labels, self.send("job", items))
        self.tick(len(jids))

    def queue_jobs(self, queue: str) -> None:
        """Every job in a queue's sets; waiting ones highest Qless score first (its pop order)."""
        for sub in QUEUE_SETS:
            for page in self.src.zpages(self.src.qkey(queue, sub), self.chunk, reverse=sub == "work"):
                self.jobs([m for m, _ in page], queue=queue)

    def failed(self) -> None:
        """Failure groups, oldest failure first (so each group keeps its newest-first order)."""
        for group in self.src.groups():
            for page in self.src.list_oldest_first(self.src.key("f:" + group), self.chunk):
                self.jobs(page)

    def completed(self, cfg: dict[str, str]) -> None:
        """Completed jobs still within Qless's retention (jobs-history seconds, newest
        jobs-history-count)."""
        key = self.src.key("completed")
        total = int(self.src.conn.zcard(key))
        keep_s = q._number(cfg.get("jobs-history"), 604800)
        keep_n = int(q._number(cfg.get("jobs-history-count"), 50000))
        expired = int(self.src.conn.zcount(key, "-inf", self.now - keep_s))
        start = max(expired, total - max(keep_n, 0), 0)
        if start > 0:
            reason = "completed job beyond Qless's retention (jobs-history / jobs-history-count)"
            self.report.skipped[reason] += start
            self.report.examples[reason] = [m for m, _ in next(self.src.zpages(key, min(start, 5)), [])]
            self.tick(start)
        for page in self.src.zpages(key, self.chunk, start=start):
            self.jobs([m for m, _ in page])

    def unlisted(self) -> None:
        """Jobs that no index led to (a queue missing from the registry, a failure list that
        lost them, a job that moved while the import ran): found by SCAN."""
        for jids in self.src.job_keys():
            fresh = [j for j in jids if j not in self.seen]
            for i in range(0, len(fresh), self.chunk):
                self.jobs(fresh[i:i + self.chunk], sweep=True)

    def tracked_leftovers(self) -> None:
        """Tracked entries of jobs that no longer exist (Qless keeps them; the engine does not)."""
        for page in self.src.zpages(self.src.key("tracked"), 1000):
            jids = [m for m, _ in page]
            keys = [self.src.key("j:" + j) for j in jids]
            for jid, there in zip(jids, self.src.exists_each(keys), strict=True):
                if not there:
                    self.report.skip("tracked job no longer exists", jid)

    # ------------------------------------------------------------------ the rest
    def config(self, cfg: dict[str, str]) -> None:
        items = [{"name": k, "value": v} for k, v in sorted(cfg.items())]
        for i in range(0, len(items), self.chunk):
            part = items[i:i + self.chunk]
            self.tally("config", [(c["name"], "", "") for c in part], self.send("config", part))

    def queues(self, queues: list[tuple[str, float]]) -> None:
        paused = self.src.paused()
        items: list[dict[str, Any]] = [{"name": n, "seen": s, "paused": n in paused} for n, s in queues]
        for i in range(0, len(items), self.chunk):
            part = items[i:i + self.chunk]
            self.tally("queue", [(str(c["name"]), "", "") for c in part], self.send("queue", part))

    def recurring(self, queue: str) -> None:
        for page in self.src.zpages(self.src.qkey(queue, "recur"), self.chunk):
            jids = [m for m, _ in page]
            hashes = self.src.hashes([self.src.key("r:" + j) for j in jids])
            items: list[dict[str, Any]] = []
            for (jid, nxt), h in zip(page, hashes, strict=True):
                if not h:
                    self.report.skip("recurring entry without its template", jid)
                else:
                    items.append(q.recurring_item(jid, nxt, h, self.report))
            self.tally("recurring", [(r["jid"], r["queue"], "recurring") for r in items], self.send("recurring", items))
            self.tick(len(page))

    def stats(self) -> None:
        for keys in self.src.stats_keys():
            for i in range(0, len(keys), self.chunk):
                part = keys[i:i + self.chunk]
                items, labels = [], []
                for key, fields in zip(part, self.src.hashes(part), strict=True):
                    item = q.stats_item(key, self.src.prefix, fields)
                    if item is None or not fields:
                        self.report.skip("stats key not in Qless's s:<kind>:<day>:<queue> layout", key)
                    else:
                        items.append(item)
                        labels.append((key, "", ""))
                self.tally("stats", labels, self.send("stats", items))

    def estimate(self, queues: list[tuple[str, float]]) -> int:
        pipe = self.src.conn.pipeline(transaction=False)
        for name, _ in queues:
            for sub in (*QUEUE_SETS, "recur"):
                pipe.zcard(self.src.qkey(name, sub))
        for group in self.src.groups():
            pipe.llen(self.src.key("f:" + group))
        pipe.zcard(self.src.key("completed"))
        return sum(int(n) for n in pipe.execute())


def import_qless(source: redis.Redis, client: Client, prefix: str = "ql:", *, dry_run: bool = False,
                 progress: Progress | None = None, chunk: int = 200) -> ImportReport:
    """Copy the qless-core keyspace of ``source`` (keys under ``prefix``) into the namespace
    of ``client`` (a :class:`queueengine.Client`); return the report.

    Reads the source only. Jobs keep their jid, class, data, priority, tags, retries,
    tracked flag, history, dependencies (both ways) and state: waiting jobs their pop order,
    scheduled jobs their due time, running jobs their worker and lease expiry (an expired one
    is stalled), failed jobs their group, message and time, completed jobs within Qless's
    retention. ``dry_run``: check everything, write nothing. ``progress(done, total)`` is
    called after every chunk. ``chunk``: items per Redis call (1..1000).
    """
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= 1000:
        raise InvalidArgument(f"chunk must be a whole number from 1 to 1000, got {chunk!r}")
    if not isinstance(prefix, str) or not prefix:
        raise InvalidArgument(f"prefix must be a non-empty string, got {prefix!r}")
    started = time.monotonic()
    run = _Run(q.QlessSource(source, prefix), client, dry_run, progress, chunk)
    cfg = run.src.config()
    queues = run.src.queues()
    run.total = run.estimate(queues)
    run.config(cfg)
    run.keep = max(int(q._number(client.config.all().get("max-job-history"), 0)), 0)
    run.queues(queues)
    for name, _ in queues:
        run.queue_jobs(name)
    run.failed()
    run.completed(cfg)
    run.unlisted()
    for name, _ in queues:
        run.recurring(name)
    run.tracked_leftovers()
    run.stats()
    run.report.seconds = time.monotonic() - started
    return run.report
