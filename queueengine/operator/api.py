"""``client.operator``: what a dashboard or an admin tool does to many jobs, in few round trips.

::

    found, missing = client.operator.rows(jids)        # dict[jid, Job], [jid, ...]
    result = client.operator.retry(jids)               # BulkResult(done=[...], skipped=[(jid, why)])
    client.operator.move(jids, "rescue"); client.operator.requeue(jids)
    client.operator.cancel(jids); client.operator.timeout(jids)
    client.operator.set_priority(jids, 5); client.operator.tag(jids, ["urgent"])
    size = client.operator.group_size("images-IOError")
    chunk = client.operator.group_jids("images-IOError", skip=0, count=500)   # oldest first
    matching, missing = client.operator.matching(jids, state="failed", queue="emails")   # find's filters
    client.operator.progress / client.operator.live    # the dashboard's reserved keys

Every call checks all of its arguments before anything is written (``InvalidArgument`` naming
the bad one; then nothing changes) and takes at most ``MAX_JIDS`` (500) jids. Jids may be any
name already in Redis; queues and tags must follow the naming rule (``queueengine/store/keys.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from queueengine.exceptions import InvalidArgument
from queueengine.job import Job
from queueengine.operator import bulk, search
from queueengine.operator.bulk import BulkResult
from queueengine.operator.reserved import LiveCoordination, ProgressRecords
from queueengine.operator.rows import MAX_JIDS, check_jids, read_rows
from queueengine.store import args as _args

if TYPE_CHECKING:
    from queueengine.client import Client


class Operator:
    """``client.operator``: rows of many jobs, bulk operations, failure-group chunks, and the
    dashboard's reserved keys (``progress``, ``live``)."""

    max_jids = MAX_JIDS

    def __init__(self, client: Client) -> None:
        self.client = client
        self.progress = ProgressRecords(client.store)
        """Progress records of long operations (``dash:op:<id>``, ``dash:ops``)."""
        self.live = LiveCoordination(client.store)
        """The live bridges' lease, interest set and server run id (``dash:live-*``)."""

    # ------------------------------------------------------------------ reads
    def rows(self, jids: Sequence[str]) -> tuple[dict[str, Job], list[str]]:
        """The jobs among ``jids`` that exist, by jid (each decoded from ``ROW_FIELDS`` by
        ``Job.from_row``: history, dependencies and tracking load on first access), and the jids
        not found, in the order given. One pipelined round trip of HMGETs."""
        return read_rows(self.client, check_jids(jids))

    def group_size(self, group: str) -> int:
        """How many jobs failure group ``group`` holds (0 for an unknown group)."""
        return self.client.store.failure_group_tail(_args.existing_name(group, "group"), 0, 0)[0]

    def group_jids(self, group: str, skip: int = 0, count: int = MAX_JIDS) -> list[str]:
        """Up to ``count`` jids of failure group ``group``, oldest failure first, after the
        ``skip`` oldest: chunks to work through a group of any size. Failures added meanwhile
        come after every chunk taken so far, so a loop ``skip += handled`` never sees a job twice
        unless it failed again."""
        group = _args.existing_name(group, "group")
        skip = _args.integer(skip, "skip")
        count = _args.integer(count, "count", 1, MAX_JIDS)
        return self.client.store.failure_group_tail(group, skip, count)[1]

    def matching(self, jids: Sequence[str], **filters: Any) -> tuple[list[str], list[str]]:
        """Which of ``jids`` (at most ``MAX_JIDS``) pass ``client.jobs.find``'s filters now
        (the same keyword arguments: ``queue``, ``state``, ``klass``, ``tag``, ``worker``,
        ``data``, ``text``, ``since``, ``until``; none: every job matches), checked by ``find``'s
        own code in one call: ``(matching, missing)``, both in the order given; the jids in
        neither exist but no longer match. An "act on all matching" operation re-checks each
        chunk with it before acting."""
        return search.match(self.client, jids, filters)

    # ------------------------------------------------------------------ bulk operations
    def retry(self, jids: Sequence[str]) -> BulkResult:
        """Failed jobs back to waiting in their own queue (retries reset, data, priority, tags
        kept); others are skipped (``"not failed (waiting)"``, ``"not found"``)."""
        return bulk.requeue_where(self.client, check_jids(jids), None, bulk.not_failed)

    def move(self, jids: Sequence[str], queue: str) -> BulkResult:
        """Jobs in any state but running to waiting in ``queue`` (running ones are skipped:
        ``"running (time it out first)"``)."""
        checked = check_jids(jids)
        return bulk.requeue_where(self.client, checked, _args.name(queue, "queue"), bulk.running)

    def requeue(self, jids: Sequence[str], queue: str | None = None) -> BulkResult:
        """Jobs in any state but running (failed, complete, waiting, scheduled, ...) back to
        waiting, into ``queue`` or each into its own, as if put again with the same jid."""
        checked = check_jids(jids)
        target = None if queue is None else _args.name(queue, "queue")
        return bulk.requeue_where(self.client, checked, target, bulk.running)

    def cancel(self, jids: Sequence[str]) -> BulkResult:
        """Delete jobs, together when possible; a job other jobs (not canceled with it) depend on
        is skipped (``"other jobs depend on it"``) and the rest are canceled; complete or unknown
        jobs are skipped (``"not found or complete"``)."""
        return bulk.cancel(self.client, check_jids(jids))

    def timeout(self, jids: Sequence[str]) -> BulkResult:
        """Expire running jobs' leases now: the next pop hands them out again, no retry spent
        (others: ``"not running (waiting)"``)."""
        return bulk.timeout(self.client, check_jids(jids))

    def set_priority(self, jids: Sequence[str], priority: int) -> BulkResult:
        """Give each job ``priority`` (-4095 to 4095, higher pops first)."""
        checked = check_jids(jids)
        return bulk.set_priority(self.client, checked, _args.priority(priority))

    def tag(self, jids: Sequence[str], tags: Sequence[str]) -> BulkResult:
        """Add ``tags`` (at least one) to each job."""
        checked = check_jids(jids)
        return bulk.tag(self.client, checked, _tags(tags), add=True)

    def untag(self, jids: Sequence[str], tags: Sequence[str]) -> BulkResult:
        """Remove ``tags`` (at least one) from each job."""
        checked = check_jids(jids)
        return bulk.tag(self.client, checked, _tags(tags), add=False)


def _tags(tags: Any) -> list[str]:
    out = _args.names(tags, "tags")
    if not out:
        raise InvalidArgument("tags: give at least one tag")
    return out


__all__ = ["Operator"]
