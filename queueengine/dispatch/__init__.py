"""Job::Async-style delivery modes on top of the engine: ``simple``, ``recoverable``, ``reliable``,
and ``jobasync`` (Job::Async::Redis's own wire protocol, to run beside Perl clients and workers).

::

    from queueengine.dispatch import JobManager
    jobman = JobManager()
    client = jobman.client("redis", uri=URL, mode="reliable", queue="default")
    worker = jobman.worker("redis", uri=URL, mode="reliable", queues=["high", "default"])
    worker.jobs.each(lambda job: job.done(job.data["x"] + job.data["y"]))
    worker.start()
    assert client.submit(x=1, y=2).result() == 3

See docs/modes.md for what each mode guarantees and costs.
"""

from __future__ import annotations

from .base import Client
from .errors import JobFailed, JobTimeout, ModeMismatch
from .manager import MODES, TYPES, JobManager
from .worker import Job, Worker

__all__ = ["MODES", "TYPES", "Client", "Job", "JobFailed", "JobManager", "JobTimeout", "ModeMismatch", "Worker"]
