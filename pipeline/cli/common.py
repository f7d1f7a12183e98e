"""What the click shells share: running one async read against Redis, then closing it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis

from pipeline.config import Settings

T = TypeVar("T")


def with_redis(settings: Settings, read: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``read`` with a Redis client from ``settings`` and close the client afterwards.

    The CLI reads through the same async read models (``pipeline.stores``) as the HTTP API.
    """

    async def run() -> T:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await read(client)
        finally:
            await client.aclose()

    return asyncio.run(run())
