"""``manage.py qe_import_qless SOURCE_URL``: copy a Qless keyspace into a namespace of the engine."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser, OutputWrapper

from queueengine.management.commands._common import QECommand


class ProgressBar:
    """A one-line text progress bar (redrawn in place on a terminal, a line per 10% otherwise)."""

    def __init__(self, out: OutputWrapper, width: int = 30) -> None:
        self.out, self.width = out, width
        self.tty = bool(out.isatty())
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        total = max(total, 1)
        share = min(done / total, 1.0)
        if not self.tty:
            step = int(share * 10)
            if step != self.shown:
                self.shown = step
                self.out.write(f"importing: {done}/{total} ({share:.0%})")
            return
        filled = int(share * self.width)
        self.out.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {share:.0%}", ending="")
        self.out.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            self.out.write("")


class Command(QECommand):
    help = "Import a Qless (qless-core) keyspace into a namespace: jobs in every state, recurring templates, " \
           "tags, tracked jobs, failure groups, config and stats. The Qless keys are only read."
    epilog = """
examples:
  manage.py qe_import_qless redis://old-host:6379/0 --dry-run      what would be imported
  manage.py qe_import_qless redis://old-host:6379/0                into the configured namespace
  manage.py qe_import_qless redis://old-host:6379/0 --namespace shop --json

Running it again imports only what is new ("already imported" for the rest). Cut-over: pause
the Qless workers, run the import, start the engine's workers (README: "Moving from Qless").
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source_url", help="redis:// URL of the Redis that holds the Qless keys")
        parser.add_argument("--namespace", help="target namespace (default: QUEUEENGINE['NAMESPACE'])")
        parser.add_argument("--prefix", default="ql:", help="Qless key prefix (default: ql:)")
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
        parser.add_argument("--chunk", type=int, default=200, help="jobs per Redis call (1..1000, default 200)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        import redis

        from queueengine.exceptions import QueueEngineError
        from queueengine.migrate import import_qless

        url = options["source_url"]
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise CommandError(f"SOURCE_URL must be a redis://, rediss:// or unix:// URL, got {url!r}")
        overrides = {"namespace": options["namespace"]} if options["namespace"] else {}
        try:
            client = self.client_for(overrides)
        except QueueEngineError as exc:
            raise CommandError(f"--namespace: {exc}") from None
        source = redis.Redis.from_url(url)
        bar = None
        if not (options["no_progress"] or options["json"]):
            self.stderr.style_func = None   # a plain bar, not styled as an error
            bar = ProgressBar(self.stderr)
        try:
            report = import_qless(source, client, options["prefix"], dry_run=options["dry_run"],
                                  progress=bar, chunk=options["chunk"])
        except redis.ConnectionError as exc:
            raise CommandError(f"cannot reach the Qless Redis at {url}: {exc}") from None
        except QueueEngineError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()
            source.close()
            client.close()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        else:
            self.stdout.write(report.summary())

    def client_for(self, overrides: dict[str, Any]) -> Any:
        """The target namespace's client."""
        from queueengine.conf import get_client

        return get_client(**overrides)
