"""The benchmark harness: queueengine side by side with RQ, Celery, huey, arq, saq and raw Redis.

    python bench/run.py [--quick] [--only rq,huey] [--out docs/] [--no-growth]

Starts ONE private redis-server on a free loopback port (queueengine.devtools.embedded.EmbeddedRedis),
then runs every workload for every system in turn, each in a subprocess with that system's own
environment (bench/.venv-peers, bench/.venv-arq; see bench/setup.sh), collects the JSON results,
prints the tables and writes ``<out>/benchmarks.md``, ``<out>/bench-throughput.png`` and
``<out>/bench-latency.png`` (and the raw numbers to bench/results/latest.json).

Workloads (one row per system in each):

- enqueue: N small jobs, one producer, one call per job (median of 3 rounds; also Redis memory
  per waiting job);
- batch_enqueue: the same N jobs in calls of 1,000 where the system has a batch API (median of 3 rounds);
- drain_1 / drain_4: N queued no-op jobs, 1 or 4 worker processes, from the moment every worker
  holds its first job to the last completion (see systems/common.py);
- roundtrip: sequential submit-and-wait-for-result calls with one worker running (median of 3 rounds,
  1 in QUICK).

Throughput on a shared machine drifts from run to run, so the tables lead with ratios: to the
raw-Redis floor and to the best of the five peers in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from catalog import PEERS_PY, SYSTEMS, WORKLOADS  # noqa: E402
from report import fmt, log, rate, report, status  # noqa: E402

ENGINE_SRC: Path = ROOT  # where the subprocesses import queueengine from (see --engine-rev)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(BENCH), str(ENGINE_SRC), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("BENCH_PROBE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def run_action(system: tuple[str, str, str, str, Path, str], action: str, url: str, cfg: dict[str, Any],
               extra: dict[str, int], logdir: Path) -> dict[str, Any]:
    key, _label, adapter, variant, py, _kind = system
    if not py.exists():
        return {"available": False, "reason": f"{py.relative_to(ROOT)} missing: run bash bench/setup.sh"}
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=logdir, delete=False) as fh:
        out = Path(fh.name)
    argv = [str(py), "-m", "systems.runner", adapter, action, "--url", url, "--n", str(cfg["n"]),
            "--rt-n", str(cfg["rt_n"]), "--chunk", str(cfg["chunk"]), "--deadline", str(cfg["deadline"]),
            "--variant", variant, "--logdir", str(logdir), "--out", str(out)]
    for k, v in extra.items():
        argv += [f"--{k}", str(v)]
    timeout = cfg["deadline"] * 2 + 90
    logfile = logdir / f"{key}-{action}{extra.get('procs', '')}.log"
    try:
        with open(logfile, "wb") as lf:
            proc = subprocess.run(argv, cwd=BENCH, env=child_env(), stdin=subprocess.DEVNULL, stdout=lf,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        text = out.read_text()
        if not text.strip():
            tail = logfile.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return {"error": f"exit {proc.returncode}: {tail[0][:300]}"}
        return json.loads(text)  # type: ignore[no-any-return]
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s (see {logfile.relative_to(ROOT)})"}
    finally:
        out.unlink(missing_ok=True)


def machine_info(redis_url: str) -> dict[str, Any]:
    import redis

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    conn = redis.Redis.from_url(redis_url)
    server = conn.info("server")
    allocator = conn.info("memory").get("mem_allocator", "?")
    conn.close()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "redis": f"{server.get('redis_version')} ({allocator})",
        "python": platform.python_version(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def engine_snapshot(rev: str, dest: Path) -> tuple[Path, str]:
    """Extract queueengine/ as of ``rev`` into ``dest`` (read-only git archive); return (dir, short sha)."""
    sha = git("rev-parse", "--short", rev)
    if not sha:
        raise SystemExit(f"bench/run.py: unknown revision {rev!r}")
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", sha, "queueengine"], cwd=ROOT,
                             capture_output=True, timeout=60, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, timeout=60, check=True)
    return dest, sha


def engine_label(rev: str | None, sha: str) -> str:
    if rev:
        return f"`{sha}` (queueengine/ as committed)"
    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--", "queueengine")
    return f"`{head}`" + (" plus uncommitted changes in queueengine/" if dirty else "")


# ---------------------------------------------------------------------------------------------
# Ratios and tables


def run_growth(url: str, cfg: dict[str, Any], logdir: Path) -> dict[str, Any]:
    out = logdir / "growth.json"
    out.unlink(missing_ok=True)
    argv = [str(PEERS_PY), str(BENCH / "growth.py"), "--url", url, "--out", str(out),
            "--sizes", ",".join(str(s) for s in cfg["growth_sizes"]), "--deadline", str(cfg["growth_deadline"])]
    timeout = cfg["growth_deadline"] * 2 + 120
    try:
        with open(logdir / "growth.log", "wb") as lf:
            subprocess.run(argv, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=lf,
                           stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"growth.py timed out after {timeout:.0f}s"}
    if not out.exists():
        tail = (logdir / "growth.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:300]}
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: finishes in under 2 minutes")
    ap.add_argument("--only", default="", help="comma-separated system keys: " + ",".join(s[0] for s in SYSTEMS)
                    + " (qe = all queueengine variants when given alone as 'qe*')")
    ap.add_argument("--workloads", default="", help="comma-separated: " + ",".join(w[0] for w in WORKLOADS))
    ap.add_argument("--out", default=str(ROOT / "docs"), help="where benchmarks.md and the PNGs go")
    ap.add_argument("--no-growth", action="store_true", help="skip bench/growth.py")
    ap.add_argument("--n", type=int, help="override N")
    ap.add_argument("--engine-rev", default="", help="benchmark queueengine/ as of this git revision "
                    "(e.g. HEAD) instead of the working tree")
    return ap.parse_args(argv)


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes, deadlines and rounds of a full or a --quick run."""
    return {
        "quick": args.quick,
        "n": args.n or (2_000 if args.quick else 10_000),
        "rt_n": 100 if args.quick else 500,
        "chunk": 1_000,
        "deadline": 20.0 if args.quick else 60.0,
        "growth_sizes": [10_000, 50_000] if args.quick else [10_000, 100_000, 1_000_000],
        "growth_deadline": 30.0 if args.quick else 150.0,
        # Short workloads run in several rounds (every system once per round, so noise and CPU
        # placement vary between rounds); each system's median round is reported.
        "rounds": {"enqueue": 3, "batch_enqueue": 3, "roundtrip": 1 if args.quick else 3},
    }


