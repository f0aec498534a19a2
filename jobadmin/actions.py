"""Operator actions on the engine. Each returns an Outcome: what was done, what was skipped
and why, and a sentence for the operator ("retried 3 jobs; 1 skipped: not failed").

Only the engine's public API is used: bulk operations are one ``client.operator`` call each
(``client.operator.retry(jids)``), single-job actions the public Job/Queue/Client API; every
argument is checked before anything is sent, so a bad request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from queueengine import Client, InvalidArgument, Job, JobNotFound, QueueEngineError, RecurringJob, WrongState
from queueengine.operator import BulkResult, check_name, check_names, check_priority

MAX_JIDS = 500
"""Most jids one request may act on (bulk selections are pages; groups run in chunks)."""


@dataclass
class Outcome:
    """The result of one action."""

    action: str
    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    target: str = ""

    _VERBS = {"retry": "retried", "cancel": "canceled", "move": "moved", "timeout": "timed out",
              "priority": "reprioritised", "track": "tracked", "untrack": "untracked", "tag": "tagged",
              "untag": "untagged", "undepend": "released from dependencies", "unrecur": "stopped"}

    @classmethod
    def of(cls, action: str, result: BulkResult, target: str = "") -> Outcome:
        """The outcome of one ``client.operator`` call."""
        return cls(action, done=list(result.done), skipped=list(result.skipped), target=target)

    @property
    def message(self) -> str:
        """One sentence saying what happened."""
        verb = self._VERBS.get(self.action, self.action)
        n = len(self.done)
        text = f"{verb} {n} job{'s' if n != 1 else ''}"
        if self.target and self.action in ("move",):
            text += f" to {self.target}"
        if self.skipped:
            reasons = sorted({why for _, why in self.skipped})
            text += f"; {len(self.skipped)} skipped ({'; '.join(reasons)})"
        return text[0].upper() + text[1:]


def clean_jids(raw: Iterable[str], existing: bool = False) -> list[str]:
    """Distinct, valid jids in the order given (InvalidArgument names the bad one); ``existing``:
    any jid that may already be in Redis (one job's own page acting on it, see keys.py)."""
    out: list[str] = []
    seen: set[str] = set()
    for jid in raw:
        jid = (jid or "").strip()
        if not jid or jid in seen:
            continue
        check_name(jid, "jid", existing=existing)
        seen.add(jid)
        out.append(jid)
    if not out:
        raise InvalidArgument("jids: select at least one job")
    if len(out) > MAX_JIDS:
        raise InvalidArgument(f"jids: at most {MAX_JIDS} jobs per request, got {len(out)}")
    return out


def retry(client: Client, jids: Sequence[str]) -> Outcome:
    """Failed jobs go back to waiting in their queue (retries reset); others are skipped."""
    return Outcome.of("retry", client.operator.retry(jids))


def move(client: Client, jids: Sequence[str], queue: str) -> Outcome:
    """Jobs (any state but running) go to waiting in ``queue``."""
    check_name(queue, "queue")
    return Outcome.of("move", client.operator.move(jids, queue), target=queue)


def cancel(client: Client, jids: Sequence[str]) -> Outcome:
    """Delete jobs. Together if possible; when some are dependencies of jobs not being
    canceled, those are skipped and the rest are canceled."""
    return Outcome.of("cancel", client.operator.cancel(jids))


def timeout(client: Client, jids: Sequence[str]) -> Outcome:
    """Expire running jobs' leases now (the next pop hands them out again)."""
    return Outcome.of("timeout", client.operator.timeout(jids))


def _only(result: BulkResult, jid: str) -> BulkResult:
    """One job's bulk result, its refusal raised as the engine raises it for that job."""
    for _, why in result.skipped:
        if why == "not found":
            raise JobNotFound(f"job {jid} does not exist")
        raise QueueEngineError(why)
    return result


def set_priority(client: Client, jid: str, value: Any) -> Outcome:
    """Change one job's priority."""
    try:
        priority = int(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"priority must be a whole number, got {value!r}") from None
    check_priority(priority)
    _only(client.operator.set_priority([check_name(jid, "jid", existing=True)], priority), jid)
    return Outcome("priority", done=[jid], target=str(priority))


def _one(client: Client, jid: str) -> Job:
    got = client.jobs.get(check_name(jid, "jid", existing=True))
    if not got:
        raise JobNotFound(f"job {jid} does not exist")
    return got[0]


def track(client: Client, jid: str, on: bool) -> Outcome:
    """Track or untrack one job."""
    job = _one(client, jid)
    if on:
        job.track()
    else:
        job.untrack()
    return Outcome("track" if on else "untrack", done=[jid])


def parse_tags(raw: str, exact: Sequence[str] = ()) -> list[str]:
    """``"a, has space"`` -> ``["a", "has space"]`` (comma-separated, edges stripped), plus the
    ``exact`` tags as given (any legal tag, commas included); InvalidArgument when empty or bad."""
    tags = [t.strip() for t in raw.split(",") if t.strip()] + [t for t in exact if t]
    if not tags:
        raise InvalidArgument("tags: give at least one tag")
    return check_names(tags, "tags")


def tag(client: Client, jid: str, raw: str, on: bool, exact: Sequence[str] = ()) -> Outcome:
    """Add or remove tags on one job (``exact``: tags taken as given, e.g. from a hidden field)."""
    tags = parse_tags(raw, exact)
    jids = [check_name(jid, "jid", existing=True)]
    _only(client.operator.tag(jids, tags) if on else client.operator.untag(jids, tags), jid)
    return Outcome("tag" if on else "untag", done=[jid], target=" ".join(tags))


def undepend(client: Client, jid: str, dependencies: Sequence[str], everything: bool) -> Outcome:
    """Remove some (or all) of a job's dependencies; with none left it becomes ready."""
    job = _one(client, jid)
    if everything:
        job.undepend(all=True)
    else:
        deps = check_names([d.strip() for d in dependencies if d.strip()], "dependencies")
        if not deps:
            raise InvalidArgument("dependencies: name at least one, or choose all")
        job.undepend(*deps)
    return Outcome("undepend", done=[jid])


def unrecur(client: Client, jid: str) -> Outcome:
    """Stop a recurring template (spawned jobs stay)."""
    item = client.jobs[check_name(jid, "jid")]
    if not isinstance(item, RecurringJob):
        raise WrongState(f"{jid} is a job, not a recurring template")
    item.cancel()
    return Outcome("unrecur", done=[jid])


def pause(client: Client, queue: str, paused: bool) -> str:
    """Pause or unpause a queue; returns the message."""
    q = client.queues[check_name(queue, "queue")]
    if paused:
        q.pause()
        return f"Paused {queue}: workers take nothing from it until it is unpaused"
    q.unpause()
    return f"Unpaused {queue}"


def set_config(client: Client, option: str, value: str | None) -> str:
    """Set (or, with value None, unset) an engine option; returns the message."""
    check_name(option, "option")
    if value is None:
        try:
            del client.config[option]
        except KeyError:
            raise InvalidArgument(f"option {option!r} is not set") from None
        return f"Unset {option} (back to its default)"
    value = value.strip()
    if not value:
        raise InvalidArgument("value must not be empty (use unset to go back to the default)")
    client.config[option] = value
    return f"Set {option} = {value}"


def describe_error(exc: Exception) -> str:
    """An engine error as the operator should read it."""
    if isinstance(exc, QueueEngineError | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
