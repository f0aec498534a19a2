"""The key schema: the only place Python builds Redis key names (mirrored in ``lua/base.lua``).

Names (the one naming rule; enforced by ``_args.name`` in Python and ``QE.name`` in
``lua/base.lua``, identically, by every command that takes a name): a queue, jid, tag, failure
group, worker, throttle, namespace (also a config option or reply inbox) is

- 1 to 512 characters (Unicode code points; in Lua: of valid UTF-8);
- without ``{`` or ``}`` (the namespace is the key's hash tag; one rule for every kind),
  without control characters (U+0000-U+001F, U+007F-U+009F) and without U+2028 / U+2029;
- not beginning or ending with a space separator (U+0020, U+00A0, U+1680, U+2000-U+200A,
  U+202F, U+205F, U+3000), so stripping a form field never changes a name;
- a jid does not end in ``:history``, ``:dependencies`` or ``:dependents`` and a throttle not in
  ``:locks`` or ``:pending`` (``j:<jid>:history`` / ``th:<name>:locks`` are their own keys; a jid
  ``x:history`` would be job ``x``'s history list).

Everything else is legal: ``/``, ``%``, ``:``, ``?``, ``#``, ``&``, quotes, spaces inside,
``..``, any other Unicode (``emails/daily``, ``café``, ``has space``). Other keys never collide:
every other name sits last in its key or before a fixed suffix. A refused name is an
``InvalidArgument`` naming the argument, raised before anything is written. Calls that only read
or delete what is already there (``get``, ``multiget``, ``recur.get``, ``cancel``, the views,
``stats``) take any non-empty name but the reserved suffixes (``_args.existing_name`` /
``QE.existing_name``), so data written before the rule or by another client stays reachable.

Every key of a namespace starts with ``qe:{<ns>}:`` (one hash tag per namespace, so a
namespace lives in one Redis Cluster slot and is the unit of atomicity)::

    config                    hash   option -> value
    seq                       string per-namespace counter (FIFO tie-break within a priority)
    queues                    zset   queue -> time first seen
    paused                    set    paused queue names
    q:<q>:work                zset   jid -> -priority*2^40 + seq   (lowest pops first)
    q:<q>:locks               zset   jid -> lease expiry (expiry <= now: stalled)
    q:<q>:scheduled           zset   jid -> ready time
    q:<q>:depends             zset   jid -> time it entered depends
    q:<q>:recur               zset   template jid -> next spawn time
    q:<q>:throttled           zset   jid -> its work score (waiting for a throttle slot)
    q:<q>:wake                list   wake tokens for idle workers (BLPOP; capped at 64)
    q:<q>:byclass             zset   <klass> NUL <jid>, score 0: the queue's jobs (any state) by class
    byclass                   set    queues that have a q:<q>:byclass index (find looks in these)
    j:<jid>                   hash   job record (field history: its first history entry)
    j:<jid>:history           list   JSON history entries {when, what, ...} after the first
    j:<jid>:dependencies      set    jids this job waits on
    j:<jid>:dependents        set    jids waiting on this job
    r:<jid>                   hash   recurring template
    t:<tag>                   zset   jid -> time tagged
    tags                      zset   tag -> number of jobs carrying it (exact; 0 removed)
    tracked                   zset   jid -> time tracked
    completed                 zset   jid -> completion time
    failed                    zset   jid -> failure time (retention)
    failures                  set    failure groups
    f:<group>                 list   jids of the group, newest first
    workers                   zset   worker -> last seen
    w:<worker>:jobs           zset   jid -> lease expiry
    w:<worker>:info           string JSON info given at registration
    s:wait:<day>:<q>          hash   total, mean, vk, histogram buckets
    s:run:<day>:<q>           hash   same, for run times
    s:stats:<day>:<q>         hash   failures, failed, retries
    s:done:<minute>           hash   queue -> jobs finished in that minute (kept 2 hours)
    s:failed:<minute>         hash   queue -> jobs failed in that minute (kept 2 hours)
    mt:m:<minute>:<q>         hash   metrics of a minute (epoch s): per class id k: w<i>:k waits, x<i>:k completed runs, y<i>:k other runs (bucket i), f:k failed, r:k retried
    mt:h:<hour>:<q>           hash   the same for an hour (kept metrics-hours; minutes: metrics-minutes)
    mt:classes                hash   job class -> class id (first seen first; never reused)
    mt:total:<q>              hash   finished hours folded in (monotonic, for Prometheus; '@' = last hour folded)
    mt:gm:<minute>            hash   failure group -> jobs failed in that minute
    mt:gh:<hour>              hash   failure group -> jobs failed in that hour
    s:wdone:<minute>          hash   worker -> jobs it completed in that minute (kept 2 hours)
    s:wfailed:<minute>        hash   worker -> its jobs that failed in that minute (kept 2 hours)
    throttles                 set    throttle names
    th:<name>                 hash   maximum
    th:<name>:locks           set    jids holding a slot
    th:<name>:pending         zset   jid -> work score

Reserved for the delivery modes (``queueengine.dispatch``; the engine never writes there;
built by ``ModeKeys``)::

    mode                      string the namespace's delivery mode (SET NX by the first client or worker)
    m:s:<queue>               list   simple: whole JSON payloads {"id","r","d"}; LPUSH in, RPOP out (FIFO)
    m:s:stats:<queue>         hash   simple: done / failed counters
    m:reply:<client>          channel simple and recoverable: {"id","ok","v"} for one client's jobs
    m:rc:claimed              zset   recoverable: jid -> claim time
    m:rc:<queue>              list   recoverable: jids waiting (LPUSH in, RPOP out)

Recoverable job records are engine records (``j:<jid>``); reliable jobs are plain engine jobs.
The ``jobasync`` mode speaks Perl Job::Async::Redis's own keys, outside any namespace (built by
``JobAsyncKeys``): ``<prefix>::<queue>`` and ``<prefix>::processing`` / ``::failed`` lists,
``job::<id>`` hashes, ``client::<id>`` channels.

Reserved for the dashboard (``jobadmin``; the engine never writes there)::

    dash:op:<id>              hash   a group operation's progress (kind, group, total, done, ...; 1 day)
    dash:ops                  zset   operation id -> start time
    dash:live-leader          string the live bridge that sends (a lease renewed every second)
    dash:live-topics          zset   live topic -> expiry (what open tabs follow)

Pub/sub channels: ``events`` (every event), ``w:<worker>`` (lock_lost / canceled for one
worker), ``reply:<jid>`` (result of a job put with ``reply=True``), ``inbox:<name>`` (the same
replies for every job one client put naming its inbox, see ``queueengine.store.replies``).
"""

