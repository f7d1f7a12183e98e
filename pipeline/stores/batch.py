"""One Redis transaction per batch: everything a batch changes, or nothing.

A batch's user writes (one Lua call per user), its entry in the shared model log, the
active-users index, experiment outcome counters and the refreshes its events owe go out in
one ``MULTI/EXEC``. Outcome counters share the transaction with the events'
de-duplication marks, so a redelivered event is credited exactly once too; so do the owed
list refreshes (``pipeline.stores.owed``), so no crash can leave an event without its
refresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from pipeline.features.state import UserState
from pipeline.lists.build import Trigger
from pipeline.model.record import LearnRecord
from pipeline.stores.keys import RedisKeys
from pipeline.stores.model_log import ModelLog
from pipeline.stores.owed import OwedRefreshes
from pipeline.stores.users import UserStore, UserWrite
from schemas.events import Item

Outcomes = Mapping[tuple[str, str], Mapping[str, int]]
Owed = Mapping[str, tuple[Trigger, int]]


@dataclass(slots=True)
class BatchEffects:
    """What one batch writes: changed users, learn records, items, outcomes, owed refreshes."""

    now_ms: int
    batch_id: str
    users: Sequence[UserWrite] = ()
    records: list[LearnRecord] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    outcomes: Outcomes = field(default_factory=dict)
    owed: Owed = field(default_factory=dict)


class BatchStore:
    """Writes batches, controls and forgets, each in one transaction."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: RedisKeys,
        *,
        users: UserStore,
        model_log: ModelLog,
        owed: OwedRefreshes,
    ) -> None:
        self.client = client
        self.keys = keys
        self.users = users
        self.model_log = model_log
        self.owed = owed

    def encode_user(self, state: UserState, now_ms: int) -> UserWrite:
        """A user's share of the next batch write, taken now (see ``UserStore.encode_save``)."""
        return self.users.encode_save(state, now_ms)

    async def write(self, effects: BatchEffects) -> None:
        """Apply a batch's effects atomically (raises on a Redis error: nothing applied)."""
        async with self.client.pipeline(transaction=True) as pipe:
            for write in effects.users:
                self.users.queue_write(pipe, write)
            self.model_log.queue_append(
                pipe, effects.batch_id, effects.records, effects.items, now_ms=effects.now_ms
            )
            if effects.users:
                pipe.zadd(
                    self.keys.active_users, {w.user_id: effects.now_ms for w in effects.users}
                )
            for (name, arm), counts in effects.outcomes.items():
                for counter, inc in counts.items():
                    pipe.hincrby(self.keys.experiment(name, arm), counter, inc)
            self.owed.queue_owe(pipe, effects.owed)
            await pipe.execute()

    async def write_controls(self, states: Sequence[UserState], owed: Owed) -> None:
        """Store users' controls and the refreshes they owe, atomically."""
        async with self.client.pipeline(transaction=True) as pipe:
            for state in states:
                self.users.queue_save_controls(pipe, state)
            self.owed.queue_owe(pipe, owed)
            await pipe.execute()

    async def forget(self, user_ids: Sequence[str]) -> None:
        """Delete every per-user key and index entry of the users, atomically."""
        async with self.client.pipeline(transaction=True) as pipe:
            for user_id in user_ids:
                pipe.delete(*self.keys.user_keys(user_id))
                pipe.zrem(self.keys.active_users, user_id)
                self.owed.queue_forget(pipe, user_id)
            await pipe.execute()
