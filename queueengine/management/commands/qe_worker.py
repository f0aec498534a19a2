"""``manage.py qe_worker``: run jobs from one or more queues."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.core.management.base import CommandError, CommandParser

from queueengine.conf import get_client, settings
from queueengine.management.commands._common import QECommand
from queueengine.management.common import configure_logging, default_queues

if TYPE_CHECKING:
    from queueengine.client import Client

EPILOG = """
examples:
  manage.py qe_worker                          work QUEUEENGINE["QUEUES"], else the TASKS backends' QUEUES, else "default"
  manage.py qe_worker -q high -q default       strict priority: "default" only when "high" is empty
  manage.py qe_worker -q emails --concurrency 16 --processes 2
  manage.py qe_worker -q reports --burst       work until the queues are empty, then exit (cron, CI)

Job handlers: each job names a dotted path ("app.jobs.resize") to a function taking the job, or
to a class with a process(job) method (or one named after the queue). Returning completes the
job with the return value as its result; an exception fails it in group "<queue>-<Error>".

Stopping: SIGTERM or Ctrl-C stops fetching, lets running jobs finish for up to
--shutdown-timeout seconds, hands the rest back to their queues and exits; a second signal
exits at once.

Redis away at start-up: the worker waits for it (retrying with backoff; SIGTERM then exits 0
at once); with --burst it gives up after --redis-wait seconds (default 10) and exits 1 saying so.
"""

BURST_REDIS_WAIT = 10.0
"""Seconds a --burst worker waits for an unreachable Redis before it exits 1."""


def _shown(url: str) -> str:
    """A Redis URL fit to print (any password replaced by ***)."""
    import re

    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def wait_for_redis(client: Client, budget: float | None, say: Callable[[str], None]) -> bool:
    """Ping Redis until it answers (True) or SIGTERM/SIGINT arrives (False); with a ``budget``
    in seconds, raise CommandError once it is spent. Backoff 0.1 s doubling to 2 s."""
    import signal
    import threading
    import time

    from queueengine.store.connection import is_transient

    stop = threading.Event()
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    url = _shown(str(settings.URL))
    try:
        delay, tries = 0.1, 0
        deadline = None if budget is None else time.monotonic() + budget
        while not stop.is_set():
            tries += 1
            try:
                client.redis.ping()
                return True
            except Exception as exc:
                if not is_transient(exc):
                    raise
                last = exc
            if deadline is not None and time.monotonic() + delay > deadline:
                raise CommandError(f"cannot reach Redis at {url} ({last}); gave up after {tries} attempts in "
                                   f"{budget:g} s. Start Redis there or point REDIS_URL / QUEUEENGINE['URL'] at "
                                   "a reachable server (--redis-wait SECONDS waits longer)")
            say(f"Redis at {url} unreachable ({last}); trying again in {delay:.1f} s")
            stop.wait(delay)
            delay = min(2.0, delay * 2)
        return False
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def positive_int(name: str, value: Any) -> int:
    """``value`` of option ``--name`` when it is a whole number >= 1, else CommandError."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CommandError(f"--{name} must be a whole number >= 1, got {value!r}")
    return value


def checked_queues(queues: list[str]) -> list[str]:
    """The ``--queue`` names, each once (CommandError otherwise)."""
    for q in queues:
        if not q or q != q.strip():
            raise CommandError(f"--queue: {q!r} is not a queue name")
    if len(set(queues)) != len(queues):
        raise CommandError(f"--queue lists a queue twice: {' '.join(queues)}")
    return queues


def check_not_negative(options: dict[str, Any]) -> None:
    """--prefetch, --shutdown-timeout and --redis-wait must be >= 0."""
    if options["prefetch"] is not None and options["prefetch"] < 0:
        raise CommandError(f"--prefetch must be >= 0, got {options['prefetch']}")
    if options["shutdown_timeout"] < 0:
        raise CommandError("--shutdown-timeout must be >= 0")
    if options["redis_wait"] is not None and options["redis_wait"] < 0:
        raise CommandError(f"--redis-wait must be >= 0, got {options['redis_wait']}")


