"""Helpers for tests of code that uses the engine: a clock you drive by hand."""

from __future__ import annotations


class ManualClock:
    """A clock for ``Client(clock=...)``: time stands still until you move it.

    The engine normally reads time from the Redis server (``TIME``). A client given a clock
    passes ``clock()`` as *now* to every command instead, so tests are deterministic.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        """Return the current time in Unix seconds."""
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward (or back, with a negative number); return the new time."""
        self.now += seconds
        return self.now

    def set(self, when: float) -> float:
        """Jump to an absolute time; return it."""
        self.now = float(when)
        return self.now
