"""``manage.py qe_config``: show or change the engine's config (heartbeat, grace-period, ...)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from queueengine.management.commands._common import QECommand


def parse_value(text: str) -> Any:
    """``60`` -> 60, ``1.5`` -> 1.5, anything else stays a string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text


class Command(QECommand):
    help = "Show the engine's config, one option, or set/unset an option."
    epilog = """
examples:
  manage.py qe_config                       every option (defaults included)
  manage.py qe_config heartbeat             one option
  manage.py qe_config heartbeat 120         lease length in seconds
  manage.py qe_config default-heartbeat 30  per-queue lease: <queue>-heartbeat
  manage.py qe_config grace-period 5
  manage.py qe_config --unset heartbeat     back to the default
  manage.py qe_config --json

Common options: heartbeat (lease seconds, 60), grace-period (10), jobs-history (seconds completed
jobs are kept), jobs-history-count, max-job-history, <queue>-max-concurrency.
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", nargs="?", help="option to show or set")
        parser.add_argument("value", nargs="?", help="new value (numbers are stored as numbers)")
        parser.add_argument("--unset", metavar="KEY", help="remove an option (it falls back to its default)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        from queueengine.exceptions import InvalidArgument, QueueEngineError

        key, value, unset = options["key"], options["value"], options["unset"]
        if unset and key:
            raise CommandError("--unset takes the option name itself; do not also give key/value")
        client = self.client()
        try:
            if unset:
                if unset not in client.config.all():
                    raise CommandError(f"--unset: no option named {unset!r}")
                del client.config[unset]
                self.stdout.write(f"unset {unset}")
                return
            if key is not None and value is not None:
                client.config[key] = parse_value(value)
                self.stdout.write(f"{key} = {client.config[key]}")
                return
            if key is not None:
                config = client.config.all()
                if key not in config:
                    raise CommandError(f"key: no option named {key!r} (see manage.py qe_config)")
                shown: Any = {key: config[key]} if options["json"] else config[key]
            else:
                shown = client.config.all()
        except InvalidArgument as exc:
            raise CommandError(f"invalid argument: {exc}") from exc
        except QueueEngineError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            client.close()
        if options["json"]:
            self.emit_json(shown)
        elif isinstance(shown, dict):
            width = max((len(k) for k in shown), default=0)
            for k in sorted(shown):
                self.stdout.write(f"{k:<{width}}  {shown[k]}")
        else:
            self.stdout.write(str(shown))
