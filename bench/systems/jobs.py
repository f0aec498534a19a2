"""The benchmark's jobs, shared by the adapters that take a dotted path (RQ, queueengine).

``noop`` is the drain job: it does nothing but tell the probe it ran. ``echo`` is the round-trip
job: it returns its argument, so every system stores and delivers a (tiny) result.
"""

from __future__ import annotations

from typing import Any

from systems.common import hit


def noop(i: int = 0) -> None:
    hit()


def echo(i: int = 0) -> int:
    return i


# queueengine handlers take the job (DESIGN §3: "a plain function taking the job").
def qe_noop(job: Any) -> None:
    hit()


def qe_echo(job: Any) -> Any:
    return job.data.get("i")
