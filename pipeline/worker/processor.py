"""The worker's batch logic, without Faust: decode, learn, persist, then teach and publish.

The Faust agents hand raw batches to ``handle_events`` / ``handle_items`` /
``handle_controls``. Each batch goes through the same steps:

1. parse or reject every message (``pipeline.events.ingest``);
2. ``learn_batch`` (pure) folds the new events into the users' cached states and returns the
   learn records and ranker examples; duplicates are decided there, once;
3. one Redis transaction writes everything the batch changed (``pipeline.stores.batch``),
   retried until Redis answers;
4. only then are the shared models taught (``apply_learning``): a batch that failed and is
   retried cannot teach any model twice;
5. dead letters are sent and acknowledged, and the users' lists refreshed
   (``pipeline.publish.refresher``).

Delivery guarantee (README "Guarantees"): the agent commits a batch's offsets only after
these methods return, and they return only once every valid event's effects are in Redis
and every dead letter was acknowledged. Redelivered events are recognised by ``event_id``,
so at-least-once delivery has an exactly-once effect on user state and the shared models.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.events.ingest import RawMessage, split_valid
from pipeline.features.controls import apply_control
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams
from pipeline.lists.build import BuiltList, Trigger
from pipeline.lists.experiments import Experiment, attribute
from pipeline.lists.recommend import Recommender
from pipeline.model.catalog import item_info
from pipeline.model.learn import BatchLearning, apply_learning, learn_batch
from pipeline.model.models import SharedModels
from pipeline.publish.ports import RecordSender
from pipeline.publish.publisher import Exposures
from pipeline.publish.refresher import Refresher
from pipeline.stores.batch import BatchEffects, BatchStore
from pipeline.worker.cache import UserCache
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever
from schemas.control import Control, ControlType
from schemas.dead_letter import RejectReason
from schemas.validation import (
    Rejected,
    dead_letter_bytes,
    parse_control,
    parse_event,
    parse_item,
)

log = logging.getLogger(__name__)

Outcomes = dict[tuple[str, str], dict[str, int]]


@dataclass(slots=True)
class PreparedBatch:
    """A learned batch whose writes, lists and dead letters are ready to go out."""

    learning: BatchLearning
    effects: BatchEffects | None
    rejected: list[tuple[RawMessage, Rejected]]
    lists: list[BuiltList]
    size: int
    prepare_seconds: float


def feature_params(settings: Settings) -> FeatureParams:
    """The knobs of the feature update a worker takes from its settings."""
    return FeatureParams(
        half_life_seconds=settings.affinity_half_life_seconds,
        history_size=settings.history_size,
        excluded_size=settings.dedupe_ids_per_user,
        dedupe_size=settings.dedupe_ids_per_user,
    )


class BatchProcessor:
    """Handles one worker's batches of events, items and controls."""

    def __init__(
        self,
        settings: Settings,
        *,
        models: SharedModels,
        recommender: Recommender,
        cache: UserCache,
        batches: BatchStore,
        refresher: Refresher,
        exposures: Exposures,
        experiments: tuple[Experiment, ...],
        sender: RecordSender,
        clock: Clock,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.models = models
        self.recommender = recommender
        self.cache = cache
        self.batches = batches
        self.refresher = refresher
        self.exposures = exposures
        self.experiments = experiments
        self.sender = sender
        self.clock = clock
        self.metrics = metrics
        self.feature_params = feature_params(settings)

    def reset(self) -> None:
        """Drop cached users and pending refreshes (partitions moved, or a batch failed)."""
        self.cache.clear()
        self.refresher.clear()

    # ------------------------------------------------------------------ events
    async def handle_events(self, messages: Sequence[RawMessage]) -> None:
        """Handle one batch; returns only when its effects are durable (see module doc).

        The safe path: one batch at a time, retried once with fresh state after a bug and
        dead-lettered if it fails again. ``pipeline.worker.pipeline`` overlaps batches by
        calling ``prepare`` and ``commit`` itself and falls back to this on a failure.
        """
        started = time.perf_counter()
        try:
            await self.commit(await self.prepare(messages))
        except Exception:
            # A bug must not lose events: reload state and retry once, then dead-letter the
            # batch with the reason so it can be replayed after a fix.
            self.metrics.processing_errors.inc()
            log.exception("batch failed; retrying once with fresh state size=%d", len(messages))
            self.reset()
            try:
                await self.commit(await self.prepare(messages))
            except Exception as exc:
                log.exception("batch failed twice; dead-lettering size=%d", len(messages))
                why = Rejected(RejectReason.PROCESSING_ERROR, type(exc).__name__)
                await self._dead_letter([(m, why) for m in messages])
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def prepare(self, messages: Sequence[RawMessage]) -> PreparedBatch:
        """The CPU stage: parse, load, learn, decide and build lists; nothing is written.

        Users' states are changed in the cache and their writes encoded now, so the next
        batch may be prepared while this one's I/O is in flight.
        """
        started = time.perf_counter()
        now = self.clock.now_ms()
        s = self.settings
        valid, rejected = split_valid(
            messages,
            lambda raw: parse_event(
                raw, now_ms=now, max_bytes=s.max_event_bytes, max_future_ms=s.max_future_ms
            ),
        )
        states = await self.cache.ensure({e.user_id for e in valid})
        learning = learn_batch(
            self.models,
            states,
            valid,
            params=self.feature_params,
            threshold=s.completion_threshold,
        )
        for duplicate in learning.duplicates:
            self.metrics.events.labels(duplicate.type, "duplicate").inc()
        outcomes: Outcomes = {}
        touched: dict[str, Trigger] = {}
        for learned in learning.applied:
            event = learned.event
            attribute(
                self.experiments,
                self.exposures.get(event.user_id),
                event_type=event.type,
                item_id=event.item_id,
                completed=event.type == "watch"
                and (learned.signal.completion or 0.0) >= s.completion_threshold,
                now_ms=now,
                outcomes=outcomes,
            )
            touched[event.user_id] = Trigger(event.event_id, event.ts, now)
            self.metrics.events.labels(event.type, "applied").inc()
        due, owed = self.refresher.on_changes(touched, now)
        effects = None
        if touched:
            effects = BatchEffects(
                now,
                uuid.uuid4().hex,
                [self.batches.encode_user(states[u], now) for u in touched],
                learning.records,
                outcomes=outcomes,
                owed=owed,
            )
        lists = self.refresher.build([(states[u], t) for u, t in due])
        return PreparedBatch(
            learning, effects, rejected, lists, len(messages), time.perf_counter() - started
        )

    async def commit(self, batch: PreparedBatch) -> None:
        """The I/O stage: write, then teach the models, then dead letters and lists."""
        started = time.perf_counter()
        if batch.effects is not None:
            await self._write(batch.effects)
        apply_learning(self.models, batch.learning)
        self.metrics.model_records.labels("own").inc(len(batch.learning.applied))
        if batch.rejected:
            await self._dead_letter(batch.rejected)
        await self.refresher.deliver(batch.lists, kind="event")
        self.metrics.batch_size.observe(batch.size)
        self.metrics.stage_seconds.labels("prepare").observe(batch.prepare_seconds)
        self.metrics.stage_seconds.labels("commit").observe(time.perf_counter() - started)

    async def _write(self, effects: BatchEffects) -> None:
        await retry_forever(
            lambda: self.batches.write(effects),
            what="redis batch write",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def _dead_letter(self, rejected: list[tuple[RawMessage, Rejected]]) -> None:
        now = self.clock.now_ms()
        records: list[tuple[bytes | None, bytes]] = []
        for m, why in rejected:
            records.append(
                (
                    None,
                    dead_letter_bytes(
                        m.value,
                        why,
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        now_ms=now,
                    ),
                )
            )
            self.metrics.dead_letters.labels(str(why.reason)).inc()
            self.metrics.events.labels("unknown", "dead_letter").inc()
        await self.sender.send(self.settings.topic_dlq, records)

    # ------------------------------------------------------------------ items
    async def handle_items(self, messages: Sequence[RawMessage]) -> None:
        """Catalogue updates: applied here and shared with the other workers via the log."""
        items, rejected = split_valid(
            messages, lambda raw: parse_item(raw, max_bytes=self.settings.max_event_bytes)
        )
        if items:
            now = self.clock.now_ms()
            for item in items:
                self.models.upsert_item(item_info(item))
            self.recommender.refresh_indexes(now)
            await self._write(BatchEffects(now, uuid.uuid4().hex, items=items))
        if rejected:
            await self._dead_letter(rejected)

    # ------------------------------------------------------------------ controls
    async def handle_controls(self, messages: Sequence[RawMessage]) -> None:
        """User controls (control v1); this worker owns the users' partitions."""
        controls, rejected = split_valid(
            messages, lambda raw: parse_control(raw, max_bytes=self.settings.max_event_bytes)
        )
        # in arrival order, a forget splitting the batch: what came before it is forgotten too
        pending: list[Control] = []
        for control in controls:
            if control.type is ControlType.FORGET:
                await self._apply_controls(pending)
                pending = []
                await self._forget([control.user_id])
            else:
                pending.append(control)
        await self._apply_controls(pending)
        if rejected:
            await self._dead_letter(rejected)

    async def _apply_controls(self, controls: list[Control]) -> None:
        """Store the users' new controls, then refresh their lists through the coalescer."""
        if not controls:
            return
        now = self.clock.now_ms()
        states = await self.cache.ensure({c.user_id for c in controls})
        touched: dict[str, Trigger] = {}
        for control in controls:
            state = states[control.user_id]
            apply_control(state.controls, control, n_events=state.n_events)
            touched[control.user_id] = Trigger(control.control_id, control.ts, now)
            self.metrics.controls.labels(str(control.type)).inc()
        due, owed = self.refresher.on_changes(touched, now)
        changed = [states[u] for u in touched]
        await retry_forever(
            lambda: self.batches.write_controls(changed, owed),
            what="redis controls write",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        await self.refresher.refresh(due, kind="control")

    async def _forget(self, user_ids: list[str]) -> None:
        """Delete every key of the users, then publish a non-personalised list for each.

        The list (trending, no personal data) replaces the personalised one for consumers of
        the topic and of the recs key; the user is personalised again from their next event.
        """
        for user_id in user_ids:
            self.cache.drop(user_id)
            self.refresher.forget(user_id)
        await retry_forever(
            lambda: self.batches.forget(user_ids),
            what="redis forget",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        for user_id in user_ids:
            self.cache.put(UserState(user_id))
        await self.refresher.refresh([(u, Trigger(None, None)) for u in user_ids], kind="forget")
        for user_id in user_ids:
            self.cache.drop(user_id)
            self.refresher.forget(user_id)
        self.metrics.forgotten.inc(len(user_ids))
        log.info("forgot users count=%d", len(user_ids))
