"""The worker's garbage-collector policy, and its pauses as a metric.

CPython frees most objects by reference counting; its cyclic collector runs besides, every
``threshold0`` net allocations of container objects (700 by default in CPython 3.11), and
every so often a full pass walks *every* tracked object: the imported libraries, the loaded
model, the cached users' histories. A worker allocates containers at a high rate (Faust's
per-message events and futures, each batch's users and records), so at the default the
collector ran ~2,300 passes in a 60 s drain of the throughput benchmark, ~24 of them full
passes of up to 0.2-0.3 s each with the event loop held: 3.3 s of pauses, ~5 % of the
worker's CPU (README, Results: "the garbage collector").

A larger first threshold makes young passes rarer (each one bigger, tens of milliseconds)
and full passes much rarer; freezing what is alive once the worker is ready
(:func:`gc.freeze`) takes the libraries and the loaded model out of every later pass. Frozen
objects are still freed by reference counting; only a reference cycle among them would stay
until the process ends, and what is alive at start (modules, the app, the models) lives as
long as the process anyway. Both are settings (``RECLOOP_GC_*``); the ceiling app of
``bench/throughput.py`` runs on the same policy.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from pipeline.config import Settings
from pipeline.worker.metrics import WorkerMetrics


def apply_gc_policy(settings: Settings) -> None:
    """Set the collector's first threshold (0: keep the interpreter's)."""
    if settings.gc_gen0_threshold > 0:
        _, second, third = gc.get_threshold()
        gc.set_threshold(settings.gc_gen0_threshold, second, third)


def freeze_survivors(settings: Settings) -> int:
    """Collect once, then freeze every object still alive; returns how many were frozen.

    Called once the process holds what it keeps for its lifetime (a worker: once ready).
    """
    if not settings.gc_freeze:
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def watch_gc(metrics: WorkerMetrics) -> Callable[[], None]:
    """Observe every collection's pause in ``metrics.gc_pause``; returns the un-watcher.

    A pass runs with the GIL held: its duration is time the event loop could not run.
    """
    started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        generation = int(info["generation"])
        if phase == "start":
            started[generation] = time.perf_counter()
            return
        began = started.pop(generation, None)
        if began is not None:
            metrics.gc_pause.labels(str(generation)).observe(time.perf_counter() - began)

    gc.callbacks.append(on_gc)

    def unwatch() -> None:
        if on_gc in gc.callbacks:
            gc.callbacks.remove(on_gc)

    return unwatch
