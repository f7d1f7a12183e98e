"""Published trending lists: ``recloop:trending:{segment}`` sorted sets (rank as score)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from pipeline.stores.keys import RedisKeys


async def write_trending(
    client: aioredis.Redis, keys: RedisKeys, segments: Mapping[str, Sequence[str]]
) -> None:
    """Replace each segment's trending list (best first) atomically."""
    async with client.pipeline(transaction=True) as pipe:
        for segment, items in segments.items():
            key = keys.trending(segment)
            pipe.delete(key)
            if items:
                pipe.zadd(key, {item: len(items) - rank for rank, item in enumerate(items)})
        await pipe.execute()
