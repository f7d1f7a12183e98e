"""Forgetting users in Redis: every per-user key, every index entry, and a marker.

``forget_users`` deletes every key of the user (README "Redis keys": features, history,
excluded, events, recs, controls, meta) and removes them from every per-partition index of
their partition: active and dormant users, every segment set the partition has, the owed-
refresh index. What is left is the *forget marker*: the forget time under a keyed hash of the
user id (``RedisKeys.forget_token``) in ``recloop:p:{P}:forgotten``, kept for
``forget_marker_seconds``. The worker loads it with the user, and drops the user's events
and controls stamped at or before it: a forget is final for everything sent before it,
whichever topic lags (README "Privacy").

Nothing here creates a per-user key, so forgetting a user recloop never saw leaves nothing
but the marker. Every command is idempotent: a forget redelivered after a crash does the
same again.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, send
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.owed import members_of
from pipeline.stores.segments import segment_names


async def forget_users(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    users: Sequence[tuple[str, int]],
    *,
    marker_ms: int,
    now_ms: int,
) -> list[bool]:
    """Forget each ``(user_id, forget time ms)``; whether anything was stored about each."""
    if not users:
        return []
    by_partition = {partitions.of(u) for u, _ in users}
    segments = {p: await segment_names(client, keys, p) for p in by_partition}
    cmds = Commands()
    deleted: list[int] = []
    for user_id, forget_ts in users:
        p = partitions.of(user_id)
        deleted.append(cmds.command("DEL", *keys.user_keys(user_id)))
        cmds.command("ZREM", keys.active(p), user_id)
        cmds.command("ZREM", keys.dormant(p), user_id)
        for name in segments[p]:
            dim, _, value = name.partition(":")
            cmds.command("SREM", keys.segment(p, dim, value), user_id)
        owed = await members_of(client, keys, p, user_id)
        if owed:
            cmds.command("ZREM", keys.owed(p), *owed)
        marker = keys.forgotten(p)
        cmds.command("ZADD", marker, "GT", forget_ts, keys.forget_token(user_id))
    for p in by_partition:
        marker = keys.forgotten(p)
        cmds.command("ZREMRANGEBYSCORE", marker, "-inf", f"({now_ms - marker_ms}")
        cmds.command("PEXPIRE", marker, marker_ms)
    replies = await send(client, cmds)
    return [int(replies[i]) > 0 for i in deleted]


async def forget_applied(
    client: RedisClient, keys: RedisKeys, partitions: Partitioning, user_id: str, since_ms: int
) -> bool:
    """Whether a forget sent at ``since_ms`` or later was applied and no per-user key is left.

    What ``recloop forget`` waits for: the marker proves the worker applied the forget
    (a user recloop never knew has no keys before that too).
    """
    cmds = Commands()
    cmds.command("ZSCORE", keys.forgotten(partitions.of(user_id)), keys.forget_token(user_id))
    cmds.command("EXISTS", *keys.user_keys(user_id))
    marker, existing = await send(client, cmds)
    return marker is not None and float(marker) >= since_ms and int(existing) == 0