def new_log_dir() -> Path:
    """This run's log folder under bench/results/tmp (only the last five runs' are kept)."""
    import shutil

    tmp_root = BENCH / "results" / "tmp"
    logdir = tmp_root / time.strftime("%Y%m%d-%H%M%S")
    logdir.mkdir(parents=True, exist_ok=True)
    for old in sorted(p for p in tmp_root.iterdir() if p.is_dir())[:-5]:  # keep the last five runs' logs
        shutil.rmtree(old, ignore_errors=True)
    return logdir


def median_round(got: list[dict[str, Any]]) -> dict[str, Any]:
    """The result to report of one system's rounds: the median of those with a rate."""
    good = sorted((r for r in got if rate(r)), key=lambda r: rate(r) or 0)
    if not good:
        return got[-1]
    best = good[len(good) // 2]
    if len(got) > 1:
        best["rounds_jobs_per_s"] = [rate(r) for r in got]
    failed = [r["error"] for r in got if "error" in r]
    if failed:
        best.setdefault("notes", []).append(f"{len(failed)} of {len(got)} rounds failed ({failed[0][:80]})")
    return best


def run_workload(workload: tuple[Any, ...], systems: list[Any], results: dict[str, Any], url: str,
                 cfg: dict[str, Any], logdir: Path) -> dict[str, Any]:
    """Every system's result of one workload (its median round)."""
    wl, _title, action, extra = workload
    out: dict[str, Any] = {}
    rounds = cfg["rounds"].get(wl, 1)
    runs: dict[str, list[dict[str, Any]]] = {s[0]: [] for s in systems}
    for rnd in range(rounds):
        for s in systems:
            if not results["systems"][s[0]].get("available"):
                out[s[0]] = results["systems"][s[0]]
                continue
            if runs[s[0]] and ("na" in runs[s[0]][-1] or runs[s[0]][-1].get("available") is False):
                continue  # n/a: once is enough (an error is tried again next round)
            t = time.monotonic()
            res = run_action(s, action, url, cfg, extra, logdir)
            runs[s[0]].append(res)
            log(f"{wl:<14} {s[1]:<26} {status(res) or fmt(rate(res)) + ' jobs/s'}"
                f"  ({time.monotonic() - t:.1f}s{f', round {rnd + 1}/{rounds}' if rounds > 1 else ''})")
    out.update({key: median_round(got) for key, got in runs.items() if got})
    return out


def growth(results: dict[str, Any], url: str, cfg: dict[str, Any], logdir: Path) -> dict[str, Any]:
    """bench/growth.py's report, or why it was not run."""
    qe = results["systems"].get("qe", {})
    if not qe.get("available"):
        return {"available": False, "reason": qe.get("reason", "queueengine not run")}
    t = time.monotonic()
    found = run_growth(url, cfg, logdir)
    log(f"growth done ({time.monotonic() - t:.1f}s)")
    return found


def measure(args: argparse.Namespace, cfg: dict[str, Any], url: str, logdir: Path,
            results: dict[str, Any]) -> None:
    """Check the systems, run the workloads (and growth) against ``url``; fills ``results``."""
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if "qe*" in only:
        only |= {s[0] for s in SYSTEMS if s[0].startswith("qe")}
    systems = [s for s in SYSTEMS if not only or s[0] in only]
    wl_only = {x.strip() for x in args.workloads.split(",") if x.strip()}
    results["machine"] = machine_info(url)
    for s in systems:
        info = run_action(s, "check", url, cfg, {}, logdir)
        results["systems"][s[0]] = info
        log(f"{s[1]}: " + (info.get("version", "") if info.get("available") else
                            f"not available: {info.get('reason')}"))
    for workload in WORKLOADS:
        if not wl_only or workload[0] in wl_only:
            results["workloads"][workload[0]] = run_workload(workload, systems, results, url, cfg, logdir)
    if not args.no_growth and (not only or "qe" in only):
        results["growth"] = growth(results, url, cfg, logdir)
    results["machine"]["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (see the module docstring)."""
    args = parse_args(argv)
    cfg = config_of(args)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    logdir = new_log_dir()

    global ENGINE_SRC
    sha = ""
    if args.engine_rev:
        ENGINE_SRC, sha = engine_snapshot(args.engine_rev, logdir / "src")
        log(f"queueengine from {args.engine_rev} ({sha}), extracted to {ENGINE_SRC.relative_to(ROOT)}")

    from queueengine.devtools.embedded import EmbeddedRedis

    started = time.monotonic()
    server = EmbeddedRedis(logdir / "redis")
    url = server.start()
    log(f"private redis-server on {url} (logs and worker output in {logdir.relative_to(ROOT)})")
    results: dict[str, Any] = {"config": cfg, "git": engine_label(args.engine_rev or None, sha),
                               "systems": {}, "workloads": {}}
    try:
        measure(args, cfg, url, logdir, results)
    finally:
        server.stop()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return report(results, args.quick, out)


if __name__ == "__main__":
    raise SystemExit(main())
