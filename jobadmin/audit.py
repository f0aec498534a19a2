"""The audit log: one entry per action, with who, what, which jobs and when."""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpRequest

from jobadmin.models import AuditEntry

MAX_JIDS = 1000


def record(request: HttpRequest, action: str, *, namespace: str, target: str = "",
           jids: Sequence[str] = (), count: int | None = None, detail: str = "") -> AuditEntry:
    """Write one audit entry for ``request.user`` (the first MAX_JIDS jids are kept)."""
    user = request.user if request.user.is_authenticated else None
    return AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user is not None else "",
        action=action,
        namespace=namespace,
        target=target[:600],
        jids=list(jids[:MAX_JIDS]),
        count=len(jids) if count is None else count,
        detail=detail,
        remote_addr=request.META.get("REMOTE_ADDR") or None,
    )
