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


class ConsumerBacklog:
    """How far the consumer is behind, over every partition it has taken events from.

    Its local view: the highwater marks come with every fetch, so this costs no round
    trip. It drives gathering and coalescing under overload; the exported lag gauges come
    from the broker's view on a timer instead. Counted over every partition taken from,
    not only the last take's: a take often holds a few partitions' events, and their lag
    alone understates a backlog spread over all of them. A partition the consumer no
    longer holds (its highwater refused) is dropped, and every rebalance starts the count
    over: a partition revoked and assigned back in between would otherwise keep the offset
    taken before, while another worker moved it on, and read as a backlog that is not there
    (holding the batches of a quiet stream for nothing) until its next event.
    """

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._taken: dict[Any, int] = {}
        self._rebalances = app.rebalancing_count

    def after(self, events: Sequence[Any]) -> int:
        """The backlog once ``events`` are taken: events behind, summed over partitions."""
        taken = self._taken
        rebalances = self._app.rebalancing_count
        if rebalances != self._rebalances:  # offsets taken before may be stale
            taken.clear()
            self._rebalances = rebalances
        for e in events:
            taken[e.message.tp] = e.message.offset
        total = 0
        for tp, offset in list(taken.items()):
            try:
                highwater = self._app.consumer.highwater(tp)
            except Exception:  # not ours any more (revoked): advisory, never fail a batch
                log.debug("no highwater for partition", exc_info=True)
                del taken[tp]
                continue
            if highwater is not None:  # None: no fetch answered yet
                total += max(0, highwater - offset - 1)
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
        ConsumerBacklog(app).after,
        size=settings.batch_size,
        hold=settings.batch_gather_seconds,
    )
