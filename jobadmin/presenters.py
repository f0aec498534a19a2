"""Context builders: the one place the dashboard reads the engine (public API only)."""

from __future__ import annotations

from typing import Any

from queueengine.conf import get_client


def engine_client() -> Any:
    """The engine client for the configured URL and namespace."""
    return get_client()


def overview_queues(client: Any) -> dict[str, Any]:
    """Context for the ``overview_queues`` fragment: counts of every queue, failure groups, workers."""
    return {
        "queues": client.queues.counts,
        "failure_groups": sorted(client.jobs.failed().items()),
        "workers": client.workers.counts,
    }
