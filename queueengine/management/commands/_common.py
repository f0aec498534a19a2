"""Shared bits of the qe_* management commands."""

from __future__ import annotations

import json
from argparse import RawDescriptionHelpFormatter
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

if TYPE_CHECKING:
    from queueengine.client import Client


class QECommand(BaseCommand):
    """A command whose ``epilog`` (examples) keeps its line breaks in ``--help``."""

    epilog = ""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, epilog=self.epilog, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def client(self) -> Client:
        """The engine client of the settings (``QUEUEENGINE``)."""
        from queueengine.conf import get_client

        return get_client()

    def emit_json(self, value: Any) -> None:
        """Write ``value`` as indented JSON on stdout."""
        self.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str))


def parse_json(name: str, text: str) -> Any:
    """``text`` parsed as JSON; CommandError naming the option ``name`` when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{name} is not valid JSON ({exc}): {text!r}") from None


def split_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
