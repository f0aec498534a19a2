"""What the engine knows, for the worker page and the job page: a worker's registration, status
and throughput, and a job's dependency graph (upstream and downstream, bounded, laid out for an
SVG drawn by ``partials/dep_graph.html``). Only the engine's public API is used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobadmin.presenters import heartbeat_seconds, worker_status
from queueengine import Client

GRAPH_DEPTH = 3
"""Levels shown on each side of the job."""
GRAPH_NODES = 40
"""Most jobs the graph shows; beyond that it says how many it left out."""
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 38, 46, 12, 8


def worker_facts(client: Client, name: str) -> dict[str, Any]:
    """A worker's host, pid, queues, start, status, last seen, held and stalled leases, and the
    jobs it completed and failed in the last hour (``found`` False when it is not registered)."""
    now = client.now()
    entry = next((w for w in client.workers.counts if w["name"] == name), None)
    throughput = client.workers.throughput(name, 60)
    facts: dict[str, Any] = {"found": entry is not None, "name": name, "now": now,
                             "done_60m": sum(throughput["done"]), "failed_60m": sum(throughput["failed"]),
                             "done_per_minute": throughput["done"]}
    if entry is None:
        return facts
    info = dict(entry.get("info") or {})
    lease = heartbeat_seconds(client.config.all())
    view = {"last_seen": entry["last_seen"], "info": info, "stalled": entry["stalled"]}
    facts.update(info=info, host=info.get("host"), pid=info.get("pid"), queues=list(info.get("queues") or []),
                 started=info.get("started"), mode=info.get("mode"), concurrency=info.get("concurrency"),
                 last_seen=entry["last_seen"], running=entry["jobs"], stalled=entry["stalled"],
                 status=worker_status(view, now, lease))  # type: ignore[arg-type]
    return facts


@dataclass
class Graph:
    """Jobs around one job: ``nodes`` with positions, ``edges`` (dependency -> dependent)."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, float]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    left_out: int = 0

    @property
    def empty(self) -> bool:
        """Only the job itself: nothing to draw."""
        return len(self.nodes) <= 1


def _walk(client: Client, start: dict[str, Any], key: str, level_step: int,
          levels: dict[str, int], jobs: dict[str, dict[str, Any]], budget: list[int]) -> list[tuple[str, str]]:
    """Breadth-first along ``key`` (dependencies or dependents) for GRAPH_DEPTH levels; records
    each job's level and returns the edges found (dependency, dependent)."""
    edges: list[tuple[str, str]] = []
    frontier = [start["jid"]]
    for depth in range(1, GRAPH_DEPTH + 1):
        wanted: list[str] = []
        for jid in frontier:
            for other in sorted(jobs[jid].get(key) or []):
                edges.append((other, jid) if key == "dependencies" else (jid, other))
                if other not in levels and other not in wanted:
                    if budget[0] <= 0:
                        budget[1] += 1
                        continue
                    budget[0] -= 1
                    wanted.append(other)
        if not wanted:
            break
        found = {j.jid: j for j in client.jobs.get(*wanted)}
        for jid in wanted:
            levels[jid] = depth * level_step
            job = found.get(jid)
            jobs[jid] = ({"jid": jid, "state": job.state.value, "klass": job.klass,
                          "dependencies": job.dependencies, "dependents": job.dependents}
                         if job is not None else {"jid": jid, "state": "gone", "klass": ""})
        frontier = [jid for jid in wanted if jid in found]
    return edges


def dependency_graph(client: Client, job: dict[str, Any]) -> Graph:
    """The job's dependencies and dependents, GRAPH_DEPTH levels each way and at most GRAPH_NODES
    jobs, laid out left (upstream) to right (downstream), one column per level."""
    jid = job["jid"]
    jobs = {jid: {"jid": jid, "state": job.get("state", ""), "klass": job.get("klass", ""),
                  "dependencies": job.get("dependencies") or [], "dependents": job.get("dependents") or []}}
    levels = {jid: 0}
    budget = [GRAPH_NODES - 1, 0]
    edges = _walk(client, jobs[jid], "dependencies", -1, levels, jobs, budget)
    edges += _walk(client, jobs[jid], "dependents", 1, levels, jobs, budget)
    graph = Graph(left_out=budget[1])
    if len(levels) <= 1:
        graph.nodes = [{**jobs[jid], "current": True}]
        return graph
    columns: dict[int, list[str]] = {}
    for node, level in levels.items():
        columns.setdefault(level, []).append(node)
    low = min(columns)
    tallest = max(len(c) for c in columns.values())
    graph.width = PAD * 2 + len(columns) * NODE_W + (len(columns) - 1) * GAP_X
    graph.height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for level, members in sorted(columns.items()):
        x = PAD + (level - low) * (NODE_W + GAP_X)
        top = PAD + (tallest - len(members)) * (NODE_H + GAP_Y) / 2
        for i, node in enumerate(sorted(members)):
            y = top + i * (NODE_H + GAP_Y)
            where[node] = (x, y)
            graph.nodes.append({**jobs[node], "x": x, "y": y, "current": node == jid,
                                "tx": x + 6, "ty1": y + 15, "ty2": y + 30})
    seen = set()
    for a, b in edges:
        if a in where and b in where and (a, b) not in seen:
            seen.add((a, b))
            (ax, ay), (bx, by) = where[a], where[b]
            graph.edges.append({"x1": ax + NODE_W, "y1": ay + NODE_H / 2, "x2": bx, "y2": by + NODE_H / 2,
                                "mx": (ax + NODE_W + bx) / 2})
    return graph
