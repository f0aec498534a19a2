"""A jobasync worker whose handler never returns, for the killed-mid-job test.

``python -m tests.bridges.ja_hold_worker URI`` prints ``started <id>`` when it holds a job.
"""

from __future__ import annotations

import sys
import threading

from queueengine.dispatch import Job, JobManager


def hold(job: Job) -> None:
    """Announce the job, then hold it until the process is killed."""
    print("started", job.id, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    worker = JobManager().worker("redis", uri=sys.argv[1], mode="jobasync", max_concurrent_jobs=2)
    worker.jobs.each(hold)
    worker.run()
