"""The audit log: one entry per action, with who, what, which jobs and when.

A request's action is recorded at once (``record``). A background operation (a failure group's
retry-all, an "act on all matching") is recorded when it starts, by whoever started it
(``Actor``, taken from the request: ``open_entry``), and its entry is completed by the operation's
thread when it ends (``close_entry``: how many jobs were done and skipped, the first MAX_JIDS done),
so the log says who started it even when the server stops half way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import DatabaseError
from django.http import HttpRequest

from jobadmin.models import AuditEntry

log = logging.getLogger(__name__)

MAX_JIDS = 1000


@dataclass(frozen=True)
class Actor:
    """Who started an action, and from where (kept by a background operation)."""

    user_id: int | None
    username: str
    namespace: str
    remote_addr: str | None = None

    @classmethod
    def of(cls, request: HttpRequest, namespace: str) -> Actor:
        """The request's user and address."""
        user = request.user if request.user.is_authenticated else None
        return cls(user_id=user.pk if user is not None else None,
                   username=user.get_username() if user is not None else "",
                   namespace=namespace, remote_addr=request.META.get("REMOTE_ADDR") or None)


def record(request: HttpRequest, action: str, *, namespace: str, target: str = "",
           jids: Sequence[str] = (), count: int | None = None, detail: str = "") -> AuditEntry:
    """Write one audit entry for ``request.user`` (the first MAX_JIDS jids are kept)."""
    return open_entry(Actor.of(request, namespace), action, target=target, jids=jids, count=count, detail=detail)


def open_entry(actor: Actor, action: str, *, target: str = "", jids: Sequence[str] = (), count: int | None = None,
               detail: str = "") -> AuditEntry:
    """Write one audit entry for ``actor`` (the first MAX_JIDS jids are kept)."""
    return AuditEntry.objects.create(
        user_id=actor.user_id,
        username=actor.username,
        action=action,
        namespace=actor.namespace,
        target=target[:600],
        jids=list(jids[:MAX_JIDS]),
        count=len(jids) if count is None else count,
        detail=detail,
        remote_addr=actor.remote_addr,
    )


def close_entry(entry_id: int, *, count: int, jids: Sequence[str], detail: str) -> bool:
    """Complete an entry ``open_entry`` wrote (a background operation that ended): its count, the
    first MAX_JIDS jids done and what happened. False (logged) when the database refused."""
    try:
        return AuditEntry.objects.filter(pk=entry_id).update(
            count=count, jids=list(jids[:MAX_JIDS]), detail=detail) == 1
    except DatabaseError:
        log.warning("could not complete audit entry %s", entry_id, exc_info=True)
        return False
