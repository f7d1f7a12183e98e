"""Event-loop lag: how late a short timer fires, i.e. how long the loop was busy elsewhere.

Everything a worker does shares one asyncio loop: a long synchronous step (a big ranking
pass, a snapshot, JSON of a large document) delays every timer and every I/O completion
behind it. The drift of a 100 ms sleep measures exactly that, and is cheap to take.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from pipeline.worker.metrics import WorkerMetrics

INTERVAL_SECONDS = 0.1
WINDOW_SECONDS = 10.0


async def watch_loop_lag(metrics: WorkerMetrics, *, interval: float = INTERVAL_SECONDS) -> None:
    """Sample the lag forever (cancel to stop): a histogram and the max over 10 s."""
    recent: deque[tuple[float, float]] = deque()
    while True:
        before = time.perf_counter()
        await asyncio.sleep(interval)
        now = time.perf_counter()
        lag = max(0.0, now - before - interval)
        metrics.loop_lag.observe(lag)
        recent.append((now, lag))
        while recent and now - recent[0][0] > WINDOW_SECONDS:
            recent.popleft()
        metrics.loop_lag_max.set(max(lag for _, lag in recent))
