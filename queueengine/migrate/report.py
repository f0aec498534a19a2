"""What an import did: counts per queue and state, what was already there, what was skipped and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

EXAMPLES = 20
"""How many examples (jids, keys) the report keeps per skip reason."""


@dataclass
class ImportReport:
    """The outcome of :func:`queueengine.migrate.import_qless`.

    ``imported[queue][state]``: jobs written (``state`` is the engine's: waiting, scheduled,
    depends, running, stalled, failed, complete; ``recurring`` counts templates). ``already``:
    items found in the namespace from an earlier run (per kind: job, recurring, queue, config,
    stats). ``skipped``: reason -> number of items; ``examples``: reason -> a few of them.
    ``adjusted``: changes made to fit the engine (a priority rounded or clamped), reason -> count.
    """

    dry_run: bool = False
    imported: dict[str, Counter[str]] = field(default_factory=dict)
    already: Counter[str] = field(default_factory=Counter)
    other: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    adjusted: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, queue: str, state: str, n: int = 1) -> None:
        """Record ``n`` imported jobs of ``queue`` in ``state``."""
        self.imported.setdefault(queue, Counter())[state] += n

    def skip(self, reason: str, what: str) -> None:
        """Record one item left out, and why."""
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(what)

    def adjust(self, reason: str, what: str) -> None:
        """Record one item changed to fit the engine."""
        self.adjusted[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(what)

    @property
    def jobs(self) -> int:
        """Jobs imported (templates not included)."""
        return sum(n for c in self.imported.values() for s, n in c.items() if s != "recurring")

    @property
    def nothing_new(self) -> bool:
        """True when the run found everything imported already (a repeated run)."""
        return not self.imported and not self.other and sum(self.already.values()) > 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form of the report."""
        return {
            "dry_run": self.dry_run,
            "imported": {q: dict(c) for q, c in sorted(self.imported.items())},
            "other": dict(self.other),
            "already_imported": dict(self.already),
            "skipped": dict(self.skipped),
            "adjusted": dict(self.adjusted),
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """The final report as text (what the management command prints)."""
        verb = "would import" if self.dry_run else "imported"
        lines = [f"{verb} {self.jobs} jobs in {self.seconds:.1f} s"]
        for queue in sorted(self.imported):
            counts = ", ".join(f"{s} {n}" for s, n in sorted(self.imported[queue].items()))
            lines.append(f"  {queue or '(no queue)'}: {counts}")
        if self.other:
            lines.append("  also: " + ", ".join(f"{k} {n}" for k, n in sorted(self.other.items())))
        if self.already:
            total = sum(self.already.values())
            parts = ", ".join(f"{k} {n}" for k, n in sorted(self.already.items()))
            lines.append(f"already imported: {total} ({parts})")
            if self.nothing_new:
                lines.append("nothing new: everything was already imported")
        for title, counter in (("skipped", self.skipped), ("adjusted", self.adjusted)):
            for reason, n in sorted(counter.items()):
                shown = ", ".join(self.examples.get(reason, [])[:5])
                lines.append(f"{title}: {n} {reason}" + (f" (e.g. {shown})" if shown else ""))
        return "\n".join(lines)
