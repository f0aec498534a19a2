"""The dashboard's pure helpers: percentiles, charts, schedules in words, timelines, worker status."""

from __future__ import annotations

from jobadmin import charts, presenters, schedules
from jobadmin.templatetags.jobadmin import human_duration


def hist(**buckets: int) -> list[int]:
    h = [0] * 148
    for key, n in buckets.items():
        h[int(key[1:])] = n
    return h


def test_percentiles_are_bucket_upper_edges() -> None:
    """p50 of jobs all under a second is "at most 1 s"; a tail in minutes shows in p99."""
    h = hist(b0=90, b5=9, b61=1)           # 90 under 1 s, 9 at 5-6 s, 1 at 2-3 minutes
    assert charts.percentile(h, 0.5) == 1.0
    assert charts.percentile(h, 0.95) == 6.0
    assert charts.percentile(h, 0.999) == 180.0
    assert charts.percentile([0] * 148, 0.5) is None


def test_bucket_edges_and_labels_cover_seconds_to_days() -> None:
    """148 buckets: 60 of a second, 59 of a minute, 23 of an hour, 6 of a day."""
    assert len(charts.BUCKET_UPPER) == 148
    assert charts.BUCKET_UPPER[59] == 60 and charts.BUCKET_UPPER[60] == 120
    assert charts.BUCKET_UPPER[118] == 3600 and charts.BUCKET_UPPER[141] == 86400
    assert charts.BUCKET_UPPER[147] == 7 * 86400
    assert [charts.bucket_label(i) for i in (0, 59, 60, 118, 119, 141, 142, 147)] == [
        "0-1 s", "59-60 s", "1-2 m", "59-60 m", "1-2 h", "23-24 h", "1-2 d", "6-7 d"]


def test_histogram_svg_escapes_and_draws_one_bar_per_used_bucket() -> None:
    """Bars only where there are samples, tooltips with counts, the title escaped."""
    svg = str(charts.histogram_svg(hist(b0=3, b70=1), "<b>wait</b>"))
    assert svg.count('<rect class="bar"') == 2 and "0-1 s: 3" in svg and "11-12 m: 1" in svg
    assert "&lt;b&gt;wait&lt;/b&gt;" in svg and "<b>" not in svg
    assert "no samples" in str(charts.histogram_svg([0] * 148, "empty"))
    assert "<polyline" in str(charts.sparkline_svg([0, 1, 5, 2], "spark"))


def test_schedules_in_words() -> None:
    """Intervals and the common cron shapes read as sentences; the rest shows the expression."""
    assert schedules.describe(300, None) == "every 5 m 0 s"
    assert schedules.describe(None, "*/5 * * * *") == "every 5 minutes"
    assert schedules.describe(None, "30 2 * * *") == "daily at 02:30 UTC"
    assert schedules.describe(None, "0 9 * * 1") == "Mondays at 09:00 UTC"
    assert schedules.describe(None, "0 9 * * 1-5") == "weekdays at 09:00 UTC"
    assert schedules.describe(None, "15 * * * *") == "every hour at minute 15"
    assert schedules.describe(None, "@hourly") == "every hour at minute 0"
    assert schedules.describe(None, "0 0 1 * *") == "cron 0 0 1 * * (UTC)"


def test_next_runs_follow_the_schedule() -> None:
    """Interval runs are evenly spaced; cron runs come from the expression."""
    assert schedules.next_runs(60, None, 1000.0, 3) == [1000.0, 1060.0, 1120.0]
    runs = schedules.next_runs(None, "0 * * * *", 1_796_151_600.0, 3)   # 2026-12-01 19:00 UTC
    assert runs == [1_796_151_600.0, 1_796_155_200.0, 1_796_158_800.0]
    assert schedules.next_runs(60, None, None, 3) == []


def test_timeline_computes_wait_and_run() -> None:
    """put -> popped is the wait, popped -> done the run; a retry starts a new wait."""
    steps = presenters.timeline([
        {"when": 100.0, "what": "put", "queue": "q"},
        {"when": 102.5, "what": "popped", "worker": "w"},
        {"when": 103.0, "what": "retried"},
        {"when": 110.0, "what": "popped", "worker": "w"},
        {"when": 111.25, "what": "done"},
    ])
    assert [(s["waited"], s["ran"]) for s in steps] == [
        (None, None), (2.5, None), (None, 0.5), (7.0, None), (None, 1.25)]
    assert steps[1]["extra"] == {"worker": "w"}


def test_worker_status_thresholds() -> None:
    """healthy within three beats, late within two leases, then gone; stalled jobs win."""
    w = {"name": "w", "last_seen": 1000.0, "info": {"beat_interval": 5}, "running": 1, "stalled": 0, "jobs": []}
    assert presenters.worker_status(w, 1010.0, 60) == "healthy"          # type: ignore[arg-type]
    assert presenters.worker_status(w, 1100.0, 60) == "late"             # type: ignore[arg-type]
    assert presenters.worker_status(w, 1200.0, 60) == "gone"             # type: ignore[arg-type]
    assert presenters.worker_status({**w, "stalled": 1}, 1001.0, 60) == "stalled"  # type: ignore[arg-type]


def test_human_durations() -> None:
    assert [human_duration(s) for s in (0.25, 3.21, 42, 75, 7300, 90061)] == [
        "250 ms", "3.2 s", "42 s", "1 m 15 s", "2 h 1 m", "1 d 1 h"]
