"""The benchmark report: ratios, tables, docs/benchmarks.md and the charts, from the results of
bench/run.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from catalog import BENCH, SYSTEMS, WORKLOADS
from targets import metrics_section, targets_section


def log(msg: str) -> None:
    """One timestamped line of the harness's progress."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rate(res: dict[str, Any] | None) -> float | None:
    if not res or "jobs_per_s" not in res or not res.get("jobs_per_s"):
        return None
    return float(res["jobs_per_s"])


def add_ratios(results: dict[str, Any]) -> None:
    kinds = {s[0]: s[5] for s in SYSTEMS}
    for wl, *_ in WORKLOADS:
        rows = results["workloads"].get(wl, {})
        raw = rate(rows.get("raw"))
        peers = [(rate(r), k) for k, r in rows.items() if kinds.get(k) == "peer" and rate(r)]
        best = max(peers) if peers else (None, None)
        results.setdefault("best_peer", {})[wl] = best[1]
        for _k, r in rows.items():
            x = rate(r)
            if x is None:
                continue
            r["x_raw"] = round(x / raw, 3) if raw else None
            r["x_best_peer"] = round(x / best[0], 3) if best[0] else None


def fmt(x: Any, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and digits:
        return f"{x:.{digits}f}"
    if isinstance(x, (int, float)):
        return f"{x:,.0f}"
    return str(x)


def fmt_ms(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def status(res: dict[str, Any] | None) -> str:
    if res is None:
        return "not run"
    if res.get("available") is False:
        return f"not available: {res.get('reason', '?')}"
    if "na" in res:
        return f"n/a: {res['na']}"
    if "error" in res:
        return f"error: {res['error']}"
    return ""


def workload_table(results: dict[str, Any], wl: str) -> list[str]:
    rows = results["workloads"].get(wl, {})
    labels = {s[0]: s[1] for s in SYSTEMS}
    lines = ["| system | jobs/s | p50 ms | p99 ms | × raw Redis | × best peer | Redis µs/job | Redis calls/job | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    order = sorted(rows, key=lambda k: -(rate(rows[k]) or -1))
    for k in order:
        r = rows[k]
        st = status(r)
        if st:
            lines.append(f"| {labels[k]} | – | – | – | – | – | – | – | {st} |")
            continue
        notes = "; ".join(r.get("notes") or [])
        if r.get("rounds_jobs_per_s"):
            notes = (notes + "; " if notes else "") + "rounds: " + " / ".join(
                fmt(x) if x else "failed" for x in r["rounds_jobs_per_s"])
        if wl == "batch_enqueue" and r.get("chunk"):
            notes = (notes + "; " if notes else "") + f"latency per call of {r['chunk']:,} jobs"
        lines.append(
            f"| {labels[k]} | {fmt(rate(r))} | {fmt_ms(r.get('p50_ms'))} | {fmt_ms(r.get('p99_ms'))} | "
            f"{fmt(r.get('x_raw'), 2)} | {fmt(r.get('x_best_peer'), 2)} | {fmt(r.get('redis_us_per_job'), 1)} | "
            f"{fmt(r.get('redis_calls_per_job'), 1)} | {notes} |")
    return lines


def summary_table(results: dict[str, Any]) -> list[str]:
    labels = {s[0]: s[1] for s in SYSTEMS}
    head = "| system | " + " | ".join(w[0] for w in WORKLOADS) + " |"
    lines = [head, "|---|" + "---:|" * len(WORKLOADS)]
    for key, *_ in SYSTEMS:
        if key not in results["systems"]:
            continue
        info = results["systems"][key]
        if info.get("available") is False:
            lines.append(f"| {labels[key]} | " + " | ".join(["–"] * len(WORKLOADS)) + " |")
            continue
        cells = []
        for wl, *_ in WORKLOADS:
            r = results["workloads"].get(wl, {}).get(key)
            x = rate(r)
            cells.append("n/a" if r and "na" in r else ("err" if r and "error" in r else fmt(x)))
        lines.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    return lines


def headline_table(results: dict[str, Any]) -> list[str]:
    """Our engine's jobs/s as a multiple of the best peer's (and of the raw floor's), per workload."""
    labels = {s[0]: s[1] for s in SYSTEMS}
    ours = [s[0] for s in SYSTEMS if s[5] == "ours"]
    head = "| workload | best peer (jobs/s) | raw floor (jobs/s) | " + " | ".join(
        labels[k].replace("queueengine ", "").strip("()") for k in ours) + " |"
    lines = [head, "|---|---|---:|" + "---:|" * len(ours)]
    for wl, *_ in WORKLOADS:
        rows = results["workloads"].get(wl, {})
        best = results.get("best_peer", {}).get(wl)
        best_s = f"{labels[best]} ({fmt(rate(rows.get(best)))})" if best else "–"
        cells = []
        for k in ours:
            r = rows.get(k)
            if r is None or status(r):
                cells.append("n/a" if r and "na" in r else "–")
            else:
                xb, xr = r.get("x_best_peer"), r.get("x_raw")
                cells.append(f"**{xb:.2f}×** ({xr:.2f}× raw)" if xb is not None and xr is not None
                             else (f"{xr:.2f}× raw" if xr is not None else "–"))
        lines.append(f"| {wl} | {best_s} | {fmt(rate(rows.get('raw')))} | " + " | ".join(cells) + " |")
    return lines


def memory_table(results: dict[str, Any]) -> list[str]:
    labels = {s[0]: s[1] for s in SYSTEMS}
    rows = results["workloads"].get("enqueue", {})
    lines = ["| system | bytes per waiting job (INFO used_memory_dataset delta / N) |", "|---|---:|"]
    for key, *_ in SYSTEMS:
        r = rows.get(key)
        if r and r.get("bytes_per_job") is not None:
            lines.append(f"| {labels[key]} | {r['bytes_per_job']:,.0f} |")
    return lines


def redis_profile_section(results: dict[str, Any]) -> list[str]:
    """For our engine: the Redis commands that cost the server most per job, per workload."""
    labels = {s[0]: s[1] for s in SYSTEMS}
    lines = ["| system | workload | Redis µs/job | calls/job | top commands (calls/job, server µs/job) |",
             "|---|---|---:|---:|---|"]
    for key, *_rest in SYSTEMS:
        if not key.startswith("qe"):
            continue
        for wl, *_ in WORKLOADS:
            r = results["workloads"].get(wl, {}).get(key)
            if not r or status(r) or not r.get("redis_top"):
                continue
            top = ", ".join(f"{name} {c:g}× {u:g} µs" for name, (c, u) in list(r["redis_top"].items())[:4])
            lines.append(f"| {labels[key]} | {wl} | {fmt(r.get('redis_us_per_job'), 1)} | "
                         f"{fmt(r.get('redis_calls_per_job'), 1)} | {top} |")
    return lines


def growth_section(results: dict[str, Any]) -> list[str]:
    g = results.get("growth")
    if not g:
        return ["Not run."]
    if g.get("available") is False or "error" in g:
        return [f"Not available: {g.get('reason') or g.get('error')}"]
    lines = ["Our engine with S jobs waiting in one queue (filled with `put_many`): the cost of one more",
             "`put`, of `pop` and of `complete` (p50 / p99 over "
             f"{g.get('samples', '?')} calls each), and Redis memory per waiting job.", "",
             "| jobs waiting | put p50/p99 ms | pop p50/p99 ms | complete p50/p99 ms | bytes/job | fill jobs/s | dashboard |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for row in g.get("sizes", []):
        def pair(name: str, row: dict[str, Any] = row) -> str:
            v = row.get(name) or {}
            return f"{fmt_ms(v.get('p50_ms'))} / {fmt_ms(v.get('p99_ms'))}"
        dash = row.get("dashboard")
        if isinstance(dash, dict):
            dash_s = ", ".join(f"{k} {fmt_ms(v)} ms" for k, v in dash.items())
        else:
            dash_s = str(dash or "–")
        lines.append(f"| {row['waiting']:,} | {pair('put')} | {pair('pop')} | {pair('complete')} | "
                     f"{fmt(row.get('bytes_per_job'))} | {fmt(row.get('fill_jobs_per_s'))} | {dash_s} |")
    for note in g.get("notes", []):
        lines.append(f"\n{note}")
    return lines


LIMITS = """\
- **One machine, {nproc} cores, shared.** The producer, the worker processes and Redis all run on
  the same {nproc} cores, and other work on the machine (load average {load_start} at the start,
  {load_end} at the end) moves absolute numbers by tens of percent between runs. On this VM a
  one-connection ping-pong (enqueue, round trip, the raw floor's drain) is also bimodal: it runs
  up to twice as fast when the client and Redis happen to share a core. Short workloads therefore
  run in three rounds (the median is reported, the rounds are in the notes); drains run once.
  Compare the ratios, and do not read differences under ~20% as real.
- **Enqueue** is bounded by one Python producer making one network round trip per job: client
  library overhead (serialisation, redis-py, the system's own bookkeeping) plus one loopback RTT.
  Redis itself is far from saturated here; the raw floor shows what a single LPUSH costs.
- **Batch enqueue** amortises the round trip; what remains is Python-side serialisation and the
  server-side work per job (one LPUSH for the floor, a job record plus queue entries for the others).
- **Drain** is bounded by the worker's per-job Python work (fetch, decode, bookkeeping, result
  write, ack) and its Redis round trips; with 4 processes on {nproc} cores the workers compete
  with each other and with Redis for CPU, so drain_4 is at best about {nproc}× drain_1, never 4×.
  The raw floor takes one BRPOP per job: a worker that fetches in batches and acknowledges in
  batches (queueengine simple: BLMPOP of up to 16, results published together) can beat it.
- **Round trip** is latency: worker wake-up (blocking pop vs polling), job execution, result
  storage and the caller's wake-up (pub/sub, blocking pop, or polling). Systems that poll are
  bounded by their poll interval (arq: see how it is driven below).
- **Memory per job** is Redis `used_memory_dataset` growth after N single enqueues, divided by N: job
  records, queue entries, and (for small N) allocator noise.
"""


def write_markdown(results: dict[str, Any], out: Path) -> Path:
    m = results["machine"]
    cfg = results["config"]
    lines = [
        "# Benchmarks: queueengine vs RQ, Celery, huey, arq, saq and raw Redis",
        "",
        f"Generated by `make bench{' QUICK=1' if cfg['quick'] else ''}` (`bench/run.py`) on **{m['date']}**, "
        f"engine at {results['git']}, in {results['elapsed_s']:.0f} s.",
        "",
        f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}",
        f"- Redis {m['redis']}: one private `redis-server` on loopback, shared by every system, "
        "emptied (FLUSHALL) before each workload",
        f"- Python {m['python']}; N = {cfg['n']:,} jobs per enqueue/drain workload, "
        f"{cfg['rt_n']:,} round trips, batches of {cfg['chunk']:,}",
        "- Versions: " + "; ".join(
            f"{s[1]}: {results['systems'][s[0]].get('version', '–')}" for s in SYSTEMS
            if results["systems"].get(s[0], {}).get("available")),
        "",
        "Ratios are this system's jobs/s divided by the raw-Redis floor's and by the best of the five "
        "peers (RQ, Celery, huey, arq, saq) in the same workload of the same run. *Redis µs/job* is the "
        "server's CPU time (INFO cpu) over the measured phase per job, *Redis calls/job* the commands it "
        "ran (INFO commandstats, commands inside Lua scripts included): the share of the cost that sits "
        "in Redis rather than in Python.",
        "",
        "![throughput](bench-throughput.png)",
        "",
        "![latency](bench-latency.png)",
        "",
        "## Headline: queueengine as a multiple of the best peer",
        "",
        "Above 1.00× we are faster than the fastest of RQ, Celery, huey, arq and saq in that workload; "
        "in brackets, the multiple of the raw LPUSH/BRPOP floor.",
        "",
        *headline_table(results),
        "",
        "## Targets (issue 7), against this run's figures",
        "",
        *targets_section(results),
        "",
        "## Summary (jobs/s)",
        "",
        *summary_table(results),
        "",
    ]
    for wl, title, *_ in WORKLOADS:
        best = results.get("best_peer", {}).get(wl)
        best_label = next((s[1] for s in SYSTEMS if s[0] == best), "–")
        lines += [f"## {title}", "", f"Best peer: {best_label}.", "", *workload_table(results, wl), ""]
    lines += ["## Redis memory per waiting job", "", *memory_table(results), "",
              "## Growth with queue length (queueengine)", "", *growth_section(results), "",
              "## Metrics on vs off (issue 15)", "",
              "The engine's Qless API with its metrics as time series on (the default) and off "
              "(`client.config[\"metrics\"] = 0`), measured side by side in this run:", "",
              *metrics_section(results), "",
              "## Where queueengine's Redis time goes", "",
              "Per job, over each measured phase (`INFO commandstats`; commands run inside our Lua "
              "functions are counted under their own names as well as in `fcall`/`evalsha`). "
              "`bench/profile_engine.py` adds the Python side (cProfile of put, a worker, a round trip).", "",
              *redis_profile_section(results), "",
              "## How each system is driven", ""]
    for key, label, *_ in SYSTEMS:
        info = results["systems"].get(key)
        if not info:
            continue
        if info.get("available"):
            lines.append(f"- **{label}**: {info.get('how', '')}")
        else:
            lines.append(f"- **{label}**: not available: {info.get('reason', '?')}")
    lines += ["", "Every system runs the same jobs: the drain job only reports to the probe, the round-trip "
              "job returns its argument. Drains and round trips start their workers as separate "
              "processes; a drain's clock starts when every worker holds its first job (start-up "
              "excluded) and stops at the last completion.", "",
              "## What limits each figure", "",
              LIMITS.format(nproc=m["nproc"], load_start=m["load_start"], load_end=m.get("load_end", "?"))]
    path = out / "benchmarks.md"
    path.write_text("\n".join(lines))
    return path


def write_charts(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {s[0]: s[1] for s in SYSTEMS}
    colors = {"floor": "#9e9e9e", "peer": "#4c78a8", "ours": "#f58518"}
    kinds = {s[0]: s[5] for s in SYSTEMS}
    stamp = f"{results['machine']['date']}, {results['machine']['nproc']} cores, N={results['config']['n']:,}"
    paths = []

    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def kfmt(v: float, _pos: int) -> str:
        return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"

    fig, grid = plt.subplots(2, 3, figsize=(15, 8.5))
    axes = list(grid.flat)
    for ax, (wl, title, *_rest) in zip(axes, WORKLOADS, strict=False):
        rows = results["workloads"].get(wl, {})
        keys = [s[0] for s in SYSTEMS if s[5] != "variant" and rate(rows.get(s[0]))]
        vals = [rate(rows[k]) or 0 for k in keys]
        if not keys:
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ax.barh([labels[k] for k in keys], vals, color=[colors[kinds[k]] for k in keys])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("jobs/s")
        ax.xaxis.set_major_formatter(FuncFormatter(kfmt))
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
        for y, v in enumerate(vals):
            ax.text(v, y, f" {v:,.0f}", va="center", fontsize=7)
        ax.margins(x=0.3)
    last = axes[-1]
    last.axis("off")
    last.legend(handles=[Patch(color=colors["ours"], label="queueengine"),
                         Patch(color=colors["peer"], label="peers (RQ, Celery, huey, arq, saq)"),
                         Patch(color=colors["floor"], label="raw Redis LPUSH/BRPOP floor")],
                loc="center", fontsize=10, frameon=False)
    fig.suptitle(f"Throughput per system (higher is better) — {stamp}", fontsize=11)
    fig.tight_layout()
    p = out / "bench-throughput.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)

    lat_wls = [("enqueue", "Enqueue latency per call"), ("roundtrip", "Round-trip latency")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax, (wl, title) in zip(axes, lat_wls, strict=True):
        rows = results["workloads"].get(wl, {})
        keys = [s[0] for s in SYSTEMS if s[5] != "variant" and rows.get(s[0], {}).get("p50_ms") is not None]
        p50 = [rows[k]["p50_ms"] for k in keys]
        p99 = [rows[k]["p99_ms"] for k in keys]
        if not keys:
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ys = range(len(keys))
        ax.barh([y - 0.2 for y in ys], p50, height=0.4, label="p50",
                color=[colors[kinds[k]] for k in keys])
        ax.barh([y + 0.2 for y in ys], p99, height=0.4, label="p99",
                color=[colors[kinds[k]] for k in keys], alpha=0.45)
        ax.set_yticks(list(ys), [labels[k] for k in keys], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("milliseconds (log scale; solid p50, light p99)")
        ax.set_title(title, fontsize=10)
        for y, (a, b) in enumerate(zip(p50, p99, strict=True)):
            ax.text(b, y + 0.2, f" {fmt_ms(a)} / {fmt_ms(b)}", va="center", fontsize=7)
        ax.margins(x=0.3)
    fig.suptitle(f"Latency per system (lower is better) — {stamp}", fontsize=11)
    fig.tight_layout()
    p = out / "bench-latency.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths


def print_tables(results: dict[str, Any]) -> None:
    print()
    print("\n".join(summary_table(results)))
    for wl, title, *_ in WORKLOADS:
        print(f"\n{title}")
        print("\n".join(workload_table(results, wl)))
    print("\nGrowth")
    print("\n".join(growth_section(results)))


def report(results: dict[str, Any], quick: bool, out: Path) -> int:
    """Write the JSON, print the tables, write benchmarks.md and the charts; the exit code."""
    add_ratios(results)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / ("latest-quick.json" if quick else "latest.json")).write_text(
        json.dumps(results, indent=1, default=str))
    print_tables(results)
    md = write_markdown(results, out)
    try:
        charts = write_charts(results, out)
    except Exception as exc:  # the tables are written already; say what broke the charts
        log(f"wrote {md}; the charts failed: {type(exc).__name__}: {exc}")
        return 1
    log(f"wrote {md}, " + ", ".join(str(p) for p in charts) + f" in {results['elapsed_s']:.0f}s")
    return 0
