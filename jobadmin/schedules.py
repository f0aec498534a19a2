"""Recurring schedules in words, and their next runs."""

from __future__ import annotations

import datetime as dt

from jobadmin.templatetags.jobadmin import human_duration

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def describe(interval: float | None, cron: str | None) -> str:
    """``every 5 m``, ``every 5 minutes``, ``daily at 02:30 UTC``, ... (the expression itself
    when it is too unusual to put in words)."""
    if cron:
        return describe_cron(cron)
    if interval:
        return "every " + human_duration(float(interval))
    return "no schedule"


def describe_cron(expr: str) -> str:
    """A five-field cron expression (UTC) in words."""
    fields = _MACROS.get(expr.strip().lower(), expr).split()
    if len(fields) != 5:
        return f"cron {expr}"
    minute, hour, dom, month, dow = fields
    if (dom, month) != ("*", "*"):
        return f"cron {expr} (UTC)"
    when = ""
    if minute == "*" and hour == "*":
        when = "every minute"
    elif minute.startswith("*/") and hour == "*" and minute[2:].isdigit():
        when = f"every {int(minute[2:])} minutes"
    elif minute.isdigit() and hour == "*":
        when = f"every hour at minute {int(minute)}"
    elif minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit():
        when = f"every {int(hour[2:])} hours at minute {int(minute)}"
    elif minute.isdigit() and hour.isdigit():
        when = f"at {int(hour):02d}:{int(minute):02d} UTC"
    else:
        return f"cron {expr} (UTC)"
    if dow == "*":
        return ("daily " + when) if when.startswith("at ") else when
    if dow.isdigit() and 0 <= int(dow) <= 7:
        return f"{_DAYS[int(dow) % 7]}s {when}"
    if dow in ("1-5", "mon-fri"):
        return f"weekdays {when}"
    return f"cron {expr} (UTC)"


def next_runs(interval: float | None, cron: str | None, first: float | None, n: int) -> list[float]:
    """The next ``n`` spawn times (Unix seconds), starting with the engine's stored next one."""
    if first is None:
        return []
    out = [float(first)]
    if cron:
        try:
            from croniter import croniter

            it = croniter(cron, dt.datetime.fromtimestamp(float(first), tz=dt.UTC))
            while len(out) < n:
                out.append(float(it.get_next(float)))
        except (ValueError, KeyError):
            return out
    elif interval:
        while len(out) < n:
            out.append(out[-1] + float(interval))
    return out
