"""What a soak run found: the figures of each mode, the checks that decide them (every job
completed or failed with a reason; a lost job, a duplicate explained only by a killed worker or
a resubmission), and the table the README quotes. Used by bench/soak.py."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.chaos import FAULTS, faults_between

if TYPE_CHECKING:
    from bench.soak import Producer

LOST_DETAILS = 50
"""Lost jobs named one by one in a mode's report (the count has them all)."""
SIMPLE_HELD = 16
"""Jobs a simple-mode worker may hold beyond its slots (its prefetch): lost when it is killed."""


@dataclass
class ModeReport:
    """Figures of one mode."""

    mode: str
    jobs: int = 0
    by_api: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    failed_without_reason: int = 0
    lost: int = 0
    lost_allowed: int = 0
    duplicates: int = 0
    duplicates_killed: int = 0
    duplicates_resubmitted: int = 0
    unexplained_duplicates: int = 0
    kills: int = 0
    runs: int = 0
    drain_s: float = 0.0
    idle_drain_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    lost_jobs: list[dict[str, Any]] = field(default_factory=list)   # each: key, jids, runs, faults since its put

    @property
    def ok(self) -> bool:
        """Every promise kept (simple: losses within what its killed workers could hold)."""
        return (self.lost <= self.lost_allowed and self.unexplained_duplicates == 0
                and self.failed_without_reason == 0)


@dataclass
class Report:
    """Figures of a soak run."""

    config: dict[str, Any]
    modes: list[ModeReport] = field(default_factory=list)
    kills: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    seconds: float = 0.0
    memory_baseline: int = 0
    memory_peak: int = 0
    memory_after: int = 0
    keys_after: int = 0
    redis_version: str = ""
    timed_out: bool = False
    idle_stalled: bool = False
    chaos_errors: list[str] = field(default_factory=list)
    appendfsync: str = ""   # as the primary reported it (CONFIG GET) at the start
    started_at: float = 0.0
    fault_log: list[tuple[float, str]] = field(default_factory=list)   # (wall time, kind) of each Redis fault

    @property
    def memory_back(self) -> bool:
        """Memory after expiry is within 2 MB of the baseline."""
        return self.memory_after - self.memory_baseline < 2 * 1024 * 1024

    @property
    def ok(self) -> bool:
        """Every promise of every mode kept, memory back, finished in time, no idle stall."""
        return (not self.timed_out and not self.idle_stalled and self.memory_back
                and all(m.ok for m in self.modes))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        out = asdict(self)
        out["ok"], out["memory_back"] = self.ok, self.memory_back
        for m, d in zip(self.modes, out["modes"], strict=True):
            d["ok"] = m.ok
        return out


def read_runs(runs_dir: Path) -> dict[str, list[int]]:
    """The pids that ran each job key, from every worker's file."""
    runs: dict[str, list[int]] = defaultdict(list)
    for path in runs_dir.glob("runs-*.log"):
        for line in path.read_bytes().split(b"\n"):
            if line:
                key, pid = line.decode().split()
                runs[key].append(int(pid))
    return runs


def verify(prod: Producer, runs: dict[str, list[int]], killed: set[int],
           fault_log: list[tuple[float, str]] | None = None) -> ModeReport:
    """Check every job of one mode (see the module docstring); name each lost job with the Redis
    faults of ``fault_log`` since its put."""
    rep = ModeReport(prod.mode, jobs=len(prod.jids), by_api=dict(prod.by_api), kills=len(killed))
    engine = prod.engine
    completed_at = {} if prod.mode == "simple" else {
        k.decode(): v for k, v in engine.redis.zrange(engine.keys.key("completed"), 0, -1, withscores=True)}
    latencies: list[float] = []
    keys = sorted(prod.jids)
    for start in range(0, len(keys), 2000):
        chunk = keys[start:start + 2000]
        rows: list[Any] = [None] * len(chunk)
        if prod.mode != "simple":
            pipe = engine.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.hmget(engine.keys.job(prod.jids[key][-1]), ["state", "failure"])
            rows = pipe.execute()
        for key, row in zip(chunk, rows, strict=True):
            pids = runs.get(key, [])
            rep.runs += len(pids)
            state = (b"complete" if pids else None) if row is None else row[0]
            if state == b"complete":
                rep.completed += 1
                done = completed_at.get(prod.jids[key][-1])
                if done is not None:
                    latencies.append(max(0.0, float(done) - prod.put_at[key]))
            elif state == b"failed":
                rep.failed += 1
                if not row[1] or not json.loads(row[1]).get("group"):
                    rep.failed_without_reason += 1
            else:
                _count_lost(rep, prod, key, row, pids, killed, fault_log)
            _count_duplicate(rep, prod, key, pids, killed)
    if prod.mode == "simple":
        rep.lost_allowed = len(killed) * (prod.cfg.concurrency + SIMPLE_HELD)
    _set_latencies(rep, latencies)
    return rep


def _count_lost(rep: ModeReport, prod: Producer, key: str, row: Any, pids: list[int], killed: set[int],
                fault_log: list[tuple[float, str]] | None) -> None:
    """A job neither complete nor failed: lost (the first LOST_DETAILS in detail)."""
    rep.lost += 1
    if len(rep.lost_jobs) < LOST_DETAILS:
        rep.lost_jobs.append({
            "key": key, "jids": prod.jids[key], "state": row[0].decode() if row and row[0] else None,
            "runs": [{"pid": pid, "killed": pid in killed} for pid in pids],
            "faults_since_put": faults_between(fault_log or [], prod.put_at[key])})


def _count_duplicate(rep: ModeReport, prod: Producer, key: str, pids: list[int], killed: set[int]) -> None:
    """A job run more than once: explained by a kill, by a resubmission, or not."""
    if len(pids) <= 1:
        return
    rep.duplicates += 1
    if sum(1 for pid in pids if pid not in killed) <= 1:
        rep.duplicates_killed += 1
    elif key in prod.resubmitted:
        rep.duplicates_resubmitted += 1
    else:
        rep.unexplained_duplicates += 1


def _set_latencies(rep: ModeReport, latencies: list[float]) -> None:
    """p50, p99 and max of the put -> completion latencies, in ms."""
    latencies.sort()
    if latencies:
        rep.p50_ms = round(1000 * latencies[len(latencies) // 2], 1)
        rep.p99_ms = round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        rep.max_ms = round(1000 * latencies[-1], 1)


def table(reports: list[Report]) -> str:
    """The figures as a Markdown table (the README's "Under faults" section)."""
    lines = ["| mode | jobs (put / put_many / submit) | completed | failed | lost | duplicates: killed worker / "
             "resubmitted / **unexplained** | worker SIGKILLs | Redis faults (freeze / crash / pause / failover) | "
             "drain after the producer | put_many into idle workers |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        f = r.faults
        for m in r.modes:
            apis = " / ".join(f"{m.by_api.get(a, 0):,}" for a in ("put", "put_many", "submit"))
            lost = f"{m.lost}" + (f" (≤ {m.lost_allowed} allowed)" if m.mode == "simple" else "")
            lines.append(f"| {m.mode} | {m.jobs:,} ({apis}) | {m.completed:,} | {m.failed} | {lost} | "
                         f"{m.duplicates_killed} / {m.duplicates_resubmitted} / **{m.unexplained_duplicates}** | "
                         f"{m.kills} | {f['sleep']} / {f['crash']} / {f['pause']} / {f['failover']} | "
                         f"{_seconds(m.drain_s)} | {_seconds(m.idle_drain_s)} |")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:g} s" if value >= 0 else "not measured (a job never settled)"
