"""Stored lists: the ``recs`` keys, settling owed refreshes, exposure counters, rescues.

The Redis side of ``pipeline.publish`` (``ListStore``). One Lua call per list on the user's
keys (``write_list.lua``) stores it and settles the owed refresh it reflects; the index
member of that refresh and the exposure counters of the user's experiment arm are updated
in the same pipelined round trip, on the keys of the user's partition. A list is stored only
while the user exists (their ``meta`` hash), so a list built before a forget never brings the
user back; the publisher sends to Kafka only the lists that were stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.lists.build import BuiltList, Trigger
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import encode_trigger
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.owed import overdue, queue_unindex

WRITE_LIST = Script.file("write_list.lua")


class RedisListStore:
    """Writes and rescues users' lists (one instance per worker)."""

    def __init__(
        self, client: RedisClient, keys: RedisKeys, partitions: Partitioning, *, ttl_seconds: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.partitions = partitions
        self.ttl_seconds = ttl_seconds

    async def write(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Store each list, settle the refresh it owed, count exposures; which were stored."""
        return await self._write(lists, rescue=False)

    async def overdue(self, before_ms: int, limit: int) -> list[tuple[str, Trigger]]:
        """Owed refreshes due before ``before_ms`` (oldest first), from every partition."""
        return await overdue(self.client, self.keys, self.partitions, before_ms, limit)

    async def rescue(self, lists: Sequence[BuiltList]) -> list[bool]:
        """Write each list only if its refresh is still owed; which ones were written."""
        return await self._write(lists, rescue=True)

    async def _write(self, lists: Sequence[BuiltList], *, rescue: bool) -> list[bool]:
        cmds = Commands()
        replies: list[int] = []
        k = self.keys
        for b in lists:
            p = self.partitions.of(b.user_id)
            trigger = encode_trigger(b.trigger) if b.trigger.event_id is not None else ""
            args = [b.doc, self.ttl_seconds, trigger, "1" if rescue else "0"]
            replies.append(cmds.script(WRITE_LIST, [k.recs(b.user_id), k.meta(b.user_id)], args))
            if trigger:
                queue_unindex(cmds, k, p, b.user_id, trigger)
            if b.exposure is not None and not rescue:
                _, name, arm = b.exposure
                cmds.command("HINCRBY", k.experiment(p, name, arm), "exposures", 1)
                cmds.merge("PFADD", k.experiment_users(p, name, arm), b.user_id)
        if not lists:
            return []
        results = await send(self.client, cmds)
        return [int(results[i]) == 1 for i in replies]
