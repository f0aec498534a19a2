"""Many jobs in one round trip: ``client.operator.rows(jids)``.

A row is the values of ``queueengine.job.ROW_FIELDS`` of one job record, read with a pipelined
HMGET per job (``Session.job_rows``: no script holds Redis for the whole batch) and decoded by
``Job.from_row``, as ``pop`` and ``peek`` decode theirs. Every bulk operation of the operator API
starts from ``check_jids``: jids are checked before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from queueengine.exceptions import InvalidArgument
from queueengine.job import ROW_FIELDS, Job
from queueengine.store import args as _args

if TYPE_CHECKING:
    from queueengine.client import Client

MAX_JIDS = 500
"""Most jids one operator call takes (a dashboard page of rows; group operations use chunks)."""


def check_jids(jids: Any) -> list[str]:
    """Distinct jids in the order given. Any name already in Redis is accepted (an operator acts
    on existing jobs); ``InvalidArgument`` naming ``jids`` for a lone string, a bad name or more
    than ``MAX_JIDS``."""
    out = _args.names(jids, "jids", _args.existing_name)
    if len(out) > MAX_JIDS:
        raise InvalidArgument(f"jids: at most {MAX_JIDS} jobs per call, got {len(out)}")
    return out


def read_rows(client: Client, jids: Sequence[str]) -> tuple[dict[str, Job], list[str]]:
    """The jobs among (already checked) ``jids`` that exist, by jid, and the jids not found, in
    the order given."""
    found: dict[str, Job] = {}
    missing: list[str] = []
    for jid, row in zip(jids, client.store.job_rows(jids, ROW_FIELDS), strict=True):
        if row[0] is None:
            missing.append(jid)
        else:
            found[jid] = Job.from_row(client, row)
    return found, missing


__all__ = ["MAX_JIDS", "check_jids", "read_rows"]
