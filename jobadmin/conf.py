"""The dashboard's settings, read lazily from ``settings.QUEUEENGINE`` (``override_settings`` works).

Keys (all optional)::

    QUEUEENGINE = {
        "READ_ONLY": False,          # hide and refuse every action
        "METRICS_TOKEN": None,       # bearer token for /jobs/metrics and /jobs/api/ (staff never need it)
        "PAGE_SIZE": 25,             # rows per list page (at most 500)
        "PREVIEW_BYTES": 200,        # job data shown in lists (the job page shows all of it)
        "NAMESPACES": None,          # namespaces the dashboard may switch between (default: [NAMESPACE])
        "REQUIRE_VIEW_PERMISSION": False,  # staff also need jobadmin.view_dashboard to read
        "ENVIRONMENT": "",           # a badge in the header, e.g. "production"
    }
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "READ_ONLY": False,
    "METRICS_TOKEN": None,
    "PAGE_SIZE": 25,
    "PREVIEW_BYTES": 200,
    "NAMESPACES": None,
    "REQUIRE_VIEW_PERMISSION": False,
    "ENVIRONMENT": "",
}


def _user() -> dict[str, Any]:
    value = getattr(settings, "QUEUEENGINE", None)
    return value if isinstance(value, dict) else {}


def get(name: str) -> Any:
    """One dashboard setting (the project's value, else the default)."""
    return _user().get(name, DEFAULTS[name])


def read_only() -> bool:
    """True when every action is hidden and refused."""
    return bool(get("READ_ONLY"))


def page_size() -> int:
    """Rows per list page, clamped to 1..500."""
    try:
        return max(1, min(500, int(get("PAGE_SIZE"))))
    except (TypeError, ValueError):
        return int(DEFAULTS["PAGE_SIZE"])


def preview_bytes() -> int:
    """How much of a job's data lists show."""
    try:
        return max(0, min(100_000, int(get("PREVIEW_BYTES"))))
    except (TypeError, ValueError):
        return int(DEFAULTS["PREVIEW_BYTES"])


def url() -> str:
    """The engine's Redis URL."""
    return str(_user().get("URL", "redis://127.0.0.1:6379/0"))


def default_namespace() -> str:
    """The engine namespace the dashboard shows first."""
    return str(_user().get("NAMESPACE", "default"))


def namespaces() -> list[str]:
    """Namespaces an operator may switch between (the default one first)."""
    configured = get("NAMESPACES") or []
    out = [default_namespace()]
    out.extend(str(ns) for ns in configured if str(ns) not in out)
    return out
