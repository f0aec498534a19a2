"""A short soak under chaos (bench/soak.py, about 40 s): nothing lost in the durable modes.

Two worker processes per mode (reliable: the engine's worker; recoverable: a dispatch worker)
work 6,000 jobs each while, every 1.5 s, a random worker is SIGKILLed and, every other time, the
primary is frozen (DEBUG SLEEP), its clients paused (CLIENT PAUSE), it is restarted on its AOF,
or Sentinel fails over to the replica. ``make soak`` runs the long version (200,000 jobs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    cfg = soak.Config(jobs=6000, modes=("reliable", "recoverable"), workers=2, concurrency=4, rate=500,
                      job_ms=5, chaos_every=1.5, lease=5.0, max_seconds=180)
    report = soak.run(cfg, workdir=str(tmp_path))
    print(soak.table(report))
    assert not report.timed_out, "the jobs did not all settle in time"
    assert report.kills >= 5
    assert all(report.faults[name] >= 1 for name in soak.FAULTS), report.faults
    for mode in report.modes:
        assert mode.lost == 0, f"{mode.mode}: {mode.lost} jobs lost"
        assert mode.completed + mode.failed == mode.jobs == cfg.jobs
        assert mode.failed_without_reason == 0
        assert mode.unexplained_duplicates == 0, f"{mode.mode}: a job ran twice without a lease expiring"
    assert report.memory_back, (report.memory_baseline, report.memory_after)
