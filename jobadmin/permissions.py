"""Who may see the dashboard and who may do what: staff to read, a permission per action."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Protocol

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

from jobadmin import conf


class Viewer(Protocol):
    """What the dashboard asks of a user (any user model with Django's permission API, or the
    anonymous user)."""

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def is_active(self) -> bool: ...

    @property
    def is_staff(self) -> bool: ...

    def has_perm(self, perm: str, obj: Model | None = None) -> bool: ...


ACTIONS: dict[str, str] = {
    "retry": "retry_jobs",
    "cancel": "cancel_jobs",
    "move": "move_jobs",
    "pause": "pause_queues",
    "unpause": "pause_queues",
    "priority": "edit_jobs",
    "timeout": "edit_jobs",
    "track": "edit_jobs",
    "untrack": "edit_jobs",
    "tag": "edit_jobs",
    "untag": "edit_jobs",
    "undepend": "edit_jobs",
    "unrecur": "edit_jobs",
    "config": "edit_config",
    "create": "create_jobs",
    "edit": "edit_waiting_jobs",
}
"""Action name -> the ``jobadmin`` permission it needs."""


def can_view(user: Viewer) -> bool:
    """Staff (and, with REQUIRE_VIEW_PERMISSION, the view permission) may read the dashboard."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if conf.get("REQUIRE_VIEW_PERMISSION"):
        return bool(user.has_perm("jobadmin.view_dashboard"))
    return True


def can(user: Viewer, action: str) -> bool:
    """May ``user`` perform ``action`` (False for everyone in read-only mode)?"""
    if conf.read_only() or not can_view(user):
        return False
    return bool(user.has_perm("jobadmin." + ACTIONS[action]))


def allowed_actions(user: Viewer) -> dict[str, bool]:
    """``{action: allowed}`` for templates (so forbidden buttons are not shown)."""
    return {action: can(user, action) for action in ACTIONS}


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; logged-in users who may not view get 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_view(request.user):
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapped


def check_action(request: HttpRequest, action: str) -> None:
    """Raise PermissionDenied (403) unless the user may perform ``action`` now."""
    if conf.read_only():
        raise PermissionDenied("the dashboard is read-only")
    if not can(request.user, action):
        raise PermissionDenied(f"you may not {action} here (needs jobadmin.{ACTIONS[action]})")
