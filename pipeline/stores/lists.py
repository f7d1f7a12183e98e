"""Stored lists: the ``recs`` keys, settling owed refreshes, exposure counters, rescues.

The Redis side of ``pipeline.publish`` (``ListStore``): writing a list settles the owed
refresh it reflects and counts its exposure in the user's experiment arm, in one pipelined
round trip per batch of lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from pipeline.lists.build import BuiltList, Trigger
from pipeline.stores.keys import RedisKeys
from pipeline.stores.owed import OwedRefreshes


class RedisListStore:
    """Writes and rescues users' lists (one instance per worker)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, *, ttl_seconds: int) -> None:
        self.client = client
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.owed = OwedRefreshes(client, keys)

    async def write(self, lists: Sequence[BuiltList]) -> None:
        """Store each list, settle the refresh it owed, count experiment exposures."""
        async with self.client.pipeline(transaction=False) as pipe:
            for b in lists:
                pipe.set(self.keys.recs(b.user_id), b.doc, ex=self.ttl_seconds)
                if b.trigger.event_id is not None:
                    self.owed.queue_settle(pipe, b.user_id, b.trigger)
            for b in lists:
                if b.exposure is not None:
                    _, exp_name, arm_name = b.exposure
                    pipe.hincrby(self.keys.experiment(exp_name, arm_name), "exposures", 1)
                    pipe.pfadd(self.keys.experiment_users(exp_name, arm_name), b.user_id)
            await pipe.execute()

    async def overdue(self, before_ms: int, limit: int) -> list[tuple[str, Trigger]]:
        """Owed refreshes due before ``before_ms`` (oldest first)."""
        return await self.owed.overdue(before_ms, limit)

    async def rescue(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Write each list only if its refresh is still owed; which ones were written."""
        return await self.owed.rescue(
            [(b.user_id, b.trigger, b.doc) for b in lists], self.ttl_seconds
        )
