"""Forgetting users in Redis: every per-user key, every index entry, and a marker.

``forget_users`` first takes the user's part out of their experiment arm's sums (exactly:
their values, squares, products, return flags and lists, read from their ``experiment``
hash; guarded by the forget's offset like every contribution), then deletes every key of
the user (README "Redis keys": features, history, excluded, events, recs, controls, meta,
experiment) and removes them from every per-partition index of their partition: active and
dormant users, every segment set the partition has, the owed-refresh index, the exposed set
of their experiment arm. What is left is the *forget marker*: the forget time under a keyed
hash of the user id (``RedisKeys.forget_token``) in ``recloop:p:{P}:forgotten``, kept for
``forget_marker_seconds``. The worker loads it with the user, and drops the user's events
and controls stamped at or before it: a forget is final for everything sent before it,
whichever topic lags (README "Privacy").

Nothing here creates a per-user key, so forgetting a user recloop never saw leaves nothing
but the marker. Every command is idempotent: a forget redelivered after a crash does the
same again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.lists.experiment_outcomes import arm_from_fields, withdrawal
from pipeline.lists.withdraw import item_ids
from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, send
from pipeline.stores.experiments import Contribution, fields_of, queue_outcomes
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.owed import members_of
from pipeline.stores.segments import segment_names

Arm = tuple[str, str]
"""An experiment arm: (experiment, variant)."""


async def withdraw_from_arms(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    users: Sequence[str],
    sources: Mapping[str, tuple[str, int]],
) -> dict[str, set[Arm]]:
    """Take each user's part out of their experiment arm's sums; the arms they were in.

    The user's values are read from their ``experiment`` hash (before anything is deleted)
    and subtracted, guarded like any contribution by the source offset of the forget
    (``sources``: user -> ("<topic>:<partition>", offset) of the forget control), so a
    forget redelivered after a crash subtracts nothing twice. A user without a source
    (nothing to guard with) keeps their part, as does one whose keys had expired.
    """
    cmds = Commands()
    for user_id in users:
        cmds.command("HGETALL", keys.experiment_user(user_id))
    replies = await send(client, cmds) if users else []
    arms: dict[str, set[Arm]] = {}
    parts: list[Contribution] = []
    for user_id, raw in zip(users, replies, strict=True):
        arm, lists = arm_from_fields(fields_of(raw))
        if arm is None:
            continue
        arms[user_id] = {(arm.experiment, arm.variant)}
        source = sources.get(user_id)
        counts = withdrawal(arm, lists)
        if source is not None and counts:
            p = partitions.of(user_id)
            parts.append(Contribution(p, source[0], source[1], arm.experiment, arm.variant, counts))
    if parts:
        subtract = Commands()
        queue_outcomes(subtract, keys, parts)
        await send(client, subtract)
    return arms


async def forget_users(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    users: Sequence[tuple[str, int]],
    *,
    marker_ms: int,
    now_ms: int,
    sources: Mapping[str, tuple[str, int]] | None = None,
    assigned: Mapping[str, Arm] | None = None,
) -> list[bool]:
    """Forget each ``(user_id, forget time ms)``; whether anything was stored about each.

    ``sources`` are the forgets' offsets (see ``withdraw_from_arms``); ``assigned`` the arm
    each user is assigned to now, whose exposed set they leave too (their keys may have
    expired, taking their stored arm with them).
    """
    if not users:
        return []
    arms = await withdraw_from_arms(client, keys, partitions, [u for u, _ in users], sources or {})
    for user_id, arm in (assigned or {}).items():
        arms.setdefault(user_id, set()).add(arm)
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
        for name, variant in sorted(arms.get(user_id, ())):
            cmds.command("ZREM", keys.experiment_exposed(p, name, variant), user_id)
        for item_id in await held_items(client, keys, user_id):
            cmds.command("ZREM", keys.holders(p, item_id), user_id)
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


async def held_items(client: RedisClient, keys: RedisKeys, user_id: str) -> list[str]:
    """The items of the user's stored list: the holders entries their forget removes.

    Every list write takes the user out of the holders of the items its list dropped
    (``write_list.lua``), so the current list names every entry the user has.
    """
    doc: Any = await client.get(keys.recs(user_id))
    return item_ids(bytes(doc)) if doc else []
