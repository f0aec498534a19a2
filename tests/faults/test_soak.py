"""A short soak under chaos (bench/soak.py, about a minute): every mode side by side on one Redis.

Two worker processes per mode (engine: the engine's worker; reliable, recoverable, simple: the
delivery modes' workers, the recoverable ones all sweeping) work 2,000 jobs each, put through
``put``, ``put_many`` and ``submit``, while every second a random worker is SIGKILLed and, every
other time, the primary is frozen (DEBUG SLEEP), its clients paused (CLIENT PAUSE), crashed
(SIGKILL, then started on its AOF) or failed over by Sentinel. Then, the workers idle, small
``put_many`` batches trickle in and must drain without a stall. ``make soak`` runs the long version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import soak
from bench.chaos import FAULTS


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_short_soak_keeps_every_promise(tmp_path: Path) -> None:
    cfg = soak.Config(jobs=2000, modes=soak.MODES, workers=2, concurrency=4, rate=400, job_ms=5,
                      chaos_every=1.0, lease=3.0, trickle=400, max_seconds=240)
    report = soak.run(cfg, workdir=str(tmp_path))
    print(soak.table([report]))
    assert not report.timed_out, "the jobs did not all settle in time"
    assert report.kills >= 5
    assert all(report.faults[name] >= 1 for name in FAULTS), report.faults   # crash included
    for mode in report.modes:
        assert mode.lost <= mode.lost_allowed, f"{mode.mode}: {mode.lost} jobs lost"
        if mode.mode != "simple":
            assert mode.lost == 0 and mode.completed + mode.failed == mode.jobs
        assert mode.failed_without_reason == 0
        assert mode.unexplained_duplicates == 0, f"{mode.mode}: a job ran twice though no worker holding it died"
        assert 0 <= mode.idle_drain_s <= cfg.idle_drain_limit, f"{mode.mode}: put_many into idle workers stalled"
    assert {m.mode for m in report.modes} == set(soak.MODES)
    assert report.memory_back, (report.memory_baseline, report.memory_after)
