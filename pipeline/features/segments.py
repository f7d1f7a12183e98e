"""User segments: contextual (locale, device, surface) and behavioural (lifecycle, taste).

=============  ============================================================================
dimension      value
=============  ============================================================================
lifecycle      ``new`` (fewer than ``NEW_USER_EVENTS`` events), ``active``, ``dormant`` (no
               event for ``dormant_after_seconds``; set by a periodic sweep, which also
               takes dormant users out of the other dimensions)
category       the user's dominant category (highest positive affinity), ``none`` without
locale         last ``context.locale`` seen
device         last ``context.device`` seen
surface        last ``context.surface`` seen
=============  ============================================================================

Each user's values are written to the features hash as ``segment_<dimension>``; membership is
kept in Redis sets ``recloop:segment:<dimension>:<value>`` (changed only when a value
changes), so sizes are ``SCARD``s. Trending is kept per locale and device segment and serves
cold-start lists.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from pipeline.features.state import UserState
from pipeline.stores.keys import RedisKeys

NEW_USER_EVENTS = 5
DIMENSIONS = ("lifecycle", "category", "locale", "device", "surface")


def segments_of(state: UserState) -> dict[str, str]:
    """A user's segment values (dimensions without a value are left out).

    >>> segments_of(UserState("u", n_click=1))
    {'lifecycle': 'new', 'category': 'none'}
    """
    top = state.top_categories(1)
    out = {
        "lifecycle": "new" if state.n_events < NEW_USER_EVENTS else "active",
        "category": top[0][0] if top else "none",
    }
    for name in ("locale", "device", "surface"):
        value = getattr(state.context, name)
        if value:
            out[name] = value
    return out


def changes(
    before: dict[str, str], after: dict[str, str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(left, joined)`` memberships as ``(dimension, value)`` pairs.

    >>> changes({"lifecycle": "new"}, {"lifecycle": "active"})
    ([('lifecycle', 'new')], [('lifecycle', 'active')])
    """
    left = [(d, v) for d, v in before.items() if after.get(d) != v]
    joined = [(d, v) for d, v in after.items() if before.get(d) != v]
    return left, joined


def queue_membership(
    pipe: Any, keys: RedisKeys, user_id: str, before: dict[str, str], after: dict[str, str]
) -> None:
    """Move the user between segment sets (nothing when nothing changed)."""
    left, joined = changes(before, after)
    for dim, value in left:
        pipe.srem(keys.segment(dim, value), user_id)
    for dim, value in joined:
        pipe.sadd(keys.segment(dim, value), user_id)


def segment_sizes(client: redis.Redis, keys: RedisKeys) -> dict[str, dict[str, int]]:
    """Members per segment value, by dimension (for the CLI and the API: synchronous)."""
    found: list[bytes] = list(client.scan_iter(match=keys.segment("*", "*"), count=500))
    out: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    if not found:
        return out
    with client.pipeline(transaction=False) as pipe:
        for key in found:
            pipe.scard(key)
        sizes = pipe.execute()
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
