"""What the click shells share: running one async read against Redis, then closing it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pipeline.config import Settings
from pipeline.kafka.partitioner import key_partitioner
from pipeline.stores.client import RedisClient, open_redis
from pipeline.stores.keys import Partitioning

T = TypeVar("T")


def with_redis(settings: Settings, read: Callable[[RedisClient], Awaitable[T]]) -> T:
    """Run ``read`` with a Redis client from ``settings`` and close the client afterwards.

    The CLI reads through the same async read models (``pipeline.stores``) as the HTTP API,
    on a single Redis or a cluster (``RECLOOP_REDIS_CLUSTER``).
    """

    async def run() -> T:
        client = await open_redis(settings)
        try:
            return await read(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def partitioning(settings: Settings) -> Partitioning:
    """Users' partitions (Kafka's default partitioner over ``topic_partitions``)."""
    return Partitioning(settings.topic_partitions, key_partitioner(settings.topic_partitions))
