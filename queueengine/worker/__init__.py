"""The worker runtime: ``Worker`` pops jobs and runs their handlers (``queueengine.worker.Worker``).

Parts (``Worker`` owns one of each and hands each what it needs): ``loop`` (``Worker``: builds
the parts, start-up, shutdown), ``ledger`` (the jobs held and the counters, behind one lock),
``dispatcher`` (popping and waiting in Redis), ``runner`` (runs handlers on threads or the asyncio
loop, aborts), ``outcome`` (what a handler's return or exception does to its job), ``handlers``
(resolving ``klass``, retry policies), ``leases`` (heartbeats and abort notices),
``completions`` (batched completes), ``signals`` (SIGTERM/SIGINT), ``supervisor`` (several
worker processes), ``tracing`` (the otel extra's span around each handler run).
"""

from queueengine.worker.handlers import JobAborted, constant, exponential, linear, retry
from queueengine.worker.loop import Worker
from queueengine.worker.runner import checkpoint, current_job

__all__ = ["JobAborted", "Worker", "checkpoint", "constant", "current_job", "exponential", "linear", "retry"]
