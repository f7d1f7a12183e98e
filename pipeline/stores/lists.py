"""Stored lists: the ``recs`` keys, settling owed refreshes, experiment exposures, rescues.

The Redis side of ``pipeline.publish`` (``ListStore``). One Lua call per list on the user's
keys (``write_list.lua``) stores it, settles the owed refresh it reflects and, for a list of
an experiment arm, records it in the user's ``experiment`` hash (the items shown, the first
exposure); the index member of that refresh goes in the same pipelined round trip. A list
is stored only while the user exists (their ``meta`` hash), so a list built before a forget
never brings the user back; the publisher sends to Kafka only the lists that were stored.

Exposures are then counted for the lists actually stored, in a second round trip on the
keys of the users' partitions: the user joins the arm's exposed set (``ZADD NX`` with the
first exposure the user's hash holds, so every list re-asserts it) and the arm's list count
grows. Rescued lists (``rescue``) are not exposures: they touch neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipeline.lists.build import BuiltList, Trigger
from pipeline.lists.experiment_outcomes import EXPOSURES, shown_json
from pipeline.stores.availability import queue_holders
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
        if not lists:
            return []
        cmds = Commands()
        replies: list[int] = []
        k = self.keys
        for b in lists:
            p = self.partitions.of(b.user_id)
            trigger = encode_trigger(b.trigger) if b.trigger.event_id is not None else ""
            args: list[Any] = [b.doc, self.ttl_seconds, trigger, "1" if rescue else "0"]
            if b.exposure is not None and not rescue:
                items, name, arm = b.exposure
                args += [name, arm, shown_json(items), b.generated_ms]
            else:
                args += ["", "", "", 0]
            args.append(orjson.dumps(list(b.items)))
            keys = [k.recs(b.user_id), k.meta(b.user_id), k.experiment_user(b.user_id)]
            replies.append(cmds.script(WRITE_LIST, keys, args))
            if trigger:
                queue_unindex(cmds, k, p, b.user_id, trigger)
        results = await send(self.client, cmds)
        stored = [int(results[i][0]) == 1 for i in replies]
        second = Commands()
        # which lists hold which items (``pipeline.stores.availability``): what each list
        # added to and dropped from the one it replaced
        queue_holders(
            second,
            k,
            self.partitions,
            [
                (b.user_id, b.items, orjson.loads(results[i][3]), orjson.loads(results[i][2]))
                for b, i, ok in zip(lists, replies, stored, strict=True)
                if ok
            ],
            now_ms=max((b.generated_ms for b in lists), default=0),
            ttl_seconds=self.ttl_seconds,
        )
        exposed: dict[str, list[Any]] = {}
        shown: dict[str, int] = {}
        for b, i, ok in zip(lists, replies, stored, strict=True):
            if ok and b.exposure is not None and not rescue:
                p = self.partitions.of(b.user_id)
                _, name, arm = b.exposure
                exposed.setdefault(k.experiment_exposed(p, name, arm), []).extend(
                    (int(results[i][1]), b.user_id)
                )
                counters = k.experiment(p, name, arm)
                shown[counters] = shown.get(counters, 0) + 1
        # only for lists stored: a forgotten user never re-enters an arm
        for key, members in exposed.items():
            second.command("ZADD", key, "NX", *members)
        for key, n in shown.items():
            second.command("HINCRBY", key, EXPOSURES, n)
        if len(second):
            await send(self.client, second)
        return stored
