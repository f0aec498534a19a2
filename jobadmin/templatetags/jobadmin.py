"""Template filters of the dashboard: durations, ages, timestamps, state badges, JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def human_duration(seconds: float) -> str:
    """``0.25`` -> ``250 ms``, ``75`` -> ``1 m 15 s``, ``90061`` -> ``1 d 1 h``."""
    s = abs(float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} m {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} m"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


@register.filter
def duration(seconds: Any) -> str:
    """Seconds as a short human duration ('' for None)."""
    if seconds is None or seconds == "":
        return ""
    return human_duration(float(seconds))


@register.simple_tag
def ago(when: Any, now: Any) -> str:
    """How long before ``now`` the engine time ``when`` was ('–' when unknown)."""
    if not when or now is None:
        return "–"
    delta = float(now) - float(when)
    if delta < 0:
        return "in " + human_duration(-delta)
    return human_duration(delta) + " ago"


@register.simple_tag
def until(when: Any, now: Any) -> str:
    """How long from ``now`` until ``when`` ('due' when it has passed)."""
    if not when or now is None:
        return "–"
    delta = float(when) - float(now)
    return "due" if delta <= 0 else "in " + human_duration(delta)


@register.filter
def timestamp(when: Any) -> str:
    """Engine time (Unix seconds) as ``2026-12-01 18:09:36 UTC``."""
    if not when:
        return ""
    try:
        return dt.datetime.fromtimestamp(float(when), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):   # a time no calendar holds (written around the engine)
        return str(when)


@register.filter
def isotime(when: Any) -> str:
    """Engine time as ISO 8601 (for <time datetime=...>)."""
    if not when:
        return ""
    return dt.datetime.fromtimestamp(float(when), tz=dt.UTC).isoformat()


@register.filter
def badge(state: Any) -> SafeString:
    """A job or worker state as a coloured badge (escaped)."""
    text = str(state or "unknown")
    return format_html('<span class="badge badge-{}">{}</span>', text.replace(" ", "-"), text)


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON text (escaped by the template as usual)."""
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` or None."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def plus(value: Any, other: Any) -> int:
    """Integer addition for pagination links."""
    return int(value or 0) + int(other or 0)


@register.filter
def intcomma_plain(value: Any) -> str:
    """``1234567`` -> ``1,234,567``."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.simple_tag(takes_context=True)
def query(context: Any, **changes: Any) -> str:
    """The current query string with ``changes`` applied (None removes a key); starts with '?'."""
    request = context.get("request")
    params = request.GET.copy() if request is not None else {}
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode() if hasattr(params, "urlencode") else ""
    return "?" + encoded if encoded else "?"


@register.filter
def short_jid(jid: Any) -> str:
    """A jid a list can show in little room and still tell apart: up to 16 characters whole,
    longer ones as their head and tail (``digest-report-1`` and ``…-2`` differ, and so do two
    UUIDs)."""
    text = str(jid or "")
    if len(text) <= 16:
        return text
    return text[:7] + "…" + text[-7:]


@register.simple_tag
def search_url(key: str, value: Any) -> str:
    """The explorer's URL for one qualifier (``{% search_url "tag" t %}``), or for a whole
    query when ``key`` is empty."""
    from urllib.parse import urlencode

    from django.urls import reverse

    from jobadmin.explorer import quote

    text = str(value) if not key else f"{key}:{quote(str(value))}"
    return reverse("jobadmin:search") + "?" + urlencode({"q": text})
