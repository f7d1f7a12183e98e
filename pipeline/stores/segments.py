"""Segment membership in Redis: one set per segment value and partition.

The values come from ``pipeline.features.segments`` (pure); this moves users between the
sets of their partition (``recloop:p:{P}:segment:<dimension>:<value>``) when a value
changes, counts members (the sum over partitions), and sweeps users who went quiet into
``dormant``. Each partition also lists the segments it has sets for
(``recloop:p:{P}:segments``), so sizes and forget never scan the keyspace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.features.segments import DIMENSIONS, changes
from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import Partitioning, RedisKeys

MARK_DORMANT = Script.file("mark_dormant.lua")


def queue_membership(
    cmds: Commands,
    keys: RedisKeys,
    partition: int,
    user_id: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
) -> None:
    """Move the user between the partition's segment sets (nothing when nothing changed).

    Idempotent: sending it again leaves the same memberships.
    """
    left, joined = changes(dict(before), dict(after))
    for dim, value in left:
        cmds.merge("SREM", keys.segment(partition, dim, value), user_id)
        if (dim, value) == ("lifecycle", "dormant"):
            cmds.merge("ZREM", keys.dormant(partition), user_id)
    queue_join(cmds, keys, partition, user_id, joined)


def queue_join(
    cmds: Commands, keys: RedisKeys, partition: int, user_id: str, joined: list[tuple[str, str]]
) -> None:
    """Add the user to segment sets (and the sets to the partition's list of segments)."""
    for dim, value in joined:
        cmds.merge("SADD", keys.segment(partition, dim, value), user_id)
    if joined:
        cmds.merge("SADD", keys.segments(partition), *(f"{d}:{v}" for d, v in joined))


async def segment_names(client: RedisClient, keys: RedisKeys, partition: int) -> list[str]:
    """The ``<dimension>:<value>`` segments partition ``partition`` has sets for."""
    found: Any = await client.smembers(keys.segments(partition))
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in found)


async def segment_sizes(
    client: RedisClient, keys: RedisKeys, partitions: Partitioning
) -> dict[str, dict[str, int]]:
    """Members per segment value, by dimension, over all partitions (CLI and API)."""
    cmds = Commands()
    for p in partitions.all():
        cmds.command("SMEMBERS", keys.segments(p))
    names = await send(client, cmds)
    sizes = Commands()
    where: list[tuple[str, str]] = []
    for p, found in zip(partitions.all(), names, strict=True):
        for raw in sorted(found):
            dim, _, value = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
            sizes.command("SCARD", keys.segment(p, dim, value))
            where.append((dim, value))
    out: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    if not where:
        return out
    for (dim, value), size in zip(where, await send(client, sizes), strict=True):
        if size:
            per_dim = out.setdefault(dim, {})
            per_dim[value] = per_dim.get(value, 0) + int(size)
    return out


async def sweep_dormant(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    *,
    now_ms: int,
    dormant_after_ms: int,
    ttl_ms: int,
    limit: int = 1_000,
) -> int:
    """Move users without events for ``dormant_after_ms`` to ``lifecycle:dormant``.

    A dormant user leaves every other segment (sizes describe the live audience) and is
    forgotten by the segment sets once their state has expired (``ttl_ms``). Safe to run
    from several workers: the user's own script decides (``mark_dormant.lua``: only if not
    written since the cutoff), and it moves the user's version on, so the worker owning the
    user reloads them and a returning user rejoins their segments on their next write.
    """
    cutoff = now_ms - dormant_after_ms
    swept = 0
    for p in partitions.all():
        found: Any = await client.zrangebyscore(keys.active(p), "-inf", cutoff, start=0, num=limit)
        users = [u.decode() for u in found]
        if users:
            marks = Commands()
            for user_id in users:
                marks.script(
                    MARK_DORMANT,
                    [keys.features(user_id), keys.meta(user_id)],
                    [cutoff, *DIMENSIONS],
                )
            replies = await send(client, marks)
            moves = Commands()
            for user_id, reply in zip(users, replies, strict=True):
                status = int(reply[0])
                if status == 1:
                    swept += 1
                    for i in range(1, len(reply), 2):
                        dim, value = reply[i].decode(), reply[i + 1].decode()
                        moves.command("SREM", keys.segment(p, dim, value), user_id)
                    queue_join(moves, keys, p, user_id, [("lifecycle", "dormant")])
                    moves.command("ZADD", keys.dormant(p), now_ms, user_id)
                if status != 0:  # dormant now, or nothing left of them
                    moves.command("ZREM", keys.active(p), user_id)
            if len(moves):
                await send(client, moves)
        expired: Any = await client.zrangebyscore(
            keys.dormant(p), "-inf", now_ms - ttl_ms, start=0, num=limit
        )
        if expired:
            gone = Commands()
            gone.command("SREM", keys.segment(p, "lifecycle", "dormant"), *expired)
            gone.command("ZREM", keys.dormant(p), *expired)
            await send(client, gone)
    return swept
