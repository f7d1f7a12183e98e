"""A batch's writes, without a transaction: exactly-once from idempotent per-slot calls.

Redis Cluster runs no ``MULTI`` across hash slots, and a batch touches many users. So a batch
goes out as two non-transactional pipelines (``pipeline.stores.commands``):

1. what is shared between users and counted, sent first and awaited: experiment outcome
   counters, guarded by Kafka offsets (``pipeline.stores.experiments``), and the batch's
   model-log entry (which readers de-duplicate by batch id);
2. one ``apply_user.lua`` call per user on the user's own keys (features, history, sets, the
   refresh the user is owed, the user's version), plus the user's entries in the indexes of
   their partition: active users, segment sets, the owed-refresh index.

Exactly-once effect without ``MULTI``: a user's call is atomic and recognises a batch it
already applied (the user's event ids), so a batch retried or redelivered after a crash at
any point applies each event once per user; the counters skip what they counted (offsets);
the index entries are idempotent (sets, sorted-set scores, one owed member per trigger).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.features.segments import segments_of
from pipeline.features.state import UserState
from pipeline.lists.build import Trigger
from pipeline.model.record import LearnRecord
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import encode_trigger
from pipeline.stores.commands import Commands, send
from pipeline.stores.experiments import Contribution, queue_outcomes
from pipeline.stores.forget import forget_users
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.model_log import ModelLog, Source
from pipeline.stores.owed import queue_index
from pipeline.stores.segments import queue_join, queue_membership
from pipeline.stores.users import APPLIED, CONFLICT, UserStore
from schemas.events import Item

Owed = Mapping[str, tuple[Trigger, int]]


@dataclass(slots=True)
class BatchEffects:
    """What one batch writes: changed users, learn records, items, outcomes, owed refreshes."""

    now_ms: int
    batch_id: str
    states: Sequence[UserState] = ()
    records: list[LearnRecord] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    outcomes: Sequence[Contribution] = ()
    owed: Owed = field(default_factory=dict)
    sources: Sequence[Source] = ()  # per record: where its event was read (the model log's guard)


@dataclass(slots=True)
class WriteResult:
    """Users whose write conflicted, with the segments it moved them to, and users to reload.

    A conflicted user's write changed nothing of theirs, but their index entries went out
    in the same round trip: ``repair`` puts the segment sets right once they are reloaded.
    """

    conflicted: dict[str, dict[str, str]] = field(default_factory=dict)
    reload: set[str] = field(default_factory=set)


@dataclass(slots=True)
class EncodedUsers:
    """Users' writes of a batch: the commands, where each reply is, what each should say."""

    cmds: Commands
    replies: list[int]
    expected: list[tuple[str, int, dict[str, str]]]  # user, version after, segments after


@dataclass(slots=True)
class EncodedBatch:
    """A batch's commands, encoded when it was learned (see ``BatchStore.encode``)."""

    shared: Commands
    users: EncodedUsers


