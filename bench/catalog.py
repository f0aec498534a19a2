"""What the benchmarks run: the systems (peers, the raw floor, the engine's variants) and the
workloads, with the interpreter each system runs under (see bench/setup.sh)."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS_PY = BENCH / ".venv-peers" / "bin" / "python"
ARQ_PY = BENCH / ".venv-arq" / "bin" / "python"

# (key, label, adapter, variant, interpreter, kind)
SYSTEMS: list[tuple[str, str, str, str, Path, str]] = [
    ("raw", "raw Redis (floor)", "raw", "", PEERS_PY, "floor"),
    ("rq", "RQ", "rq", "", PEERS_PY, "peer"),
    ("celery", "Celery", "celery", "", PEERS_PY, "peer"),
    ("huey", "huey", "huey", "", PEERS_PY, "peer"),
    ("arq", "arq", "arq", "", ARQ_PY, "peer"),
    ("saq", "saq", "saq", "", PEERS_PY, "peer"),
    ("qe", "queueengine (Qless API)", "queueengine", "qless", PEERS_PY, "ours"),
    ("qe-nometrics", "queueengine (Qless API), metrics off", "queueengine", "qless-nometrics", PEERS_PY, "variant"),
    ("qe-simple", "queueengine simple", "queueengine", "simple", PEERS_PY, "ours"),
    ("qe-recoverable", "queueengine recoverable", "queueengine", "recoverable", PEERS_PY, "ours"),
    ("qe-reliable", "queueengine reliable", "queueengine", "reliable", PEERS_PY, "ours"),
]

WORKLOADS: list[tuple[str, str, str, dict[str, int]]] = [
    # (key, title, runner action, extra args)
    ("enqueue", "Enqueue, one call per job", "enqueue", {}),
    ("batch_enqueue", "Batch enqueue (calls of 1,000 jobs)", "batch_enqueue", {}),
    ("drain_1", "Drain, 1 worker process", "drain", {"procs": 1}),
    ("drain_4", "Drain, 4 worker processes", "drain", {"procs": 4}),
    ("roundtrip", "Round trip: submit and wait for the result", "roundtrip", {}),
]
