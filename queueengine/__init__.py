"""queueengine: a Redis job queue with Qless semantics and Job::Async delivery modes."""

from __future__ import annotations

__version__ = "0.1.0"

from queueengine.accessors import Config, Jobs, Queues, Throttle, Workers
from queueengine.client import Client
from queueengine.events import Event
from queueengine.exceptions import (
    DuplicateJob,
    InvalidArgument,
    JobFailed,
    JobNotFound,
    LostLease,
    OutOfMemory,
    QueueEngineError,
    QueueFull,
    ScriptError,
    UnsupportedData,
    WaitTimeout,
    WrongState,
)
from queueengine.job import Job
from queueengine.queue import Queue
from queueengine.recurring import RecurringJob
from queueengine.types import JobState

__all__ = [
    "Client",
    "Config",
    "DuplicateJob",
    "Event",
    "InvalidArgument",
    "Job",
    "JobFailed",
    "JobNotFound",
    "JobState",
    "Jobs",
    "LostLease",
    "OutOfMemory",
    "Queue",
    "QueueEngineError",
    "QueueFull",
    "Queues",
    "RecurringJob",
    "ScriptError",
    "Throttle",
    "UnsupportedData",
    "WaitTimeout",
    "Workers",
    "WrongState",
    "__version__",
]
