"""``manage.py qe_put``: put one job into a queue and print its jid."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from queueengine.management.commands._common import QECommand, parse_json, split_list


class Command(QECommand):
    help = "Put a job into a queue and print its jid."
    epilog = """
examples:
  manage.py qe_put default app.jobs.resize --data '{"w": 640}'
  manage.py qe_put high app.jobs.Report --priority 10 --tags nightly,pdf --retries 3
  manage.py qe_put default app.jobs.send --delay 60              run in a minute
  manage.py qe_put default app.jobs.merge --depends JID1,JID2     run after those jobs complete
  manage.py qe_put default app.jobs.once --jid import-2024 --unique    refuse if the jid exists

KLASS is the dotted path of the handler: a function taking the job, or a class with process(job).
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", help="queue name, e.g. default")
        parser.add_argument("klass", help="dotted path of the job handler, e.g. app.jobs.resize")
        parser.add_argument("--data", default="{}", help="job data as JSON (default: {})")
        parser.add_argument("--priority", type=int, default=0, help="higher pops first (default: 0)")
        parser.add_argument("--delay", type=float, default=0.0, help="seconds before the job may run (default: 0)")
        parser.add_argument("--tags", default="", help="comma-separated tags")
        parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                            help="one tag, taken as is (commas included); repeatable")
        parser.add_argument("--retries", type=int, default=5,
                            help="times the job may be retried or reclaimed before it fails (default: 5)")
        parser.add_argument("--depends", default="", help="comma-separated jids that must complete first")
        parser.add_argument("--depend", action="append", default=[], metavar="JID",
                            help="one jid that must complete first, taken as is; repeatable")
        parser.add_argument("--jid", default=None, help="job id to use (default: a new random one)")
        parser.add_argument("--unique", action="store_true", help="fail if a job with --jid exists")

    def handle(self, *args: Any, **options: Any) -> None:
        from queueengine.exceptions import InvalidArgument, QueueEngineError

        data = parse_json("--data", options["data"])
        if options["delay"] < 0:
            raise CommandError(f"--delay must be >= 0, got {options['delay']}")
        if options["retries"] < 0:
            raise CommandError(f"--retries must be >= 0, got {options['retries']}")
        if options["unique"] and not options["jid"]:
            raise CommandError("--unique needs --jid")
        client = self.client()
        try:
            jid = client.queues[options["queue"]].put(
                options["klass"], data, priority=options["priority"], tags=split_list(options["tags"]) + options["tag"],
                delay=options["delay"], retries=options["retries"],
                depends=split_list(options["depends"]) + options["depend"],
                jid=options["jid"], unique=options["unique"])
        except InvalidArgument as exc:
            raise CommandError(f"invalid argument: {exc}") from exc
        except QueueEngineError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            client.close()
        self.stdout.write(jid)
