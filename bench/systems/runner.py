"""Run one workload of one system and write its JSON result.

    python -m systems.runner SYSTEM ACTION --url redis://... [--n N] [--rt-n N] [--chunk C]
                             [--procs K] [--variant V] [--deadline S] [--out FILE]

ACTION is one of ``check``, ``enqueue``, ``batch_enqueue``, ``drain``, ``roundtrip`` (run by
bench/run.py) or ``worker`` (started by a drain or a round trip). An adapter module provides:

- ``describe(ctx) -> dict``: versions and how the system is driven (raises if unusable);
- ``enqueue_calls(ctx) -> list[float]``: ``ctx.n`` single enqueues, each call's latency;
- ``batch_calls(ctx) -> list[float]`` (optional): ``ctx.n`` jobs in calls of ``ctx.chunk``;
- ``prefill(ctx)``: queue ``ctx.n`` drain jobs the fastest way it has;
- ``worker(ctx)``: run one worker process until SIGTERM;
- ``roundtrip_calls(ctx, count, first_timeout) -> list[float]``: sequential submit-and-wait calls.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import traceback
from typing import Any

from systems import common

MODULES = {
    "raw": "systems.raw",
    "rq": "systems.rq_bench",
    "celery": "systems.celery_bench",
    "huey": "systems.huey_bench",
    "arq": "systems.arq_bench",
    "saq": "systems.saq_bench",
    "queueengine": "systems.queueengine_bench",
}


def _error(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last[:400]


def run_worker(mod: Any, ctx: common.Ctx) -> int:
    """The ``worker`` action; with ``BENCH_PROFILE=<dir>``, every thread of it profiled there."""
    profile_dir = os.environ.get("BENCH_PROFILE")
    if not profile_dir:
        mod.worker(ctx)
        return 0
    import cProfile
    import threading

    # cProfile sees one thread only: give every thread the worker starts its own profiler,
    # and write them all (with the main thread's) when the worker returns.
    profs: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        profs.append(prof)
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main_prof = cProfile.Profile()
    profs.append(main_prof)
    main_prof.enable()
    try:
        mod.worker(ctx)
    finally:
        main_prof.disable()
        for k, prof in enumerate(list(profs)):
            with contextlib.suppress(Exception):  # a profiler with nothing recorded
                prof.dump_stats(os.path.join(
                    profile_dir, f"worker-{ctx.system}-{ctx.variant}-{os.getpid()}-{k}.pstats"))
    return 0


def check(mod: Any, ctx: common.Ctx) -> dict[str, Any]:
    """The ``check`` action: whether the system is usable, its versions and how it is driven."""
    try:
        return {"available": True, **mod.describe(ctx)}
    except Exception as exc:
        return {"available": False, "reason": _error(exc)}


def batch_enqueue(mod: Any, ctx: common.Ctx) -> dict[str, Any]:
    """The ``batch_enqueue`` action (n/a for a system without a batch enqueue API)."""
    if not hasattr(mod, "batch_calls"):
        return {"na": getattr(mod, "NO_BATCH", "no batch enqueue API")}
    result: dict[str, Any] = common.enqueue(ctx, mod.batch_calls, jobs_per_call=ctx.chunk)
    result["chunk"] = ctx.chunk
    return result


def measure(action: str, mod: Any, ctx: common.Ctx) -> dict[str, Any]:
    """The result of one measuring action (n/a, or the error, when it could not run)."""
    try:
        if action == "check":
            return check(mod, ctx)
        if action == "enqueue":
            return common.enqueue(ctx, mod.enqueue_calls)
        if action == "batch_enqueue":
            return batch_enqueue(mod, ctx)
        if action == "drain":
            return common.drain(ctx, mod.prefill)
        if action == "roundtrip":
            return common.roundtrip(ctx, mod.roundtrip_calls)
    except common.NotApplicable as exc:
        return {"na": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        return {"error": _error(exc)}
    raise SystemExit(f"unknown action {action!r}")


def main(argv: list[str] | None = None) -> int:
    """Run one action of one system (see the module docstring)."""
    action, ctx, out = common.ctx_from_args(argv)
    try:
        mod: Any = importlib.import_module(MODULES[ctx.system])
        if hasattr(mod, "setup"):
            mod.setup(ctx)
    except Exception as exc:  # the system cannot even be imported: say why, do not crash the run
        common.write_result(out, {"available": False, "reason": _error(exc)})
        return 0 if action != "worker" else 1
    if action == "worker":
        return run_worker(mod, ctx)
    common.write_result(out, measure(action, mod, ctx))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
