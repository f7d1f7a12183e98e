"""Per-user state in Redis: ``UserStore`` loads users and queues their writes.

A batch touches each user once: one Lua call per user (``apply_user.lua``) writes the changed
features, appends to the history and the exclusion / de-duplication sets, records the
refresh the user is owed, the user's values in their experiment arm, and renews every TTL,
all atomically on the user's hash slot.

The write is conditional on the user's *version* (``meta`` hash): a state loaded at version
``v`` may only be written over version ``v``. A worker that no longer owns the user (its
partition moved while it held the state: a rebalance, a zombie after a long pause) gets a
conflict and writes nothing; the caller reloads the user and re-applies its events, which the
de-duplication set then recognises if the other worker applied them already. Row formats are
in ``pipeline.stores.codec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.features.state import UserState
from pipeline.lists.experiment_outcomes import arm_fields
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import (
    controls_fields,
    features_fields,
    history_entry,
    pairs,
    state_from_redis,
)
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import Partitioning, RedisKeys

APPLY_USER = Script.file("apply_user.lua")
LOAD_USER = Script.file("load_user.lua")

APPLIED, ALREADY_APPLIED, CONFLICT = 1, 0, -1
"""What ``apply_user.lua`` answers (first element of its reply)."""


def apply_args(
    state: UserState,
    updated_ts: int,
    *,
    ttl_seconds: int,
    history_cap: int,
    excluded_cap: int,
    events_cap: int,
    owed: tuple[str, int] | None = None,
    controls: bool = False,
    features: bool = True,
) -> list[Any]:
    """ARGV of ``apply_user.lua`` for the changes tracked in ``state``.

    ``owed`` is the refresh the write records (encoded trigger, due ms); ``controls`` writes
    the whole controls hash; ``features=False`` leaves the behavioural keys alone (a control).
    The stored history stays in event-time order: in-order interactions are pushed onto it;
    after a late one was inserted (``history_rewritten``) the whole history replaces it.
    """
    first = state.new_events[0][0] if state.new_events else ""
    trigger, due = owed or ("", 0)
    argv: list[Any] = [state.version, first, ttl_seconds, history_cap, excluded_cap, events_cap]
    argv += [trigger, due]
    if controls:
        control_fields = controls_fields(state.controls)
        argv.append(len(control_fields))
        for k, v in control_fields.items():
            argv += (k, v)
    else:
        argv.append(-1)
    if not features:
        return [*argv, 0, "push", 0, 0, 0, 0]
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
    arm = state.arm
    if arm is None or not arm.changed:
        argv.append(0)
        return argv
    stored = arm_fields(arm)  # experiment, variant, first_ms first (the script expects them)
    argv.append(len(stored))
    for k, v in stored.items():
        argv += (k, v)
    return argv


class UserStore:
    """Loads and saves user states; one instance per worker."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: RedisKeys,
        partitions: Partitioning,
        ttl_seconds: int,
        history_cap: int,
        excluded_cap: int,
        events_cap: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.partitions = partitions
        self.ttl_seconds = ttl_seconds
        self.history_cap = history_cap
        self.excluded_cap = excluded_cap
        self.events_cap = events_cap

    async def load_many(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        """Load several users, with their forget markers, in one pipelined round trip."""
        if not user_ids:
            return {}
        cmds = Commands()
        for user_id in user_ids:
            cmds.script(LOAD_USER, self.user_keys(user_id), [])
        for user_id in user_ids:
            marker = self.keys.forgotten(self.partitions.of(user_id))
            cmds.command("ZSCORE", marker, self.keys.forget_token(user_id))
        replies = await send(self.client, cmds)
        n = len(user_ids)
        out: dict[str, UserState] = {}
        for user_id, r, forgotten in zip(user_ids, replies[:n], replies[n:], strict=True):
            state = state_from_redis(
                user_id, pairs(r[0]), r[1], r[2], r[3], pairs(r[4]), pairs(r[5]), pairs(r[6])
            )
            state.forgotten_ts = int(float(forgotten)) if forgotten is not None else 0
            out[user_id] = state
        return out

    def queue_save(
        self,
        cmds: Commands,
        state: UserState,
        updated_ts: int,
        *,
        owed: tuple[str, int] | None = None,
        controls: bool = False,
        features: bool = True,
    ) -> int:
        """Queue a user's tracked changes; the index of the reply (see ``apply_user.lua``)."""
        args = apply_args(
            state,
            updated_ts,
            ttl_seconds=self.ttl_seconds,
            history_cap=self.history_cap,
            excluded_cap=self.excluded_cap,
            events_cap=self.events_cap,
            owed=owed,
            controls=controls,
            features=features,
        )
        return cmds.script(APPLY_USER, self.user_keys(state.user_id), args)

    def user_keys(self, user_id: str) -> list[str]:
        """The KEYS of ``apply_user.lua`` and ``load_user.lua``."""
        k = self.keys
        return [
            k.features(user_id),
            k.history(user_id),
            k.excluded(user_id),
            k.events(user_id),
            k.controls(user_id),
            k.meta(user_id),
            k.experiment_user(user_id),
        ]
