"""The wall clock in epoch milliseconds: the unit of every ``ts`` in recloop's contracts."""

from __future__ import annotations

import time


def wall_ms() -> int:
    """Wall clock in epoch milliseconds."""
    return int(time.time() * 1000)
