"""What the publisher needs from the outside world, as protocols (implemented in the worker).

Each port is *durable*: it returns once its effect is done, retrying through outages itself
(the worker's adapters wrap the Redis and Kafka clients with ``pipeline.worker.retry``), so
the publishing logic never decides an I/O policy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

from pipeline.features.state import UserState
from pipeline.lists.build import BuiltList, Trigger

Record = tuple[bytes | None, bytes | None]
"""``(key, value)``; a ``None`` value is a tombstone (compaction deletes the key)."""


class RecordSender(Protocol):
    """Sends records to a topic and returns once the broker acknowledged all of them."""

    async def send(self, topic: str, records: Sequence[Record]) -> None:
        """Send ``(key, value)`` records to ``topic`` and wait for every acknowledgement."""


class ListStore(Protocol):
    """Where lists are stored, with the owed-refresh record they settle."""

    async def write(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Store the lists, settle the refreshes they owed, count exposures; which were stored.

        A list is not stored when its user is gone (forgotten or expired meanwhile).
        """

    async def overdue(self, before_ms: int, limit: int) -> list[tuple[str, Trigger]]:
        """Owed refreshes due before ``before_ms`` (oldest first)."""

    async def rescue(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Store each list only if its refresh is still owed; which ones were stored."""


class HolderIndex(Protocol):
    """Which stored lists hold an item, and those lists (``pipeline.stores.availability``)."""

    async def holders(self, item_ids: Iterable[str], partitions: Iterable[int]) -> set[str]:
        """Users of ``partitions`` whose stored lists (may) hold one of ``item_ids``."""

    async def withdraw(
        self, user_ids: Sequence[str], item_ids: Sequence[str], now_ms: int
    ) -> dict[str, bytes]:
        """Take the items out of the users' stored lists; the new documents that changed."""


class UserSource(Protocol):
    """User states to build lists from."""

    async def owned(self, user_ids: Collection[str]) -> Mapping[str, UserState]:
        """States of users this worker owns (its cache, loaded when missing)."""

    async def stored(self, user_ids: Sequence[str]) -> Mapping[str, UserState]:
        """States as stored, bypassing any cache (for users another worker owned)."""


class PublishSensor(Protocol):
    """Hooks for metrics (``pipeline.worker.metrics.WorkerMetrics`` implements them)."""

    def on_lists(self, kind: str, count: int) -> None:
        """``count`` lists of a refresh kind (event, deferred, ...) were published."""

    def on_list_built(self, seconds: float) -> None:
        """One list took ``seconds`` to build (the CPU a refresh costs, sent or not)."""

    def on_event_to_list(self, seconds: float) -> None:
        """A list reflecting an event was published ``seconds`` after a worker received it."""

    def on_event_time_lag(self, seconds: float) -> None:
        """A list reflecting an event was published ``seconds`` after the event's ``ts``."""