class BatchStore:
    """Writes batches, controls and forgets (one instance per worker)."""

    def __init__(
        self,
        client: RedisClient,
        keys: RedisKeys,
        *,
        partitions: Partitioning,
        users: UserStore,
        model_log: ModelLog,
        forget_marker_ms: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.partitions = partitions
        self.users = users
        self.model_log = model_log
        self.forget_marker_ms = forget_marker_ms

    async def write(self, effects: BatchEffects) -> WriteResult:
        """Apply a batch's effects (raises on a Redis error: safe to call again)."""
        return await self.send(self.encode(effects))

    def encode(self, effects: BatchEffects) -> EncodedBatch:
        """The batch's commands, taken now; the users' states then count as written.

        Taken when the batch is learned, not when it is sent: with batches in flight the
        next batch may already change the same states, and each write must carry exactly
        its own batch's changes. ``send`` says which users' writes did not apply (their
        states must then be reloaded).
        """
        shared = Commands()
        queue_outcomes(shared, self.keys, effects.outcomes)
        self.model_log.queue_append(
            shared,
            effects.batch_id,
            effects.records,
            effects.items,
            now_ms=effects.now_ms,
            sources=effects.sources,
        )
        users = self._encode(effects.states, effects.owed, effects.now_ms, controls=False)
        return EncodedBatch(shared, users)

    async def send(self, batch: EncodedBatch) -> WriteResult:
        """Send an encoded batch: the shared counters first, then the users' writes."""
        if len(batch.shared):
            await send(self.client, batch.shared)
        return await self._send_users(batch.users)

    async def write_controls(
        self, states: Sequence[UserState], owed: Owed, now_ms: int
    ) -> WriteResult:
        """Store users' controls and the refreshes they owe (conditional, like events)."""
        return await self._send_users(self._encode(states, owed, now_ms, controls=True))

    async def reindex(self, states: Sequence[UserState], now_ms: int) -> None:
        """Restore the index entries of users a redelivered batch found fully applied.

        A crash between a user's write and their index entries (other slots, other nodes)
        would leave the entries out; the user's own keys still say what they must be.
        """
        cmds = Commands()
        for state in states:
            p = self.partitions.of(state.user_id)
            cmds.merge("ZADD", self.keys.active(p), now_ms, state.user_id)
            queue_join(cmds, self.keys, p, state.user_id, sorted(state.segments.items()))
            if state.owed is not None:
                queue_index(cmds, self.keys, p, state.user_id, state.owed, now_ms)
            arm = state.arm
            if arm is not None and arm.first_ms:
                exposed = self.keys.experiment_exposed(p, arm.experiment, arm.variant)
                cmds.command("ZADD", exposed, "NX", arm.first_ms, state.user_id)
        if len(cmds):
            await send(self.client, cmds)

    async def repair(
        self, states: Sequence[UserState], moved: Mapping[str, dict[str, str]]
    ) -> None:
        """Undo the segment moves of conflicted writes, against the reloaded ``states``."""
        cmds = Commands()
        for state in states:
            wrote = moved.get(state.user_id)
            if wrote is not None:
                p = self.partitions.of(state.user_id)
                queue_membership(cmds, self.keys, p, state.user_id, wrote, state.segments)
                queue_join(cmds, self.keys, p, state.user_id, sorted(state.segments.items()))
        if len(cmds):
            await send(self.client, cmds)

    async def forget(
        self,
        users: Sequence[tuple[str, int]],
        now_ms: int,
        *,
        sources: Mapping[str, tuple[str, int]] | None = None,
        assigned: Mapping[str, tuple[str, str]] | None = None,
    ) -> list[bool]:
        """Delete every key and index entry of the users, leave their forget markers.

        Their part of their experiment arm's sums is taken out first, guarded by the
        forgets' ``sources`` (see ``pipeline.stores.forget``).
        """
        return await forget_users(
            self.client,
            self.keys,
            self.partitions,
            users,
            marker_ms=self.forget_marker_ms,
            now_ms=now_ms,
            sources=sources,
            assigned=assigned,
        )

    def _encode(
        self, states: Sequence[UserState], owed: Owed, now_ms: int, *, controls: bool
    ) -> EncodedUsers:
        cmds = Commands()
        replies: list[int] = []
        expected: list[tuple[str, int, dict[str, str]]] = []
        for state in states:
            p = self.partitions.of(state.user_id)
            due = owed.get(state.user_id)
            trigger = (encode_trigger(due[0]), due[1]) if due is not None else None
            replies.append(
                self.users.queue_save(
                    cmds, state, now_ms, owed=trigger, controls=controls, features=not controls
                )
            )
            if trigger is not None:
                queue_index(cmds, self.keys, p, state.user_id, *trigger, replaces=state.owed)
            after = state.segments
            if not controls:
                cmds.merge("ZADD", self.keys.active(p), now_ms, state.user_id)
                after = segments_of(state)
                queue_membership(cmds, self.keys, p, state.user_id, state.segments, after)
            # as written, provisionally: ``send`` reports the users whose write did not apply
            state.version += 1
            state.segments = after
            if trigger is not None:
                state.owed = trigger[0]
            state.mark_clean()
            expected.append((state.user_id, state.version, after))
        return EncodedUsers(cmds, replies, expected)

    async def _send_users(self, users: EncodedUsers) -> WriteResult:
        out = WriteResult()
        if not users.expected:
            return out
        results = await send(self.client, users.cmds)
        for (user_id, version, after), i in zip(users.expected, users.replies, strict=True):
            status, stored = int(results[i][0]), int(results[i][1])
            if status == APPLIED and stored == version:
                continue
            if status == CONFLICT:
                out.conflicted[user_id] = after
            else:  # applied by an earlier attempt (a retry after a lost reply): reload to be sure
                out.reload.add(user_id)
        return out
