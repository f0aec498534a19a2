"""The compliance harness of Job::Async (``Job::Async::Test::Compliance``), for any backend.

Start a worker whose handler adds ``x`` and ``y`` (:func:`add`), then call :func:`run` with a
client: 8 + 2 first, then 506 additions (6 fixed cases and 500 random ones) at client
concurrency 1, 2, 4, 8 and 50, so 2,531 jobs, every answer checked.
"""

from __future__ import annotations

import random
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from queueengine.dispatch.base import Client
from queueengine.dispatch.worker import Job

LEVELS = (1, 2, 4, 8, 50)


def add(job: Job) -> None:
    """The harness's handler: ``job.done(x + y)``."""
    job.done(job.data["x"] + job.data["y"])


def cases(seed: int = 2531) -> list[tuple[int, int]]:
    """The 506 addition cases run at each concurrency level."""
    rng = random.Random(seed)
    fixed = [(0, 0), (1, 1), (-5, 5), (1_000_000, 1), (2**40, 2**40), (-3, -4)]
    return fixed + [(rng.randint(-(10**6), 10**6), rng.randint(-(10**6), 10**6)) for _ in range(500)]


def _collect(done: set[Future[Any]], outstanding: dict[Future[Any], int], concurrency: int) -> int:
    for fut in done:
        expected = outstanding.pop(fut)
        got = fut.result()
        if got != expected:
            raise AssertionError(f"expected {expected}, got {got!r} (concurrency {concurrency})")
    return len(done)


def run(client: Client, levels: tuple[int, ...] = LEVELS, answer_timeout: float = 30.0) -> int:
    """Run the harness through ``client``; return the number of jobs answered (2531).

    Raises AssertionError on a wrong, missing or late answer.
    """
    first = client.submit(x=8, y=2).result(answer_timeout)
    if first != 10:
        raise AssertionError(f"8 + 2 came back as {first!r}")
    todo = cases()
    total = 1
    for concurrency in levels:
        outstanding: dict[Future[Any], int] = {}
        answers = 0

        for x, y in todo:
            if len(outstanding) >= concurrency:
                done, _ = wait(outstanding, timeout=answer_timeout, return_when=FIRST_COMPLETED)
                if not done:
                    raise AssertionError(f"no answer within {answer_timeout}s at concurrency {concurrency}")
                answers += _collect(done, outstanding, concurrency)
            outstanding[client.submit(x=x, y=y)] = x + y
        done, late = wait(outstanding, timeout=answer_timeout)
        if late:
            raise AssertionError(f"{len(late)} answers missing at concurrency {concurrency}")
        answers += _collect(done, outstanding, concurrency)
        if answers != len(todo):
            raise AssertionError(f"{answers} answers for {len(todo)} jobs at concurrency {concurrency}")
        total += answers
    return total
