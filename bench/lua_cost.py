"""Server-side cost of the engine's hot Lua commands, per job (for the engine engineers).

    .venv/bin/python bench/lua_cost.py [--n 2000] [--url redis://...] [--metrics off]

Starts a private Redis (unless ``--url``), then runs each hot path ``--n`` times and prints, from
``INFO commandstats``, the server microseconds per job spent in FCALL/EVALSHA (commands run inside
the Lua included) and the number of Redis commands per job. Wall-clock numbers on a shared
machine drift; this one measures the work Redis does for us, which is what the Lua changes move.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queueengine import Client  # noqa: E402
from queueengine.devtools.embedded import EmbeddedRedis  # noqa: E402

KLASS = "systems.jobs.qe_noop"


def _cpu(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cost(conn: redis.Redis, jobs: int, fn: Callable[[], None]) -> tuple[float, float, float, float]:
    """(µs in Lua per job, Redis commands per job, fcalls per job, server CPU µs per job) for
    running ``fn`` once. The CPU figure (INFO cpu) is the steadier one on a busy machine."""
    conn.config_resetstat()
    before = _cpu(conn)
    fn()
    cpu = (_cpu(conn) - before) * 1e6 / jobs
    return (*_read(conn, jobs), cpu)


def _read(conn: redis.Redis, jobs: int) -> tuple[float, float, float]:
    stats = conn.info("commandstats")
    lua = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))
    fcalls = sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_fcall", "cmdstat_evalsha"))
    calls = sum(v["calls"] for k, v in stats.items()
                if k not in ("cmdstat_fcall", "cmdstat_evalsha") and not k.startswith("cmdstat_config"))
    return lua / jobs, calls / jobs, fcalls / jobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="report the cheapest of this many rounds")
    ap.add_argument("--metrics", choices=("on", "off"), default="on", help="the engine's metrics option")
    opts = ap.parse_args()
    best: dict[str, tuple[float, float, float, float]] = {}
    for _ in range(opts.rounds):
        for name, figures in one_round(opts):
            if name not in best or figures[0] < best[name][0]:
                best[name] = figures
    print(f"{'path':<24} {'Lua µs/job':>11} {'Redis cmds/job':>15} {'fcalls/job':>11} {'CPU µs/job':>11}")
    for name, (us, calls, fcalls, cpu) in best.items():
        print(f"{name:<24} {us:>11.1f} {calls:>15.1f} {fcalls:>11.2f} {cpu:>11.1f}")


def one_round(opts: argparse.Namespace) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Every path once: [(name, (µs/job, commands/job, fcalls/job))]."""
    n = opts.n
    server = None
    url = opts.url
    if url is None:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="qe-luacost-"))
        url = server.start()
    try:
        conn = redis.Redis.from_url(url)
        conn.flushdb()
        client = Client.from_url(url, namespace="cost", worker_name="cost")
        flush = conn.flushdb

        def flushdb() -> None:
            flush()
            if opts.metrics == "off":
                client.config["metrics"] = 0

        conn.flushdb = flushdb  # type: ignore[method-assign]
        conn.flushdb()
        q = client.queues["cost"]
        q.put(KLASS, {})
        q.pop().complete()
        rows: list[tuple[str, tuple[float, float, float, float]]] = []

        rows.append(("put", cost(conn, n, lambda: [q.put(KLASS, {"i": i}) for i in range(n)])))
        rows.append(("pop(1)", cost(conn, n, lambda: [q.pop() for _ in range(n)])))
        held = client.pop_from(["cost"], 0)
        conn.flushdb()
        for _ in range(n // 1000 + 1):
            q.put_many([(KLASS, {"i": i}) for i in range(1000)])
        jobs: list = []
        rows.append(("pop(8)", cost(conn, n, lambda: [jobs.extend(q.pop(8)) for _ in range(n // 8)])))
        rows.append(("complete(1)", cost(conn, n // 2, lambda: [j.complete() for j in jobs[: n // 2]])))
        rest = jobs[n // 2:]
        rows.append(("complete_many(8)", cost(conn, len(rest), lambda: [
            client.complete_many([(j, None) for j in rest[i:i + 8]]) for i in range(0, len(rest), 8)])))
        conn.flushdb()
        rows.append(("put_many(1000)", cost(conn, n, lambda: [
            q.put_many([(KLASS, {"i": i}) for i in range(1000)]) for _ in range(max(1, n // 1000))])))
        conn.flushdb()

        def roundtrip() -> None:
            for i in range(n // 4):
                jid = q.put(KLASS, {"i": i}, reply=True)
                job = q.pop()
                assert job is not None and job.jid == jid
                job.complete(i)
                assert client.wait(jid, 1) == i
        rows.append(("put+pop+complete+wait", cost(conn, n // 4, roundtrip)))
        del held
        client.close()
        return rows
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
