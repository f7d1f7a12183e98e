"""Time in epoch milliseconds (the unit of every ``ts`` in recloop's contracts), injectable.

Everything that decides by time (coalescing, rescue, attribution windows, freshness) takes
a ``Clock`` instead of reading the wall clock itself, so the worker's batch logic runs in a
test with a ``ManualClock`` that only moves when told to.

>>> clock = ManualClock(1_000)
>>> clock.advance(250)
>>> clock.now_ms()
1250
"""

from __future__ import annotations

import time
from typing import Protocol


def wall_ms() -> int:
    """Wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class Clock(Protocol):
    """A source of the current time in epoch milliseconds."""

    def now_ms(self) -> int:
        """The current time (ms)."""


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        """The current wall-clock time (ms)."""
        return wall_ms()


class ManualClock:
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, start_ms: int = 0) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        """The time it was set to."""
        return self.ms

    def advance(self, ms: int) -> None:
        """Move forward by ``ms``."""
        self.ms += ms

    def set(self, ms: int) -> None:
        """Jump to ``ms``."""
        self.ms = ms
