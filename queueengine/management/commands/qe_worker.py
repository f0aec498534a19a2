"""``manage.py qe_worker``: run jobs from one or more queues."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from queueengine.cli import configure_logging, default_queues
from queueengine.conf import get_client, settings
from queueengine.management.commands._common import QECommand

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
"""


def positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CommandError(f"--{name} must be a whole number >= 1, got {value!r}")
    return value


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
        parser.add_argument("--shutdown-timeout", type=float, default=30.0,
                            help="seconds running jobs get to finish after SIGTERM (default: 30)")

    def handle(self, *args: Any, **options: Any) -> None:
        queues = options["queues"] or default_queues()
        for q in queues:
            if not q or q != q.strip():
                raise CommandError(f"--queue: {q!r} is not a queue name")
        if len(set(queues)) != len(queues):
            raise CommandError(f"--queue lists a queue twice: {' '.join(queues)}")
        concurrency = positive_int("concurrency", options["concurrency"] if options["concurrency"] is not None
                                   else settings.CONCURRENCY)
        processes = positive_int("processes", options["processes"] if options["processes"] is not None
                                 else settings.PROCESSES)
        if options["prefetch"] is not None and options["prefetch"] < 0:
            raise CommandError(f"--prefetch must be >= 0, got {options['prefetch']}")
        if options["shutdown_timeout"] < 0:
            raise CommandError("--shutdown-timeout must be >= 0")
        namespace = options["namespace"] or self.namespace_of(queues)
        mode = options["mode"] or settings.MODE
        if mode != "reliable" and not options["handler"]:
            raise CommandError(f"--mode {mode}: jobs of this mode carry no handler path; name one with "
                               "--handler app.jobs.handle")
        if mode != "reliable" and options["burst"]:
            raise CommandError(f"--burst works in reliable mode only, not with --mode {mode}")
        if mode == "reliable" and options["handler"]:
            raise CommandError("--handler is for --mode simple/recoverable; reliable jobs name their handler")
        handler: Any = None
        if options["handler"]:
            from queueengine.handlers import import_path

            try:
                handler = import_path(options["handler"])
            except ImportError as exc:
                raise CommandError(f"--handler: {exc}") from exc
            if not callable(handler):
                raise CommandError(f"--handler: {options['handler']} is not callable")
        configure_logging(self, options["verbosity"])
        name = options["name"]

        def work(index: int | None) -> int:
            from queueengine.worker import Worker

            if handler is not None:
                return self.work_mode(mode, queues, concurrency, handler, options["shutdown_timeout"], namespace)

            worker_name = f"{name}-{index}" if name and index is not None else name
            client = (get_client(namespace=namespace) if worker_name is None
                      else get_client(namespace=namespace, worker_name=worker_name))
            try:
                worker = Worker(client, queues, concurrency=concurrency, mode=mode, name=worker_name,
                                burst=options["burst"], shutdown_timeout=options["shutdown_timeout"],
                                prefetch=options["prefetch"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if options["verbosity"]:  # -v 0: quiet
                self.stdout.write(f"worker {worker.name}: queues {', '.join(queues)}, concurrency {concurrency}"
                                  f"{', burst' if options['burst'] else ''}")
                self.stdout.flush()
            try:
                return worker.run()
            except ValueError as exc:  # refused to start (a dispatch namespace)
                raise CommandError(str(exc)) from exc
            finally:
                client.close()

        if processes == 1:
            code = work(None)
        else:
            from queueengine.supervisor import Supervisor

            self.stdout.write(f"supervising {processes} worker processes")
            self.stdout.flush()
            code = Supervisor(work, processes, shutdown_timeout=options["shutdown_timeout"]).run()
        if code:
            raise SystemExit(code)

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
