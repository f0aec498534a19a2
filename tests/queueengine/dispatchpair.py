"""What the delivery-mode tests share: ``Pair`` builds clients and workers of one backend and mode
and tears them down; the ``pair`` fixture runs a test over every backend and mode."""

from __future__ import annotations

import asyncio
from typing import Any

from queueengine.dispatch import JobManager

KINDS = [("memory", "simple"), ("redis", "simple"), ("redis", "recoverable"), ("redis", "reliable")]
IDS = ["memory", "simple", "recoverable", "reliable"]
NS = "test"


class Pair:
    """Builds clients and workers of one kind and tears them all down."""

    def __init__(self, kind: tuple[str, str], url: str) -> None:
        self.type, self.mode = kind
        self.url = url
        self.made: list[Any] = []

    def _cfg(self, cfg: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {"mode": self.mode, "namespace": NS}
        if self.type == "redis":
            base["uri"] = self.url
        return {**base, **cfg}

    def client(self, **cfg: Any) -> Any:
        client = JobManager().client(self.type, **self._cfg(cfg))
        self.made.append(client)
        return client

    def worker(self, handler: Any = None, start: bool = True, **cfg: Any) -> Any:
        worker = JobManager().worker(self.type, **self._cfg(cfg))
        self.made.append(worker)
        if handler is not None:
            worker.jobs.each(handler)
            if start:
                worker.start()
        return worker

    def close(self) -> None:
        for thing in reversed(self.made):
            if hasattr(thing, "stop"):
                thing.stop(timeout=1)
            else:
                thing.close()




def add(job: Any) -> None:
    job.done(job.data["x"] + job.data["y"])


def run_async(coro: Any) -> Any:
    """asyncio.run(coro) on a thread of its own, so it works even while another test's event
    loop (e.g. a session-wide Playwright) is running in the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)