def mode_handler(mode: str, path: str | None, burst: bool) -> Callable[..., Any] | None:
    """The ``--handler`` of a simple/recoverable worker (None in reliable mode, whose jobs name
    their own); CommandError when the options do not fit the mode or the handler cannot be used."""
    if mode != "reliable" and not path:
        raise CommandError(f"--mode {mode}: jobs of this mode carry no handler path; name one with "
                           "--handler app.jobs.handle")
    if mode != "reliable" and burst:
        raise CommandError(f"--burst works in reliable mode only, not with --mode {mode}")
    if mode == "reliable" and path:
        raise CommandError("--handler is for --mode simple/recoverable; reliable jobs name their handler")
    if not path:
        return None
    from queueengine.worker.handlers import import_path

    try:
        handler = import_path(path)
    except ImportError as exc:
        raise CommandError(f"--handler: {exc}") from exc
    if not callable(handler):
        raise CommandError(f"--handler: {path} is not callable")
    return cast("Callable[..., Any]", handler)


@dataclass(frozen=True)
class Plan:
    """What ``qe_worker`` was asked to run, checked."""

    queues: list[str]
    concurrency: int
    processes: int
    namespace: str
    mode: str
    handler: Callable[..., Any] | None
    name: str | None
    burst: bool
    prefetch: int | None
    shutdown_timeout: float
    redis_wait: float | None
    verbosity: int


