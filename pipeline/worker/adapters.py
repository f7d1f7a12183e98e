"""Durable ports: the worker's Redis and Kafka adapters wrapped with ``retry_forever``.

The publish package calls its ports and expects them to succeed; here is where an outage
becomes "wait, count the error, retry" instead of a lost list (README "Guarantees").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pipeline.features.state import UserState
from pipeline.lists.build import BuiltList, Trigger
from pipeline.publish.ports import ListStore, Record, RecordSender
from pipeline.stores.users import UserStore
from pipeline.worker.cache import UserCache
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever


class DurableSender:
    """A ``RecordSender`` that retries until the broker acknowledged every record."""

    def __init__(self, sender: RecordSender, metrics: WorkerMetrics) -> None:
        self.sender = sender
        self.metrics = metrics

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        """Send and wait for every acknowledgement, retrying any failure."""
        if not records:
            return
        await retry_forever(
            lambda: self.sender.send(topic, records),
            what="kafka send",
            retryable=(Exception,),
            on_error=lambda _: self.metrics.kafka_errors.inc(),
        )


class DurableListStore:
    """A ``ListStore`` that retries Redis errors."""

    def __init__(self, store: ListStore, metrics: WorkerMetrics) -> None:
        self.store = store
        self.metrics = metrics

    def _count(self, _: BaseException) -> None:
        self.metrics.redis_errors.inc()

    async def write(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Store the lists (retried); which were stored."""
        return await retry_forever(
            lambda: self.store.write(lists), what="redis list write", on_error=self._count
        )

    async def overdue(self, before_ms: int, limit: int) -> list[tuple[str, Trigger]]:
        """Owed refreshes due before ``before_ms`` (retried)."""
        return await retry_forever(
            lambda: self.store.overdue(before_ms, limit),
            what="redis owed read",
            on_error=self._count,
        )

    async def rescue(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Conditional list writes (retried)."""
        return await retry_forever(
            lambda: self.store.rescue(lists), what="redis list rescue", on_error=self._count
        )


class CachedUsers:
    """The ``UserSource`` of a worker: its cache for owned users, Redis for the rest."""

    def __init__(self, cache: UserCache, store: UserStore, metrics: WorkerMetrics) -> None:
        self.cache = cache
        self.store = store
        self.metrics = metrics

    async def owned(self, user_ids: Collection[str]) -> Mapping[str, UserState]:
        """States from the cache, loading the missing ones."""
        return await self.cache.ensure(user_ids)

    async def stored(self, user_ids: Sequence[str]) -> Mapping[str, UserState]:
        """States as stored in Redis (retried)."""
        return await retry_forever(
            lambda: self.store.load_many(user_ids),
            what="redis user load",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
