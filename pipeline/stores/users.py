"""Per-user state in Redis: codec (pure) and ``UserStore`` (async I/O).

A batch of events touches each user once: one Lua call per user writes the changed features,
appends to the history and the exclusion / de-duplication sets and renews every TTL, all
atomically (see ``apply_user.lua``). The calls of one batch go out in one transactional
pipeline together with the model-log entry, so on a single Redis a batch is applied entirely
or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.features.controls import from_fields, to_fields
from pipeline.features.segments import queue_membership, segments_of
from pipeline.features.state import Interaction, UserContext, UserState
from pipeline.stores.keys import RedisKeys

FEATURES_SCHEMA_VERSION = "1"


def _script(name: str) -> str:
    return resources.files("pipeline.stores").joinpath(name).read_text(encoding="utf-8")


APPLY_USER_LUA = _script("apply_user.lua")
LOAD_USER_LUA = _script("load_user.lua")


def features_fields(state: UserState, updated_ts: int) -> dict[str, str]:
    """The public ``features`` hash of a user (every value a string, as Redis returns it)."""
    fields = {
        "schema_version": FEATURES_SCHEMA_VERSION,
        "n_click": str(state.n_click),
        "n_skip": str(state.n_skip),
        "n_watch": str(state.n_watch),
        "n_events": str(state.n_events),
        "skip_rate": f"{state.skip_rate:.6f}",
        "mean_completion": f"{state.mean_completion:.6f}",
        "completion_sum": repr(state.completion_sum),
        "affinity": orjson.dumps({k: round(v, 6) for k, v in state.affinity.items()}).decode(),
        "top_categories": orjson.dumps([name for name, _ in state.top_categories(5)]).decode(),
        "first_ts": str(state.first_ts),
        "last_ts": str(state.last_ts),
        "updated_ts": str(updated_ts),
    }
    for name in ("locale", "device", "surface"):
        value = getattr(state.context, name)
        if value:
            fields[name] = value
    for dim, value in segments_of(state).items():
        fields[f"segment_{dim}"] = value
    return fields


def interaction_json(h: Interaction) -> bytes:
    """History list entry: ``[item_id, ts, type, weight, completion]``."""
    return orjson.dumps([h.item_id, h.ts, h.kind, round(h.weight, 4), h.completion])


def state_from_redis(
    user_id: str,
    fields: dict[bytes, bytes],
    history: Sequence[bytes],
    excluded: Sequence[bytes],
    events: Sequence[bytes],
) -> UserState:
    """Rebuild a ``UserState`` from what ``load_user.lua`` returns (flat WITHSCORES lists)."""
    f = {k.decode(): v.decode() for k, v in fields.items()}
    state = UserState(user_id)
    if f:
        state.n_click = int(f.get("n_click", 0))
        state.n_skip = int(f.get("n_skip", 0))
        state.n_watch = int(f.get("n_watch", 0))
        state.completion_sum = float(f.get("completion_sum", 0.0))
        state.affinity = {
            str(k): float(v) for k, v in orjson.loads(f.get("affinity", "{}")).items()
        }
        state.first_ts = int(f.get("first_ts", 0))
        state.last_ts = int(f.get("last_ts", 0))
        state.context = UserContext(f.get("locale"), f.get("device"), f.get("surface"))
        state.segments = {
            name[len("segment_") :]: value
            for name, value in f.items()
            if name.startswith("segment_")
        }
    for raw in reversed(history):  # stored newest first
        item_id, ts, kind, weight, completion = orjson.loads(raw)
        state.history.append(Interaction(item_id, int(ts), kind, float(weight), completion))
    state.excluded = _scored(excluded)
    state.seen_events = _scored(events)
    return state


def _scored(flat: Sequence[bytes]) -> dict[str, int]:
    """``[member, score, member, score, ...]`` (ascending) as an ordered dict."""
    return {flat[i].decode(): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


def apply_args(
    state: UserState,
    updated_ts: int,
    *,
    ttl_seconds: int,
    history_cap: int,
    excluded_cap: int,
    events_cap: int,
) -> list[Any]:
    """ARGV of ``apply_user.lua`` for the changes tracked in ``state``."""
    first = state.new_events[0][0] if state.new_events else ""
    argv: list[Any] = [first, ttl_seconds, history_cap, excluded_cap, events_cap]
    fields = features_fields(state, updated_ts)
    argv.append(len(fields))
    for k, v in fields.items():
        argv += (k, v)
    argv.append(len(state.new_interactions))
    argv += [interaction_json(h) for h in state.new_interactions]
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
        out = {}
        for user_id, r in zip(user_ids, replies, strict=True):
            state = state_from_redis(user_id, _pairs(r[0]), r[1], r[2], r[3])
            controls = {k.decode(): v.decode() for k, v in _pairs(r[4]).items()}
            state.controls = from_fields(controls)
            out[user_id] = state
        return out

    def queue_save(self, pipe: Any, state: UserState, updated_ts: int) -> None:
        """Add a user's tracked changes to a (transactional) pipeline."""
        args = apply_args(
            state,
            updated_ts,
            ttl_seconds=self.ttl_seconds,
            history_cap=self.history_cap,
            excluded_cap=self.excluded_cap,
            events_cap=self.events_cap,
        )
        # The pipeline loads registered scripts before MULTI: a Redis restart empties the
        # script cache, and an EVALSHA failing inside MULTI would not roll the rest back.
        pipe.scripts.add(self._apply)
        pipe.evalsha(self._apply.sha, 5, *self._keys(state.user_id), *args)
        after = segments_of(state)
        queue_membership(pipe, self.keys, state.user_id, state.segments, after)
        state.segments = after

    def queue_save_controls(self, pipe: Any, state: UserState) -> None:
        """Write a user's controls hash (whole: it is small) with the per-user TTL."""
        key = self.keys.controls(state.user_id)
        pipe.delete(key)
        pipe.hset(key, mapping=to_fields(state.controls))
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


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """HGETALL inside Lua returns a flat list."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
