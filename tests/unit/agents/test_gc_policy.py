"""The worker's collector policy: thresholds, freezing and pauses as a metric."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.worker.gc_policy import apply_gc_policy, freeze_survivors, watch_gc
from pipeline.worker.metrics import WorkerMetrics


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """Leave the test process's collector as it was (thresholds, nothing frozen)."""
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def test_threshold_is_set_and_zero_keeps_the_interpreters(tmp_path: Path) -> None:
    gc.set_threshold(700, 10, 10)
    apply_gc_policy(_settings(tmp_path, gc_gen0_threshold=0))
    assert gc.get_threshold() == (700, 10, 10)
    apply_gc_policy(_settings(tmp_path))
    assert gc.get_threshold() == (50_000, 10, 10)  # the default; older generations untouched


def test_freeze_takes_the_survivors_out_of_later_passes(tmp_path: Path) -> None:
    assert freeze_survivors(_settings(tmp_path, gc_freeze=False)) == 0
    assert gc.get_freeze_count() == 0
    frozen = freeze_survivors(_settings(tmp_path))
    assert frozen > 1_000  # at least the imported modules' objects
    assert gc.get_freeze_count() > 1_000
    survivor: list[object] = []
    survivor.append(survivor)  # a cycle made after the freeze is still collected
    del survivor
    assert gc.collect() >= 1


def test_every_pause_is_observed_by_generation_until_unwatched() -> None:
    metrics = WorkerMetrics()
    unwatch = watch_gc(metrics)
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        unwatch()
    gc.collect(2)  # not observed any more
    count = metrics.registry.get_sample_value
    assert count("recloop_gc_pause_seconds_count", {"generation": "0"}) == 1
    assert count("recloop_gc_pause_seconds_count", {"generation": "2"}) == 2
    assert count("recloop_gc_pause_seconds_sum", {"generation": "2"}) > 0
    unwatch()  # twice is harmless
