"""``manage.py qe_sweep``: one bounded housekeeping pass, for cron or when no worker runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError, CommandParser

from queueengine.management.commands._common import QECommand

if TYPE_CHECKING:
    from queueengine.client import Client

# Extra sweeps run after the engine's housekeeping: (name, function(client, options) -> dict).
# Delivery modes register theirs here (e.g. the recoverable mode's "requeue claims older than
# N seconds"); each result is printed under its name.
SWEEPS: list[tuple[str, Callable[[Client, dict[str, Any]], dict[str, Any]]]] = []


def _recoverable_sweep(client: Client, options: dict[str, Any]) -> dict[str, Any]:
    """Recoverable delivery mode: hand back claims older than --older-than seconds."""
    from queueengine.conf import settings

    if settings.MODE != "recoverable":
        return {}
    from queueengine.dispatch.recoverable import sweep

    return {"requeued": sweep(client, options["older_than"], options["queues"] or None)}


SWEEPS.append(("recoverable", _recoverable_sweep))


class Command(QECommand):
    help = ("Housekeeping: promote due scheduled jobs, spawn due recurring jobs, reclaim expired leases, "
            "apply retention to completed/failed jobs, forget dead workers. Prints what it did.")
    epilog = """
examples:
  manage.py qe_sweep                      every queue
  manage.py qe_sweep -q default -q high   only these queues
  manage.py qe_sweep --json               machine-readable output

Workers do this as they go; run qe_sweep from cron when queues have no worker for a while.
Each pass is bounded (housekeeping-batch items per step and queue): run it again if it was busy.
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-q", "--queue", dest="queues", action="append", metavar="QUEUE",
                            help="limit to this queue; repeatable (default: every queue)")
        parser.add_argument("--older-than", type=float, default=30.0,
                            help="recoverable mode: requeue claims older than this many seconds (default: 30)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        from queueengine.exceptions import QueueEngineError

        if options["older_than"] < 0:
            raise CommandError(f"--older-than must be >= 0, got {options['older_than']}")
        client = self.client()
        try:
            report: dict[str, Any] = {"housekeep": client.housekeep(options["queues"] or None)}
            for name, sweep in SWEEPS:
                extra = sweep(client, options)
                if extra:
                    report[name] = extra
        except QueueEngineError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            client.close()
        if options["json"]:
            self.emit_json(report)
            return
        for section, values in report.items():
            if isinstance(values, dict):
                text = ", ".join(f"{k} {v}" for k, v in values.items()) or "nothing"
            else:
                text = str(values)
            self.stdout.write(f"{section}: {text}")
