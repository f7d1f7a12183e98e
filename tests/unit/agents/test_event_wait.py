"""``recloop_event_wait_seconds``: an event's wait before the worker took it, per event."""

from __future__ import annotations

import pytest

from pipeline.worker.metrics import WorkerMetrics


def _sample(m: WorkerMetrics, suffix: str, le: str | None = None) -> float:
    labels = {"le": le} if le is not None else {}
    value = m.registry.get_sample_value(f"recloop_event_wait_seconds_{suffix}", labels)
    return value or 0.0


def test_each_taken_event_counts_its_wait_from_the_record_timestamp() -> None:
    m = WorkerMetrics()
    m.on_taken([99.8, 99.0, 97.0], now=100.0)
    assert _sample(m, "count") == 3
    assert _sample(m, "sum") == pytest.approx(0.2 + 1.0 + 3.0)
    assert _sample(m, "bucket", "0.25") == 1
    assert _sample(m, "bucket", "1.0") == 2


def test_a_clock_ahead_counts_zero_and_unstamped_records_are_left_out() -> None:
    m = WorkerMetrics()
    m.on_taken([105.0, None], now=100.0)
    assert _sample(m, "count") == 1
    assert _sample(m, "sum") == 0.0
