"""Owed list refreshes: a Redis record that a user's list must still reflect an event.

An event's effects are persisted (and its offset committed) before its user's list is
refreshed; the refresh may also be coalesced for up to ``refresh_interval_ms``. A worker
killed in between (SIGKILL, OOM, power) would lose that refresh, and the next owner of the
partition never sees the event again. So the refresh is recorded as *owed*:

* the record itself lives in the user's own ``meta`` hash (``owed`` = the trigger the list
  must reflect, ``owed_due``), written by the same Lua call as the event's effects, so the
  two cannot be separated;
* writing the list settles it, in one Lua call on the user's keys (``write_list.lua``): the
  record is removed only if it still names the trigger the list reflects;
* each partition keeps an index of owed refreshes by due time (``recloop:p:{P}:owed``,
  member ``[user_id, event_id, ts]``), which any worker scans to rescue refreshes overdue by
  ``refresh_rescue_after_seconds``. One member per (user, trigger), so every index update is
  idempotent and unconditional: settling or rescuing a trigger removes that trigger's member
  only, never a newer one. The rescue writes the list only if the user's record still names
  that trigger, so it never overwrites a list written after it.
"""

from __future__ import annotations

from typing import Any

from pipeline.lists.build import Trigger
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import owed_from_member, owed_member, owed_pattern, score_pairs
from pipeline.stores.commands import Commands, send
from pipeline.stores.keys import Partitioning, RedisKeys


def queue_index(
    cmds: Commands,
    keys: RedisKeys,
    partition: int,
    user_id: str,
    trigger: str,
    due_ms: int,
    *,
    replaces: str | None = None,
) -> None:
    """Index an owed refresh (and drop the member of the one it ``replaces``, if known)."""
    key = keys.owed(partition)
    if replaces is not None and replaces != trigger:
        cmds.merge("ZREM", key, owed_member(user_id, replaces))
    cmds.merge("ZADD", key, due_ms, owed_member(user_id, trigger))


def queue_unindex(
    cmds: Commands, keys: RedisKeys, partition: int, user_id: str, trigger: str
) -> None:
    """Drop one owed refresh's index member (settled, rescued or superseded)."""
    cmds.merge("ZREM", keys.owed(partition), owed_member(user_id, trigger))


async def overdue(
    client: RedisClient, keys: RedisKeys, partitions: Partitioning, before_ms: int, limit: int
) -> list[tuple[str, Trigger]]:
    """Owed refreshes due before ``before_ms`` in every partition, oldest first."""
    cmds = Commands()
    for p in partitions.all():
        cmds.command(
            "ZRANGEBYSCORE", keys.owed(p), "-inf", before_ms, "WITHSCORES", "LIMIT", 0, limit
        )
    found: list[tuple[float, str, Trigger]] = []
    for reply in await send(client, cmds):
        for member, due in score_pairs(reply):
            user_id, trigger = owed_from_member(member)
            found.append((due, user_id, trigger))
    found.sort(key=lambda f: f[0])
    return [(user_id, trigger) for _, user_id, trigger in found[:limit]]


async def members_of(
    client: RedisClient, keys: RedisKeys, partition: int, user_id: str
) -> list[bytes]:
    """Every index member naming ``user_id`` (forget removes them all)."""
    out: list[bytes] = []
    pattern = owed_pattern(user_id)
    cursor: Any = 0
    while True:
        reply: Any = await client.zscan(keys.owed(partition), cursor, match=pattern, count=500)
        cursor, page = reply
        out.extend(member for member, _ in page)
        if not cursor:
            return out
