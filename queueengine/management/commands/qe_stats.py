"""``manage.py qe_stats``: queue counts, today's stats, failure groups and workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError, CommandParser

from queueengine.management.commands._common import QECommand

if TYPE_CHECKING:
    from queueengine.client import Client

COLUMNS = ("waiting", "running", "stalled", "scheduled", "depends", "recurring", "throttled")


class Command(QECommand):
    help = "Show queues (counts and today's wait/run stats), failure groups and workers."
    epilog = """
examples:
  manage.py qe_stats                 every queue, failure groups and workers
  manage.py qe_stats default         one queue, with today's wait/run statistics
  manage.py qe_stats --json          the same as JSON (for scripts and monitoring)
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", nargs="?", help="only this queue (default: all queues)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def collect(self, client: Client, queue: str | None) -> dict[str, Any]:
        """Counts, today's stats (without histograms), failure groups and workers, as JSON-able data."""
        counts = list(client.queues.counts)
        if queue is not None:
            counts = [c for c in counts if c["name"] == queue]
            if not counts:
                known = ", ".join(sorted(c["name"] for c in client.queues.counts)) or "none yet"
                raise CommandError(f"queue: no queue named {queue!r} (known queues: {known})")
        report: dict[str, Any] = {"queues": counts, "stats": {}, "failed": client.jobs.failed(),
                                  "workers": list(client.workers.counts)}
        for entry in counts:
            stats: dict[str, Any] = dict(client.queues[entry["name"]].stats())
            for kind in ("wait", "run"):
                if isinstance(stats.get(kind), dict):
                    stats[kind] = {k: v for k, v in stats[kind].items() if k != "histogram"}
            report["stats"][entry["name"]] = stats
        return report

    def handle(self, *args: Any, **options: Any) -> None:
        from queueengine.exceptions import QueueEngineError

        client = self.client()
        try:
            report = self.collect(client, options["queue"])
        except QueueEngineError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            client.close()
        if options["json"]:
            self.emit_json(report)
            return
        self.print_table(report)

    def print_table(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        if not report["queues"]:
            write("no queues yet (put a job with: manage.py qe_put <queue> <klass>)")
        else:
            width = max(5, *(len(q["name"]) for q in report["queues"]))
            write(f"{'queue':<{width}}  " + "  ".join(f"{c:>9}" for c in COLUMNS)
                  + "  paused  today: done  failed  wait(mean)  run(mean)")
            for q in report["queues"]:
                s = report["stats"].get(q["name"], {})
                run, wait = s.get("run", {}), s.get("wait", {})
                write(f"{q['name']:<{width}}  " + "  ".join(f"{q.get(c, 0):>9}" for c in COLUMNS)
                      + f"  {'yes' if q.get('paused') else 'no':>6}  {run.get('count', 0):>11}"
                      + f"  {s.get('failures', 0):>6}  {wait.get('mean', 0):>9.3f}s  {run.get('mean', 0):>8.3f}s")
        failed = report["failed"]
        write("")
        write("failed: " + (", ".join(f"{g} {n}" for g, n in sorted(failed.items())) if failed else "none"))
        write("workers:" if report["workers"] else "workers: none")
        for w in report["workers"]:
            info = w.get("info") or {}
            queues = ",".join(info.get("queues", []))
            write(f"  {w['name']}  jobs {w.get('jobs', 0)}  stalled {w.get('stalled', 0)}"
                  + (f"  queues {queues}" if queues else ""))
