"""The worker runtime: ``Worker`` pops jobs and runs their handlers (``queueengine.worker.Worker``).

Parts: ``loop`` (the dispatcher: waiting, popping, shutdown), ``runner`` (runs one job on a
thread or the asyncio loop and settles its outcome), ``handlers`` (resolving ``klass``, retry
policies), ``leases`` (heartbeats and abort notices), ``completions`` (batched completes),
``supervisor`` (several worker processes).
"""

from queueengine.worker.handlers import JobAborted, constant, exponential, linear, retry
from queueengine.worker.loop import Worker, checkpoint, current_job

__all__ = ["JobAborted", "Worker", "checkpoint", "constant", "current_job", "exponential", "linear", "retry"]
