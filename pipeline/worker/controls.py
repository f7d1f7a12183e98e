"""Controls (control v1) on the worker: applied like events, and ``forget``.

Controls reach the worker owning the user (co-partitioned with events; records another
producer put elsewhere hop to their partition first). They are applied in arrival order;
a ``forget`` splits the batch, so what came before it is forgotten too.

Forget is final for everything sent before it (README "Privacy"): it deletes every per-user
key and index entry and leaves a marker with the forget time, which the event path checks,
so an event or control stamped at or before it that arrives later (a lagging topic, a
repartition hop) is dropped and counted, never applied. The user's key on the
recommendations topic gets a tombstone (a null value: compaction removes their lists). The
forget holds the publisher's lock, so no list built before it is stored or sent after it,
and the worker's write lock (``writes``), so no batch of the worker that loaded the user
before the forget writes them after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.errors import WriteConflictError
from pipeline.events.ingest import RawMessage, split_sourced
from pipeline.features.controls import apply_control
from pipeline.features.state import UserState
from pipeline.lists.build import Trigger
from pipeline.lists.experiments import Experiment, assign
from pipeline.publish.ports import RecordSender
from pipeline.publish.refresher import Refresher
from pipeline.stores.batch import BatchStore, Owed, WriteResult
from pipeline.worker.cache import UserCache
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.repartition import Repartitioner
from pipeline.worker.retry import retry_forever
from schemas.control import Control, ControlType
from schemas.validation import Rejected, parse_control

log = logging.getLogger(__name__)

MAX_WRITE_ROUNDS = 5
"""Write conflicts resolved per batch before it fails (two live writers of one user)."""

DeadLetter = Callable[[list[tuple[RawMessage, Rejected]]], Awaitable[None]]


class ControlHandler:
    """Applies controls and forgets for one worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache: UserCache,
        batches: BatchStore,
        refresher: Refresher,
        sender: RecordSender,
        clock: Clock,
        metrics: WorkerMetrics,
        hop: Repartitioner,
        dead_letter: DeadLetter,
        writes: asyncio.Lock,
        experiments: tuple[Experiment, ...] = (),
        on_forget: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_forget = on_forget  # in-process state keyed by user (the user-kNN windows)
        self.cache = cache
        self.batches = batches
        self.refresher = refresher
        self.sender = sender
        self.clock = clock
        self.metrics = metrics
        self.hop = hop
        self.dead_letter = dead_letter
        self.writes = writes
        self.experiments = experiments

    async def handle(self, messages: Sequence[RawMessage]) -> None:
        """Apply a batch of controls in arrival order."""
        valid, rejected = split_sourced(
            messages, lambda raw: parse_control(raw, max_bytes=self.settings.max_event_bytes)
        )
        pending: list[Control] = []
        for message, control in await self.hop.keep_own(valid, lambda c: c.user_id):
            if control.type is ControlType.FORGET:
                await self.apply(pending)
                pending = []
                await self.forget([control], [message])
            else:
                pending.append(control)
        await self.apply(pending)
        if rejected:
            await self.dead_letter(rejected)

    async def apply(self, controls: list[Control]) -> None:
        """Store the users' new controls, then refresh their lists through the coalescer."""
        due: list[tuple[str, Trigger]] = []
        for round_ in range(MAX_WRITE_ROUNDS):
            if not controls:
                break
            async with self.writes:
                controls = await self._round(controls, due, schedule=round_ == 0)
        if controls:
            msg = f"users kept conflicting after {MAX_WRITE_ROUNDS} control write rounds"
            raise WriteConflictError(msg)
        await self.refresher.refresh(due, kind="control")

    async def _round(
        self, controls: list[Control], due: list[tuple[str, Trigger]], *, schedule: bool
    ) -> list[Control]:
        """Apply and write ``controls``; the ones of users whose write conflicted."""
        states = await self.cache.ensure({c.user_id for c in controls})
        touched: dict[str, Trigger] = {}
        for control in controls:
            state = states[control.user_id]
            if state.forgotten_before(control.ts):
                self.metrics.events.labels("control", "forgotten").inc()
                continue
            apply_control(state.controls, control, n_events=state.n_events)
            touched[control.user_id] = Trigger(control.control_id, control.ts)
        now = self.clock.now_ms()
        now_due, owed = self.refresher.on_changes(touched, now, schedule=schedule)
        due += now_due
        result = await self._write([states[u] for u in touched], owed, now)
        for user_id in result.reload | set(result.conflicted):
            self.cache.drop(user_id)
        self.metrics.write_conflicts.inc(len(result.conflicted))
        for control in controls:
            if control.user_id in touched and control.user_id not in result.conflicted:
                self.metrics.controls.labels(str(control.type)).inc()
        return [c for c in controls if c.user_id in result.conflicted]

    async def _write(self, states: list[UserState], owed: Owed, now: int) -> WriteResult:
        return await retry_forever(
            lambda: self.batches.write_controls(states, owed, now),
            what="redis controls write",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def forget(self, controls: list[Control], messages: Sequence[RawMessage] = ()) -> None:
        """Delete everything of the users, leave forget markers, tombstone their lists.

        ``messages`` are the forgets as read (same order): their offsets guard the
        subtraction of the users' part of their experiment arm's sums.
        """
        users = [(c.user_id, c.ts) for c in controls]
        sources = {
            c.user_id: (m.source, m.offset) for c, m in zip(controls, messages, strict=False)
        }
        assigned = {}
        for c in controls:
            arm = assign(self.experiments, c.user_id)
            if arm is not None:
                assigned[c.user_id] = (arm[0].name, arm[1].name)
        async with self.writes, self.refresher.publisher.lock:
            for user_id, _ in users:
                self.cache.drop(user_id)
                self.refresher.forget(user_id)
                if self.on_forget is not None:
                    self.on_forget(user_id)
            await retry_forever(
                lambda: self.batches.forget(
                    users, self.clock.now_ms(), sources=sources, assigned=assigned
                ),
                what="redis forget",
                on_error=lambda _: self.metrics.redis_errors.inc(),
            )
            tombstones: list[tuple[bytes | None, bytes | None]] = [
                (user_id.encode(), None) for user_id, _ in users
            ]
            await self.sender.send(self.settings.topic_recommendations, tombstones)
        self.metrics.forgotten.inc(len(users))
        self.metrics.lists.labels("forget").inc(len(users))
        log.info("forgot users count=%d", len(users))
