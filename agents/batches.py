"""The event batches an agent takes: Faust's ``noack_take``, gathered under a backlog.

Shared by the worker's events agent and the benchmark's ceiling app, so the two take
their batches the same way and the worker/ceiling ratio measures only what a batch costs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.worker.gather import gathered

log = logging.getLogger(__name__)


def events_behind(app: faust.App, events: Sequence[Any]) -> int:
    """How far the consumer is behind the partitions of a batch (its local view).

    The highwater marks come with every fetch, so this costs no round trip; it drives
    gathering and coalescing under overload. The exported lag gauges come from the
    broker's view on a timer instead.
    """
    last: dict[Any, int] = {}
    for e in events:
        last[e.message.tp] = e.message.offset
    total = 0
    for tp, offset in last.items():
        try:
            total += max(0, app.consumer.highwater(tp) - offset - 1)
        except Exception:  # advisory: never fail a batch over it
            log.debug("no highwater for partition", exc_info=True)
    return total


def event_batches(
    app: faust.App, stream: Any, settings: Settings
) -> AsyncIterator[tuple[list[Any], int]]:
    """Unacknowledged event batches of ``stream``, each with the consumer's backlog after it.

    ``noack_take`` of ``RECLOOP_BATCH_SIZE`` within ``RECLOOP_BATCH_WITHIN_SECONDS``, joined
    while a backlog waits for up to ``RECLOOP_BATCH_GATHER_SECONDS``
    (``pipeline.worker.gather``).
    """
    takes = stream.noack_take(settings.batch_size, within=settings.batch_within_seconds)
    return gathered(
        takes,
        lambda events: events_behind(app, events),
        size=settings.batch_size,
        hold=settings.batch_gather_seconds,
    )
