"""Per-user state in Redis: ``UserStore`` loads users and queues their writes.

A batch of events touches each user once: one Lua call per user writes the changed features,
appends to the history and the exclusion / de-duplication sets and renews every TTL, all
atomically (see ``apply_user.lua``). The calls of one batch go out in one transactional
pipeline (``pipeline.stores.batch``), so on a single Redis a batch is applied entirely or
not at all. Row formats are in ``pipeline.stores.codec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis

from pipeline.features.segments import segments_of
from pipeline.features.state import UserState
from pipeline.stores.codec import (
    controls_fields,
    features_fields,
    history_entry,
    pairs,
    state_from_redis,
)
from pipeline.stores.keys import RedisKeys
from pipeline.stores.segments import queue_membership


@dataclass(frozen=True, slots=True)
class UserWrite:
    """One user's share of a batch write: the script's arguments and segment moves."""

    user_id: str
    args: list[Any]
    segments_before: dict[str, str]
    segments: dict[str, str]


def _script(name: str) -> str:
    return resources.files("pipeline.stores").joinpath(name).read_text(encoding="utf-8")


APPLY_USER_LUA = _script("apply_user.lua")
LOAD_USER_LUA = _script("load_user.lua")


def apply_args(
    state: UserState,
    updated_ts: int,
    *,
    ttl_seconds: int,
    history_cap: int,
    excluded_cap: int,
    events_cap: int,
) -> list[Any]:
    """ARGV of ``apply_user.lua`` for the changes tracked in ``state``.

    The stored history stays in event-time order: in-order interactions are pushed onto it;
    after a late one was inserted (``history_rewritten``) the whole history replaces it.
    """
    first = state.new_events[0][0] if state.new_events else ""
    argv: list[Any] = [first, ttl_seconds, history_cap, excluded_cap, events_cap]
    fields = features_fields(state, updated_ts)
    argv.append(len(fields))
    for k, v in fields.items():
        argv += (k, v)
    if state.history_rewritten:
        argv += ("replace", len(state.history))
        argv += [history_entry(h) for h in state.history]
    else:
        argv += ("push", len(state.new_interactions))
        argv += [history_entry(h) for h in state.new_interactions]
    argv.append(len(state.new_interactions))
    for h in state.new_interactions:
        argv += (h.ts, h.item_id)
    argv.append(len(state.new_events))
    for event_id, ts in state.new_events:
        argv += (ts, event_id)
    return argv


class UserStore:
    """Loads and saves user states; one instance per worker."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: RedisKeys,
        ttl_seconds: int,
        history_cap: int,
        excluded_cap: int,
        events_cap: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.history_cap = history_cap
        self.excluded_cap = excluded_cap
        self.events_cap = events_cap
        self._load = client.register_script(LOAD_USER_LUA)
        self._apply = client.register_script(APPLY_USER_LUA)

    async def load_many(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        """Load several users in one pipelined round trip."""
        if not user_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                await self._load(keys=self._keys(user_id), args=[], client=pipe)
            replies = await pipe.execute()
        return {
            user_id: state_from_redis(user_id, pairs(r[0]), r[1], r[2], r[3], pairs(r[4]))
            for user_id, r in zip(user_ids, replies, strict=True)
        }

    def encode_save(self, state: UserState, updated_ts: int) -> UserWrite:
        """The write of a user's tracked changes, taken now; the state is then clean.

        Taken when the batch is learned, not when it is sent: with batches in flight the
        next batch may already change the same state, and each write must carry exactly its
        own batch's changes.
        """
        args = apply_args(
            state,
            updated_ts,
            ttl_seconds=self.ttl_seconds,
            history_cap=self.history_cap,
            excluded_cap=self.excluded_cap,
            events_cap=self.events_cap,
        )
        after = segments_of(state)
        write = UserWrite(state.user_id, args, dict(state.segments), after)
        state.segments = after
        state.mark_clean()
        return write

    def queue_write(self, pipe: Any, write: UserWrite) -> None:
        """Add an encoded user write to a (transactional) pipeline."""
        # The pipeline loads registered scripts before MULTI: a Redis restart empties the
        # script cache, and an EVALSHA failing inside MULTI would not roll the rest back.
        pipe.scripts.add(self._apply)
        pipe.evalsha(self._apply.sha, 5, *self._keys(write.user_id), *write.args)
        queue_membership(pipe, self.keys, write.user_id, write.segments_before, write.segments)

    def queue_save(self, pipe: Any, state: UserState, updated_ts: int) -> None:
        """Encode and queue a user's tracked changes at once (no batch in flight)."""
        self.queue_write(pipe, self.encode_save(state, updated_ts))

    def queue_save_controls(self, pipe: Any, state: UserState) -> None:
        """Write a user's controls hash (whole: it is small) with the per-user TTL."""
        key = self.keys.controls(state.user_id)
        pipe.delete(key)
        pipe.hset(key, mapping=controls_fields(state.controls))
        pipe.expire(key, self.ttl_seconds)

    async def ensure_scripts(self) -> None:
        """Load the Lua scripts (EVALSHA in a transaction cannot fall back to EVAL)."""
        await self.client.script_load(APPLY_USER_LUA)
        await self.client.script_load(LOAD_USER_LUA)

    def _keys(self, user_id: str) -> list[str]:
        k = self.keys
        return [
            k.features(user_id),
            k.history(user_id),
            k.excluded(user_id),
            k.events(user_id),
            k.controls(user_id),
        ]