class Command(QECommand):
    help = "Run a worker: take jobs from the given queues (strict priority order) and run their handlers."
    epilog = EPILOG

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-q", "--queue", dest="queues", action="append", metavar="QUEUE",
                            help="a queue to work; repeat it, most important first "
                                 "(default: QUEUEENGINE['QUEUES'], else the QUEUES of the TASKS entries "
                                 "using QueueEngineBackend, else default)")
        parser.add_argument("-c", "--concurrency", type=int, default=None,
                            help="jobs run at once per process: threads for sync handlers, asyncio tasks "
                                 "for async ones (default: QUEUEENGINE['CONCURRENCY'], else 4)")
        parser.add_argument("-p", "--processes", type=int, default=None,
                            help="worker processes; 1 (the default) works in this process, more start a "
                                 "supervisor that restarts children that die")
        parser.add_argument("--burst", action="store_true",
                            help="work until nothing is ready in the queues, then exit")
        parser.add_argument("-n", "--name", default=None,
                            help="worker name shown in the dashboard (default: <host>-<pid>; with "
                                 "--processes N each process appends -<index>)")
        parser.add_argument("--mode", default=None, choices=("simple", "recoverable", "reliable"),
                            help="delivery mode (default: QUEUEENGINE['MODE']); simple and recoverable "
                                 "jobs carry no handler path, so they need --handler")
        parser.add_argument("--handler", default=None, metavar="DOTTED.PATH",
                            help="simple/recoverable modes: the function called with each job "
                                 "(queueengine.dispatch Job: job.data, job.done(result), job.fail(reason))")
        parser.add_argument("--prefetch", type=int, default=None,
                            help="jobs held beyond --concurrency to batch pops of short jobs (default: auto: "
                                 "32 while jobs take under 2 ms, --concurrency under 50 ms, else none; 0 turns "
                                 "it off)")
        parser.add_argument("--namespace", default=None,
                            help="the namespace whose queues to work (default: the one QUEUEENGINE"
                                 "['QUEUE_NAMESPACES'] gives the queues, else QUEUEENGINE['NAMESPACE'])")
        parser.add_argument("--redis-wait", type=float, default=None, metavar="SECONDS",
                            help="how long to wait for an unreachable Redis at start-up before exiting 1 "
                                 f"(default: {BURST_REDIS_WAIT:g} with --burst, else as long as it takes)")
        parser.add_argument("--shutdown-timeout", type=float, default=30.0,
                            help="seconds running jobs get to finish after SIGTERM (default: 30)")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = self.plan(options)
        configure_logging(self, options["verbosity"])
        work = functools.partial(self.work, plan)
        if plan.processes == 1:
            code = work(None)
        else:
            from queueengine.worker.supervisor import Supervisor

            self.say(f"supervising {plan.processes} worker processes")
            code = Supervisor(work, plan.processes, shutdown_timeout=plan.shutdown_timeout).run()
        if code:
            raise SystemExit(code)

    def plan(self, options: dict[str, Any]) -> Plan:
        """The checked options (CommandError naming the first bad one)."""
        queues = checked_queues(options["queues"] or default_queues())
        concurrency = positive_int("concurrency", options["concurrency"] if options["concurrency"] is not None
                                   else settings.CONCURRENCY)
        processes = positive_int("processes", options["processes"] if options["processes"] is not None
                                 else settings.PROCESSES)
        check_not_negative(options)
        namespace = options["namespace"] or self.namespace_of(queues)
        mode = options["mode"] or settings.MODE
        handler = mode_handler(mode, options["handler"], options["burst"])
        redis_wait = options["redis_wait"] if options["redis_wait"] is not None else (
            BURST_REDIS_WAIT if options["burst"] else None)
        return Plan(queues, concurrency, processes, namespace, mode, handler, options["name"], options["burst"],
                    options["prefetch"], options["shutdown_timeout"], redis_wait, options["verbosity"])

    def work(self, plan: Plan, index: int | None) -> int:
        """Run one worker in this process (``index``: its number under a supervisor); the exit code."""
        if plan.handler is not None:
            return self.work_mode(plan.mode, plan.queues, plan.concurrency, plan.handler, plan.shutdown_timeout,
                                  plan.namespace)
        worker_name = f"{plan.name}-{index}" if plan.name and index is not None else plan.name
        client = (get_client(namespace=plan.namespace) if worker_name is None
                  else get_client(namespace=plan.namespace, worker_name=worker_name))
        try:
            if not wait_for_redis(client, plan.redis_wait, self.say):
                self.say("stopped before start-up finished (Redis was unreachable)")
                return 0
            return self.run_worker(plan, client, worker_name)
        finally:
            client.close()

    def run_worker(self, plan: Plan, client: Client, worker_name: str | None) -> int:
        """Build the worker and run it until it stops; the exit code."""
        from queueengine.store.connection import is_transient
        from queueengine.worker import Worker

        try:
            worker = Worker(client, plan.queues, concurrency=plan.concurrency, mode=plan.mode, name=worker_name,
                            burst=plan.burst, shutdown_timeout=plan.shutdown_timeout, prefetch=plan.prefetch)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if plan.verbosity:  # -v 0: quiet
            self.say(f"worker {worker.name}: queues {', '.join(plan.queues)}, concurrency {plan.concurrency}"
                     f"{', burst' if plan.burst else ''}")
        try:
            return worker.run()
        except ValueError as exc:  # refused to start (a dispatch namespace)
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            if worker.stopping and is_transient(exc):  # a signal while start-up waited for Redis
                self.say("stopped before start-up finished (Redis was unreachable)")
                return 0
            raise

    def say(self, line: str) -> None:
        """One line on stdout, flushed (a supervisor or a log collector reads it as it comes)."""
        self.stdout.write(line)
        self.stdout.flush()

    @staticmethod
    def namespace_of(queues: list[str]) -> str:
        """The namespace of the queues (QUEUEENGINE['QUEUE_NAMESPACES'], else NAMESPACE); they must
        share one: a worker pops from one namespace (one Lua call in one hash slot)."""
        routes = dict(settings.QUEUE_NAMESPACES or {})
        spaces = sorted({routes.get(q, settings.NAMESPACE) for q in queues})
        if len(spaces) > 1:
            raise CommandError(f"the queues {' '.join(queues)} live in different namespaces ({', '.join(spaces)}: "
                               "QUEUEENGINE['QUEUE_NAMESPACES']); a worker works one namespace: start one per "
                               "namespace (--namespace NAME -q ...)")
        return spaces[0]

    def work_mode(self, mode: str, queues: list[str], concurrency: int, handler: Any, shutdown_timeout: float,
                  namespace: str | None = None) -> int:
        """Simple/recoverable modes: a queueengine.dispatch worker, stopped gracefully on SIGTERM/SIGINT."""
        import os
        import signal
        import sys
        import threading

        from queueengine.dispatch import JobManager
        from queueengine.exceptions import QueueEngineError

        try:
            worker = JobManager().worker("redis", uri=settings.URL, namespace=namespace or settings.NAMESPACE, mode=mode,
                                         queues=queues, max_concurrent_jobs=concurrency)
        except (QueueEngineError, ValueError) as exc:
            raise CommandError(f"--mode {mode}: {exc}") from exc
        worker.jobs.each(handler)
        stop = threading.Event()
        count = [0]

        def on_signal(signum: int, frame: Any) -> None:
            count[0] += 1
            if count[0] > 1:
                sys.stderr.write("second signal, exiting now\n")
                os._exit(128 + signum)
            stop.set()

        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(f"{mode} worker: queues {', '.join(queues)}, concurrency {concurrency}")
        self.stdout.flush()
        try:
            worker.start()
            stop.wait()
            self.stdout.write("stopping: finishing running jobs (a second signal exits at once)")
            worker.stop(timeout=shutdown_timeout)
        finally:
            for sig, handler_ in old.items():
                signal.signal(sig, handler_)
        return 0
