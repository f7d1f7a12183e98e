"""Segment membership in Redis: the ``recloop:segment:<dimension>:<value>`` sets.

The values come from ``pipeline.features.segments`` (pure); this moves users between sets
when a value changes, counts members, and sweeps users who went quiet into ``dormant``.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.features.segments import DIMENSIONS, changes
from pipeline.stores.keys import RedisKeys


def queue_membership(
    pipe: Any, keys: RedisKeys, user_id: str, before: dict[str, str], after: dict[str, str]
) -> None:
    """Move the user between segment sets (nothing when nothing changed)."""
    left, joined = changes(before, after)
    for dim, value in left:
        pipe.srem(keys.segment(dim, value), user_id)
    for dim, value in joined:
        pipe.sadd(keys.segment(dim, value), user_id)


async def segment_sizes(client: aioredis.Redis, keys: RedisKeys) -> dict[str, dict[str, int]]:
    """Members per segment value, by dimension (for the CLI and the API)."""
    found: list[bytes] = [
        k async for k in client.scan_iter(match=keys.segment("*", "*"), count=500)
    ]
    out: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    if not found:
        return out
    async with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.scard(key)
        sizes = await pipe.execute()
    prefix = keys.segment("", "").rstrip(":")
    for key, size in zip(found, sizes, strict=True):
        dim, _, value = key.decode()[len(prefix) :].lstrip(":").partition(":")
        if size:
            out.setdefault(dim, {})[value] = int(size)
    return out


async def sweep_dormant(
    client: aioredis.Redis,
    keys: RedisKeys,
    *,
    now_ms: int,
    dormant_after_ms: int,
    ttl_ms: int,
    limit: int = 1_000,
) -> int:
    """Move users without events for ``dormant_after_ms`` to ``lifecycle:dormant``.

    A dormant user leaves every other segment (sizes describe the live audience) and is
    forgotten by the segment sets once their state has expired (``ttl_ms``). Safe to run
    from several workers: a user who returns rejoins their segments on their next write.
    """
    cutoff = now_ms - dormant_after_ms
    found: Any = await client.zrangebyscore(keys.active_users, "-inf", cutoff, start=0, num=limit)
    users = [u.decode() for u in found]
    if users:
        names = [f"segment_{d}" for d in DIMENSIONS]
        async with client.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.hmget(keys.features(user_id), names)
            rows = await pipe.execute()
        async with client.pipeline(transaction=False) as pipe:
            for user_id, row in zip(users, rows, strict=True):
                for dim, raw in zip(DIMENSIONS, row, strict=True):
                    if raw is not None:
                        pipe.srem(keys.segment(dim, raw.decode()), user_id)
                pipe.sadd(keys.segment("lifecycle", "dormant"), user_id)
                pipe.eval(_SET_IF_EXISTS, 1, keys.features(user_id), "segment_lifecycle", "dormant")
                pipe.zrem(keys.active_users, user_id)
                pipe.zadd(keys.dormant_users, {user_id: now_ms})
            await pipe.execute()
    expired = await client.zrangebyscore(
        keys.dormant_users, "-inf", now_ms - ttl_ms, start=0, num=limit
    )
    if expired:
        async with client.pipeline(transaction=False) as pipe:
            pipe.srem(keys.segment("lifecycle", "dormant"), *expired)
            pipe.zrem(keys.dormant_users, *expired)
            await pipe.execute()
    return len(users)


# HSET on an expired hash would recreate it without a TTL (unbounded state): only if it exists
_SET_IF_EXISTS = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0"
)