from __future__ import annotations

JOBASYNC_PREFIX = "jobs"
"""Job::Async::Redis's default key prefix."""
JOBASYNC_PROCESSING = "processing"
"""Its default processing list (``<prefix>::processing``)."""
JOBASYNC_FAILED = "failed"
"""Where failed jobs' ids go (``<prefix>::failed``; read by operators only)."""


def prefix(namespace: str) -> str:
    """The key prefix of a namespace: ``qe:{<namespace>}:``."""
    return f"qe:{{{namespace}}}:"


class Keys:
    """Key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = prefix(namespace)

    def key(self, name: str) -> str:
        """A namespace-level key such as ``config`` or ``queues``."""
        return self.prefix + name

    def queue(self, queue: str, sub: str) -> str:
        """A queue's key: sub is work, locks, scheduled, depends, recur, throttled or wake."""
        return f"{self.prefix}q:{queue}:{sub}"

    def wake(self, queue: str) -> str:
        """The wake list idle workers block on."""
        return self.queue(queue, "wake")

    def job(self, jid: str) -> str:
        """The job record hash."""
        return f"{self.prefix}j:{jid}"

    def history(self, jid: str) -> str:
        """The job's history after its first entry (which is in the record)."""
        return f"{self.prefix}j:{jid}:history"

    def recurring(self, jid: str) -> str:
        """A recurring template hash."""
        return f"{self.prefix}r:{jid}"

    def tag(self, tag: str) -> str:
        """The jids carrying a tag."""
        return f"{self.prefix}t:{tag}"

    def worker_jobs(self, worker: str) -> str:
        """A worker's leases."""
        return f"{self.prefix}w:{worker}:jobs"

    def dash_record(self, record_id: str) -> str:
        """A dashboard progress record (``dash:op:<id>``; the engine never writes there)."""
        return f"{self.prefix}dash:op:{record_id}"

    @property
    def dash_records(self) -> str:
        """The index of the dashboard's progress records (id -> start time)."""
        return self.prefix + "dash:ops"

    @property
    def dash_leader(self) -> str:
        """The live bridges' leader lease."""
        return self.prefix + "dash:live-leader"

    @property
    def dash_interest(self) -> str:
        """The live topics open tabs follow (topic -> expiry)."""
        return self.prefix + "dash:live-topics"

    @property
    def events(self) -> str:
        """The namespace's event channel."""
        return self.prefix + "events"

    def worker_channel(self, worker: str) -> str:
        """The channel that gets lock_lost / canceled for one worker."""
        return f"{self.prefix}w:{worker}"

    def reply(self, jid: str) -> str:
        """The reply channel of one job."""
        return f"{self.prefix}reply:{jid}"

    def inbox(self, name: str) -> str:
        """A client's reply inbox channel."""
        return f"{self.prefix}inbox:{name}"

class ModeKeys:
    """Key names of the delivery modes in one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.prefix = prefix(namespace)
        self.mode = self.prefix + "mode"

    def simple(self, queue: str) -> str:
        """The payload list of a simple-mode queue."""
        return f"{self.prefix}m:s:{queue}"

    def simple_stats(self, queue: str) -> str:
        """Done/failed counters of a simple-mode queue."""
        return f"{self.prefix}m:s:stats:{queue}"

    def reply(self, client_id: str) -> str:
        """The reply channel of one client."""
        return f"{self.prefix}m:reply:{client_id}"

    def claimed(self) -> str:
        """Recoverable: claimed jids scored by claim time."""
        return f"{self.prefix}m:rc:claimed"

    def pending(self, queue: str) -> str:
        """Recoverable: the list of waiting jids of a queue."""
        return f"{self.prefix}m:rc:{queue}"

class JobAsyncKeys:
    """Key names of Job::Async::Redis for one prefix (``job::`` and ``client::`` are never prefixed)."""

    def __init__(self, prefix: str = JOBASYNC_PREFIX, processing: str = JOBASYNC_PROCESSING) -> None:
        self.prefix = prefix
        self.processing = self.list(processing)
        self.failed = self.list(JOBASYNC_FAILED)

    def list(self, name: str) -> str:
        """``<prefix>::<name>``, or ``<name>`` alone when the prefix is empty."""
        return f"{self.prefix}::{name}" if self.prefix else name

    @staticmethod
    def job(jid: str) -> str:
        """The hash of one job."""
        return f"job::{jid}"

    @staticmethod
    def client(client_id: str) -> str:
        """The notification channel of one client."""
        return f"client::{client_id}"
