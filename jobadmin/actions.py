"""Operator actions on the engine. Each returns an Outcome: what was done, what was skipped
and why, and a sentence for the operator ("retried 3 jobs; 1 skipped: not failed").

Only the engine's public API (and its pipelined ``requeue``) is used; every jid is checked
before anything is sent, so a bad request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from queueengine import Client, InvalidArgument, JobNotFound, QueueEngineError, WrongState
from queueengine.job import ROW_FIELDS, Job
from queueengine.queue import put_fields
from queueengine.store import args as engine_args

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
    check = engine_args.existing_name if existing else engine_args.name
    out: list[str] = []
    seen: set[str] = set()
    for jid in raw:
        jid = (jid or "").strip()
        if not jid or jid in seen:
            continue
        check(jid, "jid")
        seen.add(jid)
        out.append(jid)
    if not out:
        raise InvalidArgument("jids: select at least one job")
    if len(out) > MAX_JIDS:
        raise InvalidArgument(f"jids: at most {MAX_JIDS} jobs per request, got {len(out)}")
    return out


def _jobs(client: Client, jids: Sequence[str]) -> tuple[dict[str, Job], list[tuple[str, str]]]:
    """The jobs among ``jids`` that exist: one pipelined HMGET each (no script holds Redis
    while a whole chunk is read), and the jids not found."""
    pipe = client.redis.pipeline(transaction=False)
    for jid in jids:
        pipe.hmget(client.keys.job(jid), ROW_FIELDS)
    found: dict[str, Job] = {}
    for jid, row in zip(jids, pipe.execute(), strict=True):
        if row[0] is not None:
            found[jid] = Job.from_row(client, row)
    missing = [(jid, "not found") for jid in jids if jid not in found]
    return found, missing


def requeue_jobs(client: Client, jobs: Sequence[Job], queue: str | None) -> list[tuple[str, str | None]]:
    """Put existing jobs back to waiting (into ``queue``, or each into its own), keeping data,
    priority, tags, retries and throttles, in one round trip. Returns (jid, error or None)."""
    if not jobs:
        return []
    calls = []
    for job in jobs:
        fields = put_fields(job.klass, job.data, priority=job.priority, tags=job.tags,
                            retries=job.original_retries, jid=job.jid, throttles=job.throttles,
                            reply=job.reply, backoff=job.backoff)
        calls.append(("requeue", (client.worker_name, queue or job.queue_name, *fields)))
    results = client._pipeline_calls(calls, raise_errors=False)
    return [(job.jid, str(r) if isinstance(r, Exception) else None) for job, r in zip(jobs, results, strict=True)]


def _requeue_where(client: Client, out: Outcome, jids: Sequence[str], queue: str | None,
                   refuse: Any) -> Outcome:
    """Requeue the jobs among ``jids`` for which ``refuse(job)`` gives no reason to skip."""
    found, out.skipped = _jobs(client, jids)
    todo = []
    for jid in jids:
        job = found.get(jid)
        if job is None:
            continue
        reason = refuse(job)
        if reason:
            out.skipped.append((jid, reason))
        else:
            todo.append(job)
    for jid, error in requeue_jobs(client, todo, queue):
        if error is None:
            out.done.append(jid)
        else:
            out.skipped.append((jid, error))
    return out


def retry(client: Client, jids: Sequence[str]) -> Outcome:
    """Failed jobs go back to waiting in their queue (retries reset); others are skipped."""
    return _requeue_where(client, Outcome("retry"), jids, None,
                          lambda job: "" if job.state.value == "failed" else f"not failed ({job.state.value})")


def move(client: Client, jids: Sequence[str], queue: str) -> Outcome:
    """Jobs (any state but running) go to waiting in ``queue``."""
    engine_args.name(queue, "queue")
    return _requeue_where(client, Outcome("move", target=queue), jids, queue,
                          lambda job: "running (time it out first)" if job.state.value == "running" else "")


def cancel(client: Client, jids: Sequence[str]) -> Outcome:
    """Delete jobs. Together if possible; when some are dependencies of jobs not being
    canceled, those are skipped and the rest are canceled."""
    out = Outcome("cancel")
    try:
        out.done = client.cancel(*jids)
    except WrongState:
        for jid in jids:
            try:
                if client.cancel(jid):
                    out.done.append(jid)
                else:
                    out.skipped.append((jid, "not found or complete"))
            except WrongState:
                out.skipped.append((jid, "other jobs depend on it"))
        return out
    done = set(out.done)
    out.skipped = [(jid, "not found or complete") for jid in jids if jid not in done]
    return out


def timeout(client: Client, jids: Sequence[str]) -> Outcome:
    """Expire running jobs' leases now (the next pop hands them out again)."""
    out = Outcome("timeout")
    found, out.skipped = _jobs(client, jids)
    for jid in jids:
        job = found.get(jid)
        if job is None:
            continue
        try:
            job.timeout()
            out.done.append(jid)
        except WrongState:
            out.skipped.append((jid, f"not running ({job.state.value})"))
    return out


def set_priority(client: Client, jid: str, value: Any) -> Outcome:
    """Change one job's priority."""
    try:
        priority = int(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"priority must be a whole number, got {value!r}") from None
    engine_args.priority(priority)
    job = _one(client, jid)
    job.priority = priority
    return Outcome("priority", done=[jid], target=str(priority))


def _one(client: Client, jid: str) -> Job:
    got = client.jobs.get(engine_args.existing_name(jid, "jid"))
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
    return engine_args.names(tags, "tags")


def tag(client: Client, jid: str, raw: str, on: bool, exact: Sequence[str] = ()) -> Outcome:
    """Add or remove tags on one job (``exact``: tags taken as given, e.g. from a hidden field)."""
    tags = parse_tags(raw, exact)
    job = _one(client, jid)
    if on:
        job.tag(*tags)
    else:
        job.untag(*tags)
    return Outcome("tag" if on else "untag", done=[jid], target=" ".join(tags))


def undepend(client: Client, jid: str, dependencies: Sequence[str], everything: bool) -> Outcome:
    """Remove some (or all) of a job's dependencies; with none left it becomes ready."""
    job = _one(client, jid)
    if everything:
        job.undepend(all=True)
    else:
        deps = engine_args.names([d.strip() for d in dependencies if d.strip()], "dependencies")
        if not deps:
            raise InvalidArgument("dependencies: name at least one, or choose all")
        job.undepend(*deps)
    return Outcome("undepend", done=[jid])


def unrecur(client: Client, jid: str) -> Outcome:
    """Stop a recurring template (spawned jobs stay)."""
    from queueengine.recurring import RecurringJob

    item = client.jobs[engine_args.name(jid, "jid")]
    if not isinstance(item, RecurringJob):
        raise WrongState(f"{jid} is a job, not a recurring template")
    item.cancel()
    return Outcome("unrecur", done=[jid])


def pause(client: Client, queue: str, paused: bool) -> str:
    """Pause or unpause a queue; returns the message."""
    q = client.queues[engine_args.name(queue, "queue")]
    if paused:
        q.pause()
        return f"Paused {queue}: workers take nothing from it until it is unpaused"
    q.unpause()
    return f"Unpaused {queue}"


def set_config(client: Client, option: str, value: str | None) -> str:
    """Set (or, with value None, unset) an engine option; returns the message."""
    engine_args.name(option, "option")
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
