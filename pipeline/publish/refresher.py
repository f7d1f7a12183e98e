"""When a user's list is rebuilt: at once, coalesced, in the background, at handover, rescued.

``Refresher`` owns the worker's ``RefreshScheduler`` (the pure coalescing rules) and drives
the ``ListPublisher``:

* after a batch: users whose last list is older than the coalescing interval refresh at once,
  the others get one deferred refresh carrying their latest event (``on_changes``);
* ``flush_due`` (a 50 ms timer) runs deferred refreshes whose interval has passed;
* ``refresh_stale`` refreshes active users whose list is old, so lists follow trends;
* ``hand_over`` runs every deferred refresh before partitions move or the worker stops;
* ``rescue_owed`` rebuilds, from Redis, lists still owed long after they were due (their
  worker died between committing the events and writing the list).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence

from pipeline.clock import Clock
from pipeline.features.state import UserState
from pipeline.lists.build import BuiltList, Trigger
from pipeline.publish.coalesce import RefreshScheduler
from pipeline.publish.ports import UserSource
from pipeline.publish.publisher import ListPublisher

log = logging.getLogger(__name__)

Due = list[tuple[str, Trigger]]
Owed = dict[str, tuple[Trigger, int]]


class Refresher:
    """Decides when lists are published (one instance per worker)."""

    def __init__(
        self,
        publisher: ListPublisher,
        users: UserSource,
        *,
        clock: Clock,
        interval_ms: int,
        stale_ms: int,
        active_ms: int,
        rescue_after_ms: int,
        max_interval_ms: int = 60_000,
    ) -> None:
        self.publisher = publisher
        self.users = users
        self.clock = clock
        self.scheduler = RefreshScheduler(interval_ms)
        self.interval_ms = interval_ms
        self.stale_ms = stale_ms
        self.active_ms = active_ms
        self.rescue_after_ms = rescue_after_ms
        self.max_interval_ms = max_interval_ms

    def on_changes(
        self, touched: Mapping[str, Trigger], now_ms: int, *, schedule: bool = True
    ) -> tuple[Due, Owed]:
        """Users to refresh now, and every refresh ``touched`` owes (due within the interval).

        Decided before the batch is written, because the users' writes record the owed
        refreshes. ``schedule=False`` only computes what is owed (events the scheduler has
        heard of already, re-applied after a write conflict).
        """
        deadline = now_ms + self.scheduler.interval_ms
        if not schedule:
            return [], {u: (t, deadline) for u, t in touched.items()}
        due = [(u, t) for u, t in touched.items() if self.scheduler.on_event(u, t, now_ms)]
        # counted as refreshed from now: a batch prepared while this one's lists are still on
        # their way coalesces its users' events into one deferred refresh
        for user_id, _ in due:
            self.scheduler.mark_refreshed(user_id, now_ms)
        return due, {u: (t, deadline) for u, t in touched.items()}

    def build(self, users: Sequence[tuple[UserState, Trigger]]) -> list[BuiltList]:
        """The lists of ``users`` as of now (built in a batch's CPU stage)."""
        return self.publisher.build(users)

    async def deliver(self, built: Sequence[BuiltList], *, kind: str) -> None:
        """Store and send lists built earlier; they count as refreshes when published."""
        if not built:
            return
        published = await self.publisher.deliver(built, kind)
        for b in built:
            self.scheduler.mark_refreshed(b.user_id, published)

    async def refresh(self, due: Due, *, kind: str) -> None:
        """Publish the lists of ``due`` users (states from this worker's cache)."""
        if not due:
            return
        states = await self.users.owned({u for u, _ in due})
        chosen = [(states[u], t) for u, t in due if u in states]
        published = await self.publisher.publish(chosen, kind)
        for state, _ in chosen:
            self.scheduler.mark_refreshed(state.user_id, published)

    def hold(self, user_ids: Iterable[str]) -> None:
        """A batch learned these users' events; its write is not durable yet (see ``release``).

        Their deferred refreshes wait until then, so that the list they publish settles the
        owed record that write carries (``RefreshScheduler.hold``).
        """
        self.scheduler.hold(user_ids)

    def release(self, user_ids: Iterable[str]) -> None:
        """The batch that ``hold`` these users is written (or was abandoned)."""
        self.scheduler.release(user_ids)

    def set_backlog(self, seconds: float) -> None:
        """How far behind the worker is: stretches coalescing under overload."""
        self.scheduler.set_backlog(seconds, max_interval_ms=self.max_interval_ms)

    async def flush_due(self, limit: int = 1_000) -> None:
        """Run deferred (coalesced) refreshes whose interval has passed (at most ``limit``)."""
        await self.refresh(self.scheduler.due(self.clock.now_ms(), limit), kind="deferred")

    async def refresh_stale(self, limit: int = 500) -> None:
        """Refresh active users whose list is older than the stale threshold."""
        users = self.scheduler.stale(
            self.clock.now_ms(), stale_ms=self.stale_ms, active_ms=self.active_ms, limit=limit
        )
        await self.refresh([(u, Trigger(None, None)) for u in users], kind="background")

    async def hand_over(self, timeout: float = 5.0) -> None:
        """Run every deferred refresh now, before partitions are revoked or the worker stops.

        Offsets of the events behind those refreshes are already committed, so a refresh left
        pending here would be lost: the next owner never sees those events, and the user's
        list would miss their last event until they act again. Bounded by ``timeout`` so a
        Redis or Kafka outage cannot hold up a rebalance past the session timeout.
        """
        pending = self.scheduler.take_pending()
        if not pending:
            return
        try:
            await asyncio.wait_for(self.refresh(pending, kind="deferred"), timeout)
        except TimeoutError:
            log.warning("handover refresh timed out users=%d", len(pending))

    async def rescue_owed(self, limit: int = 200) -> int:
        """Refresh, from Redis, lists still owed long after they were due; how many.

        Their worker died between committing the events and writing the list. Any worker
        may rescue any user: the write is conditional on the same refresh still being owed,
        so a list the owner wrote meanwhile is never overwritten. Rescued lists are not
        counted as experiment exposures.
        """
        store = self.publisher.store
        owed = await store.overdue(self.clock.now_ms() - self.rescue_after_ms, limit)
        if not owed:
            return 0
        states = await self.users.stored([u for u, _ in owed])
        async with self.publisher.lock:
            built = self.publisher.build([(states[u], t) for u, t in owed if u in states])
            written = await store.rescue(built)
            rescued = [b for b, ok in zip(built, written, strict=True) if ok]
            await self.publisher.send(rescued)
        if rescued:
            self.publisher.observe(rescued, "rescued", self.clock.now_ms())
            log.warning("rescued owed list refreshes count=%d", len(rescued))
        return len(rescued)

    def schedule(self, user_ids: Iterable[str]) -> None:
        """Queue a background refresh of users (unless one is pending already).

        It runs with the deferred refreshes (``flush_due``), once the user's coalescing
        interval has passed.
        """
        pending = self.scheduler.pending
        for user_id in user_ids:
            pending.setdefault(user_id, Trigger(None, None))

    def forget(self, user_id: str) -> None:
        """Stop tracking a user (forgotten)."""
        self.scheduler.forget(user_id)

    def clear(self) -> None:
        """Partitions moved: drop every pending refresh and timestamp."""
        self.scheduler.clear()
