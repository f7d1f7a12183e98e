"""Item availability on one worker: apply changes, learn them from the others, sweep lists.

Availability changes arrive three ways, and each ends the same way (catalogue updated,
candidate pools refreshed, lists holding a now unavailable item swept):

* an item message or tombstone this worker consumes (``handle``, from the items agent,
  already exclusive of event batches): applied, stored in Redis and logged for the others;
* a change another worker logged (``sync``, every ``RECLOOP_AVAILABILITY_SYNC_MS``);
* a window edge passing by the clock (``sync`` too: a live channel's ``available_until_ts``).

Each worker sweeps only the partitions of users it owns (``owned``: every partition until
the Faust app says otherwise), since only the owner writes a user's list.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pipeline.clock import Clock
from pipeline.lists.recommend import Recommender
from pipeline.model.availability import Availability, AvailabilitySchedule
from pipeline.model.models import SharedModels
from pipeline.publish.withdraw import Withdrawals
from pipeline.stores.availability import AvailabilityStore
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever

log = logging.getLogger(__name__)

T = TypeVar("T")

Change = tuple[str, Availability]


class ItemAvailability:
    """The worker's side of item availability (one instance per worker)."""

    def __init__(
        self,
        models: SharedModels,
        recommender: Recommender,
        store: AvailabilityStore,
        *,
        clock: Clock,
        metrics: WorkerMetrics,
        partitions: int,
    ) -> None:
        self.models = models
        self.recommender = recommender
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.owned: set[int] = set(range(partitions))
        self.schedule = AvailabilitySchedule(models.params.catalog_max_items)
        self.withdrawals: Withdrawals | None = None  # set by the composition root

    def available(self, item_id: str, now_ms: int) -> bool:
        """Whether an item may be shown at ``now_ms`` (unknown items may)."""
        return self.models.catalog.availability(item_id).at(now_ms)

    async def load(self) -> None:
        """Take every stored window (at start), then read changes from the log."""
        windows = await self._retry(self.store.load)
        self.apply(list(windows.items()), self.clock.now_ms())
        self.recommender.refresh_indexes(self.clock.now_ms())
        log.info("item availability loaded restricted=%d", len(windows))

    def apply(self, changes: Sequence[Change], now_ms: int) -> list[str]:
        """Apply windows to the catalogue; the items not available now (to sweep)."""
        catalog = self.models.catalog
        out = []
        for item_id, window in changes:
            catalog.set_availability(item_id, window, now_ms=now_ms)
            self.schedule.add(item_id, window, now_ms)
            if not window.at(now_ms):
                out.append(item_id)
        return out

    def due(self, now_ms: int) -> tuple[list[str], bool]:
        """Window edges passed by the clock: items now unavailable, and whether any passed."""
        catalog = self.models.catalog
        passed = self.schedule.due(now_ms)
        out = []
        for item_id in passed:
            window = catalog.availability(item_id)
            idx = catalog.get(item_id)
            if idx is not None:  # the pools take the item, or drop it
                catalog.changes.append(idx)
                if window.at(now_ms):  # a scheduled start: gone live
                    catalog.went_live(idx, now_ms)
            self.schedule.add(item_id, window, now_ms)
            if not window.at(now_ms):
                out.append(item_id)
        return out, bool(passed)

    async def handle(self, changes: Sequence[Change]) -> None:
        """Changes this worker consumed: apply, store and log them, then sweep lists."""
        now = self.clock.now_ms()
        # what the others must hear of: a restriction, or the end of one (a catalogue load
        # of always-available items costs no log entry and no Redis write per item)
        restricted = self.models.catalog.restricted
        news = [(i, w) for i, w in changes if w.restricted or i in restricted]
        gone = self.apply(changes, now)
        self.recommender.refresh_indexes(now)
        if news:
            await self._retry(lambda: self.store.publish(news))
        self.metrics.availability_changes.labels("own").inc(len(news))
        await self.sweep(gone)

    async def sync(self) -> list[str]:
        """Changes other workers logged and edges passed; the items to sweep now."""
        changes = await self._retry(self.store.read_new)
        now = self.clock.now_ms()
        gone = self.apply(changes, now)
        timed, passed = self.due(now)
        if changes or passed:
            self.recommender.refresh_indexes(now)
            self.metrics.availability_changes.labels("peer").inc(len(changes))
        return gone + timed

    async def sweep(self, item_ids: Sequence[str]) -> None:
        """Republish the owned lists that hold ``item_ids`` (call exclusive of batches)."""
        if item_ids and self.withdrawals is not None:
            started = self.clock.now_ms()
            await self.withdrawals.sweep(sorted(set(item_ids)))
            self.metrics.withdraw_seconds.observe((self.clock.now_ms() - started) / 1000)

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_forever(
            operation, what="redis availability", on_error=lambda _: self.metrics.redis_errors.inc()
        )
