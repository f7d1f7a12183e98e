"""Item availability in Redis: the windows, their change log, and which lists hold an item.

Three structures (README "Redis keys"):

* ``recloop:items:availability`` (hash ``item_id -> window``, ``pipeline.model.availability``
  encoding) holds the restricted items only. The HTTP API filters every list it serves
  against it (``unavailable``), so a withdrawn item is never served, even before the
  rebuilt list is written. A worker loads it at start.
* ``recloop:items:availability:log`` (stream, trimmed to ``LOG_MAX`` entries) carries each
  change to every worker: each reads it every ``RECLOOP_AVAILABILITY_SYNC_MS``, so a change
  handled by the worker owning the item's partition reaches the owners of every user.
* ``recloop:p:{P}:holders:<item_id>`` (sorted set ``user_id -> ms``) indexes which users of
  partition ``P`` were given a list holding the item, written with every stored list and
  expiring twice ``RECLOOP_USER_TTL_SECONDS`` after the last member joined. An entry may
  outlive its list (never rewritten, expired): the sweep then finds nothing to remove. At
  most one entry per user of the partition, so a key is bounded by the partition's users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from pipeline.model.availability import Availability
from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import Partitioning, RedisKeys

WITHDRAW_LIST = Script.file("withdraw_list.lua")
INDEX_HOLDERS = Script.file("index_holders.lua")

LOG_MAX = 100_000
"""Changes kept in the log (approximately): far more than workers read between two polls."""

_SCAN = 1_000


def queue_holders(
    cmds: Commands,
    keys: RedisKeys,
    partitions: Partitioning,
    lists: Iterable[tuple[str, Sequence[str], Sequence[str], Sequence[str]]],
    *,
    now_ms: int,
    ttl_seconds: int,
) -> None:
    """Index stored lists: ``(user_id, items, added, dropped)`` per list written.

    The user joins the holders of the items the list added and leaves those of the items
    it dropped (``write_list.lua`` compares it with the list it replaced), so a list that
    changes little costs little: a ``ZADD`` / ``ZREM`` per (partition, item) for a whole
    batch, and an ``EXPIRE`` of twice the lists' TTL for each key that gained a member
    (renewing every key a list holds would cost one command per key and batch, 3-5x the
    list writes themselves). A partition's holders sets share its hash slot, so they go
    out as one ``index_holders.lua`` call per partition: a batch of first lists touched
    hundreds of sets, and one command per set and per ``EXPIRE`` was most of the cost of
    writing lists (issue #15).
    """
    by_partition: dict[int, dict[str, tuple[list[str], list[str]]]] = {}
    for user_id, _, added, dropped in lists:
        if not added and not dropped:
            continue
        p = partitions.of(user_id)
        sets = by_partition.setdefault(p, {})
        for item_id in added:
            sets.setdefault(item_id, ([], []))[0].append(user_id)
        for item_id in dropped:
            sets.setdefault(item_id, ([], []))[1].append(user_id)
    for p, sets in sorted(by_partition.items()):
        args: list[Any] = [now_ms, 2 * ttl_seconds]
        for joined, left in sets.values():
            args += (len(joined), *joined, len(left), *left)
        cmds.script(INDEX_HOLDERS, [keys.holders(p, item) for item in sets], args)


async def unavailable(
    client: RedisClient, keys: RedisKeys, item_ids: Sequence[str], now_ms: int
) -> set[str]:
    """Which of ``item_ids`` may not be shown at ``now_ms`` (one ``HMGET``)."""
    if not item_ids:
        return set()
    values: Any = await client.hmget(keys.item_availability, list(item_ids))
    out = set()
    for item_id, value in zip(item_ids, values, strict=True):
        if value is not None and not Availability.decode(_text(value)).at(now_ms):
            out.add(item_id)
    return out


class AvailabilityStore:
    """One worker's side of item availability in Redis."""

    def __init__(
        self,
        client: RedisClient,
        keys: RedisKeys,
        partitions: Partitioning,
        *,
        worker_id: str,
    ) -> None:
        self.client = client
        self.keys = keys
        self.partitions = partitions
        self.worker_id = worker_id
        self.last_id = "0-0"

    async def publish(self, changes: Sequence[tuple[str, Availability]]) -> None:
        """Store windows and append them to the change log (idempotent: safe to repeat)."""
        if not changes:
            return
        cmds = Commands()
        k = self.keys
        for item_id, window in changes:
            if window.restricted:
                cmds.command("HSET", k.item_availability, item_id, window.encode())
            else:
                cmds.command("HDEL", k.item_availability, item_id)
        await send(self.client, cmds)
        doc = orjson.dumps([[item_id, window.encode()] for item_id, window in changes])
        await self.client.xadd(
            k.availability_log, {"w": self.worker_id, "c": doc}, maxlen=LOG_MAX, approximate=True
        )

    async def load(self) -> dict[str, Availability]:
        """Every restricted item; the change log is read from here on (call at start).

        The log position is taken first, so a change made while the hash is scanned is
        read again from the log (applying a window twice changes nothing).
        """
        last: Any = await self.client.xrevrange(self.keys.availability_log, count=1)
        self.last_id = _text(last[0][0]) if last else "0-0"
        out: dict[str, Availability] = {}
        cursor: Any = 0
        while True:
            reply: Any = await self.client.hscan(self.keys.item_availability, cursor, count=_SCAN)
            cursor, page = reply
            for item_id, value in page.items():
                out[_text(item_id)] = Availability.decode(_text(value))
            if int(cursor) == 0:
                return out

    async def read_new(self, count: int = 500) -> list[tuple[str, Availability]]:
        """Changes other workers logged since the last read, in log order."""
        out: list[tuple[str, Availability]] = []
        while True:
            reply: Any = await self.client.xread(
                {self.keys.availability_log: self.last_id}, count=count
            )
            if not reply:
                return out
            entries = reply[0][1]
            for entry_id, fields in entries:
                self.last_id = _text(entry_id)
                if _text(fields[b"w"]) == self.worker_id:
                    continue
                out += [(i, Availability.decode(w)) for i, w in orjson.loads(fields[b"c"])]
            if len(entries) < count:
                return out

    async def holders(self, item_ids: Iterable[str], partitions: Iterable[int]) -> set[str]:
        """Users of ``partitions`` whose stored lists (may) hold one of ``item_ids``."""
        cmds = Commands()
        for p in partitions:
            for item_id in item_ids:
                cmds.command("ZRANGE", self.keys.holders(p, item_id), 0, -1)
        users: set[str] = set()
        for members in await send(self.client, cmds):
            users.update(_text(m) for m in members)
        return users

    async def withdraw(
        self, user_ids: Sequence[str], item_ids: Sequence[str], now_ms: int
    ) -> dict[str, bytes]:
        """Take ``item_ids`` out of the users' stored lists; the lists that changed.

        One Lua call per user does it in place (``withdraw_list.lua``: a JSON round trip in
        Redis, nothing sent but the ids), and the users leave the items' holders.
        """
        cmds = Commands()
        gone = orjson.dumps(list(item_ids))
        k = self.keys
        for user_id in user_ids:
            cmds.script(WITHDRAW_LIST, [k.recs(user_id), k.meta(user_id)], [now_ms, gone])
        replies = await send(self.client, cmds)
        changed = {u: bytes(doc) for u, doc in zip(user_ids, replies, strict=True) if doc}
        unindex = Commands()
        for user_id in changed:
            p = self.partitions.of(user_id)
            for item_id in item_ids:
                unindex.merge("ZREM", k.holders(p, item_id), user_id)
        if len(unindex):
            await send(self.client, unindex)
        return changed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
