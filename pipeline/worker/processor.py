"""The worker's batch logic, without Faust: decode, learn, persist, then teach and publish.

The Faust agents hand raw batches to ``handle_events`` / ``handle_items`` /
``handle_controls``. Each batch of events goes through the same steps:

1. parse or reject every message (``pipeline.events.ingest``), and re-produce to their own
   partition the records another producer put elsewhere (``pipeline.worker.repartition``);
2. drop the events of forgotten users stamped at or before their forget;
3. ``learn_batch`` (pure) folds the new events into the users' cached states and returns the
   learn records and ranker examples; duplicates are decided there, once;
4. the batch's writes (``pipeline.stores.batch``), retried until Redis answers. A user write
   refused because another worker wrote the user since it was loaded (a partition moved)
   is a *conflict*: the user is reloaded and their events applied again, on the new state;
5. only then are the models taught: the shared ones the records of the round's model log
   entry, each unless the log taught its event already (``SharedModels.is_new``), the
   worker's own (user-kNN, rankers) what was written (``apply_local``); a batch that failed
   and is retried, or was logged by a worker that died before its user writes, cannot teach
   any model twice;
6. dead letters are sent and acknowledged, and the users' lists refreshed
   (``pipeline.publish.refresher``).

Steps 1-3 and the lists of users due a refresh are the batch's CPU stage (``prepare``);
4-6 its I/O stage (``commit``). ``pipeline.worker.pipeline`` runs the next batch's CPU stage
while this one's I/O is in flight; ``handle_events`` runs both, one batch at a time.

Delivery guarantee (README "Guarantees"): the agent commits a batch's offsets only after
these methods return, and they return only once every valid event's effects are in Redis
and every dead letter and re-produced record was acknowledged. Redelivered events are
recognised by ``event_id``, so at-least-once delivery has an exactly-once effect on user
state and the shared models.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.errors import WriteConflictError
from pipeline.events.ingest import RawMessage, split_sourced
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams
from pipeline.lists.build import BuiltList, Trigger
from pipeline.lists.experiment_outcomes import event_outcome
from pipeline.lists.experiments import Experiment
from pipeline.lists.recommend import Recommender
from pipeline.model.availability import WITHDRAWN, Availability
from pipeline.model.catalog import item_info
from pipeline.model.learn import BatchLearning, apply_local, learn_batch
from pipeline.model.models import SharedModels
from pipeline.publish.ports import RecordSender
from pipeline.publish.refresher import Refresher
from pipeline.stores.batch import BatchEffects, BatchStore, EncodedBatch, WriteResult
from pipeline.stores.experiments import Contribution
from pipeline.stores.keys import Partitioning
from pipeline.stores.model_log import Source
from pipeline.worker.availability import ItemAvailability
from pipeline.worker.cache import UserCache
from pipeline.worker.controls import MAX_WRITE_ROUNDS, ControlHandler
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.repartition import Repartitioner
from pipeline.worker.retry import retry_forever
from schemas.dead_letter import RejectReason
from schemas.events import Event
from schemas.validation import Rejected, dead_letter_bytes, parse_event, parse_item

log = logging.getLogger(__name__)

T = TypeVar("T")

Sourced = list[tuple[RawMessage, Event]]


@dataclass(slots=True)
class Round:
    """One write round of a batch, learned and encoded, not yet sent."""

    live: Sourced
    states: dict[str, UserState]
    learning: BatchLearning
    touched: dict[str, Trigger]
    encoded: EncodedBatch
    sources: list[Source]  # where each applied event was read (``learning.applied`` order)


@dataclass(slots=True)
class PreparedBatch:
    """A learned batch whose writes, lists and dead letters are ready to go out."""

    first: Round | None
    due: dict[str, Trigger]
    rejected: list[tuple[RawMessage, Rejected]]
    lists: list[BuiltList]
    size: int
    prepare_seconds: float
    now: int
    written: set[str] = field(default_factory=set)


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
        experiments: tuple[Experiment, ...],
        sender: RecordSender,
        clock: Clock,
        metrics: WorkerMetrics,
        partitions: Partitioning,
    ) -> None:
        self.settings = settings
        self.models = models
        self.recommender = recommender
        self.cache = cache
        self.batches = batches
        self.refresher = refresher
        self.experiments = experiments
        self.attribution_ms = {e.name: int(e.attribution_seconds * 1000) for e in experiments}
        self.return_windows = settings.return_windows
        self.sender = sender
        self.clock = clock
        self.metrics = metrics
        self.partitions = partitions
        self.feature_params = feature_params(settings)
        self.availability: ItemAvailability | None = None  # set by the composition root
        # reads the model log up to now (set by the composition root): run before the first
        # batch after a reset, so that a batch redelivered from a worker that died after
        # logging it meets that worker's records first (``SharedModels.is_new``)
        self.catch_up: Callable[[], Awaitable[None]] | None = None
        self.behind_log = True
        self.hop = Repartitioner(partitions.of, sender, metrics)
        # load -> learn -> write of a batch, a control batch and a forget never interleave
        self.writes = asyncio.Lock()
        self.controls = ControlHandler(
            settings,
            cache=cache,
            batches=batches,
            refresher=refresher,
            sender=sender,
            clock=clock,
            metrics=metrics,
            hop=self.hop,
            dead_letter=self._dead_letter,
            writes=self.writes,
            experiments=experiments,
            on_forget=models.user_knn.forget_user,
        )

    def reset(self) -> None:
        """Drop cached users and pending refreshes (partitions moved, or a batch failed)."""
        self.cache.clear()
        self.refresher.clear()
        self.behind_log = True

    # ------------------------------------------------------------------ events
    async def handle_events(self, messages: Sequence[RawMessage]) -> None:
        """Handle one batch; returns only when its effects are durable (see module doc)."""
        try:
            await self._handle_events(messages)
        except Exception:
            # A bug must not lose events: reload state and retry once, then dead-letter the
            # batch with the reason so it can be replayed after a fix.
            self.metrics.processing_errors.inc()
            log.exception("batch failed; retrying once with fresh state size=%d", len(messages))
            self.reset()
            try:
                await self._handle_events(messages)
            except Exception as exc:
                log.exception("batch failed twice; dead-lettering size=%d", len(messages))
                why = Rejected(RejectReason.PROCESSING_ERROR, type(exc).__name__)
                await self._dead_letter([(m, why) for m in messages])

    async def _handle_events(self, messages: Sequence[RawMessage]) -> None:
        async with self.writes:
            await self.commit(await self.prepare(messages))

    async def prepare(self, messages: Sequence[RawMessage]) -> PreparedBatch:
        """The CPU stage: parse, re-route, load, learn, encode the writes, build due lists.

        Nothing of the batch is written here; the users' cached states change and their
        writes are encoded now, so the next batch may be prepared while this one's I/O is
        in flight (``pipeline.worker.pipeline``).
        """
        started = time.perf_counter()
        if self.behind_log and self.catch_up is not None:
            self.behind_log = False
            await self.catch_up()
        now = self.clock.now_ms()
        s = self.settings
        valid, rejected = split_sourced(
            messages,
            lambda raw: parse_event(
                raw, now_ms=now, max_bytes=s.max_event_bytes, max_future_ms=s.max_future_ms
            ),
        )
        pending = await self.hop.keep_own(valid, lambda e: e.user_id)
        due: dict[str, Trigger] = {}
        first = await self._learn(pending, now, due, schedule=True) if pending else None
        lists = []
        if first is not None:
            self.refresher.hold(first.touched)  # released by ``commit`` once written
            lists = self.refresher.build(
                [(first.states[u], t) for u, t in due.items() if u in first.states]
            )
        return PreparedBatch(
            first, due, rejected, lists, len(messages), time.perf_counter() - started, now
        )

    async def commit(self, batch: PreparedBatch) -> None:
        """The I/O stage: writes (and rounds after conflicts), teaching, dead letters, lists."""
        started = time.perf_counter()
        try:
            conflicted = await self._write_rounds(batch)
        finally:
            if batch.first is not None:
                self.refresher.release(batch.first.touched)
        if batch.rejected:
            await self._dead_letter(batch.rejected)
        lists = [b for b in batch.lists if b.user_id not in conflicted]
        if conflicted:  # their lists were built on a state that did not hold: build again
            states = await self.cache.ensure(conflicted & set(batch.due))
            lists += self.refresher.build([(states[u], batch.due[u]) for u in states])
        await self.refresher.deliver(lists, kind="event")
        self.metrics.batch_size.observe(batch.size)
        committed = time.perf_counter() - started
        self.metrics.stage_seconds.labels("prepare").observe(batch.prepare_seconds)
        self.metrics.stage_seconds.labels("commit").observe(committed)
        # observed here, not around ``handle_events``: batches in flight reach only
        # ``prepare`` and ``commit`` (``pipeline.worker.pipeline``), and recloop_batch_seconds
        # must count them; a batch's own work, without its wait for the previous batch's I/O
        self.metrics.batch_seconds.observe(batch.prepare_seconds + committed)

    async def _write_rounds(self, batch: PreparedBatch) -> set[str]:
        """Write the batch, learning again the events of users whose write conflicted."""
        conflicted: set[str] = set()
        taught: set[str] = set()
        round_ = batch.first
        for attempt in range(MAX_WRITE_ROUNDS):
            if round_ is None:
                break
            pending = await self._write_round(round_, batch.now, taught)
            if not pending:
                break
            conflicted |= {e.user_id for _, e in pending}
            if attempt + 1 == MAX_WRITE_ROUNDS:
                msg = f"users kept conflicting after {MAX_WRITE_ROUNDS} write rounds"
                raise WriteConflictError(msg)
            round_ = await self._learn(pending, batch.now, batch.due, schedule=False)
        return conflicted

    async def _learn(
        self, pending: Sourced, now: int, due: dict[str, Trigger], *, schedule: bool
    ) -> Round:
        """Learn one round of events and encode its writes (CPU, apart from loading users).

        ``schedule``: whether the refresh scheduler hears of these events (the first round
        only; a round after a conflict re-applies events it already heard of).
        """
        states = await self.cache.ensure({e.user_id for _, e in pending})
        live: Sourced = []
        for m, e in pending:
            if states[e.user_id].forgotten_before(e.ts):
                self.metrics.events.labels(e.type, "forgotten").inc()
            else:
                live.append((m, e))
        source = {id(e): m for m, e in live}
        learning = learn_batch(
            self.models,
            states,
            [e for _, e in live],
            params=self.feature_params,
            threshold=self.settings.completion_threshold,
            rerank=self.recommender.rerank_pairs,
        )
        contributions: list[Contribution] = []
        touched: dict[str, Trigger] = {}
        sources: list[Source] = []
        for learned in learning.applied:
            event = learned.event
            m = source[id(event)]
            sources.append((m.source, m.offset))
            contributions += self._outcomes(
                states[event.user_id], event, m, learned.signal.completion
            )
            touched[event.user_id] = Trigger(event.event_id, event.ts, now)
        now_due, owed = self.refresher.on_changes(touched, now, schedule=schedule)
        due.update(now_due)
        changed = [states[u] for u in touched]
        encoded = self.batches.encode(
            BatchEffects(
                now,
                uuid.uuid4().hex,
                changed,
                learning.records,
                outcomes=contributions,
                owed=owed,
                sources=sources,
            )
        )
        return Round(live, states, learning, touched, encoded, sources)

    async def _write_round(self, round_: Round, now: int, taught: set[str]) -> Sourced:
        """Send one round; teach the models what was written; the events of conflicted users.

        ``taught``: the events whose records earlier rounds of the batch applied (grows).
        """
        result = await self._retry(lambda: self.batches.send(round_.encoded))
        states, touched = round_.states, round_.touched
        done = round_.learning.without(result.conflicted)
        # The round's log entry went out with every record, conflicted users' included, and
        # the peers apply them all: so does this worker. Refused: a record of an event taught
        # in an earlier round of the batch (a conflicted user's, learned again), or whose
        # offset the log taught already (a redelivered batch a dead worker had logged).
        is_new = self.models.is_new
        new = []
        for a, (source, offset) in zip(round_.learning.applied, round_.sources, strict=True):
            if a.event.event_id not in taught and is_new(source, offset):
                taught.add(a.event.event_id)
                new.append(a.record)
        self.models.apply_all(new)
        apply_local(self.models, done)
        self.metrics.model_records.labels("own").inc(len(new))
        self.metrics.model_records.labels("replayed").inc(len(round_.learning.applied) - len(new))
        for learned in done.applied:
            self.metrics.events.labels(learned.event.type, "applied").inc()
        for duplicate in done.duplicates:
            self.metrics.events.labels(duplicate.type, "duplicate").inc()
        settled = {e.user_id for e in done.duplicates} - set(touched)
        if settled:  # a redelivered batch: their index entries may be what a crash left out
            await self._retry(lambda: self.batches.reindex([states[u] for u in settled], now))
        for user_id in result.reload | set(result.conflicted):
            self.cache.drop(user_id)
        if not result.conflicted:
            return []
        self.metrics.write_conflicts.inc(len(result.conflicted))
        log.info("user writes conflicted; reloading users=%d", len(result.conflicted))
        fresh = await self.cache.ensure(set(result.conflicted))
        await self._retry(lambda: self.batches.repair(list(fresh.values()), result.conflicted))
        return [(m, e) for m, e in round_.live if e.user_id in result.conflicted]

    def _outcomes(
        self, state: UserState, event: Event, message: RawMessage, completion: float | None
    ) -> list[Contribution]:
        """What the event adds to its user's experiment arm, in event order (exact sums)."""
        arm = state.arm
        if arm is None or arm.experiment not in self.attribution_ms:
            return []
        counts = event_outcome(
            arm,
            attribution_ms=self.attribution_ms[arm.experiment],
            windows=self.return_windows,
            event_type=event.type,
            item_id=event.item_id,
            ts=event.ts,
            completed=event.type == "watch"
            and (completion or 0.0) >= self.settings.completion_threshold,
        )
        partition = self.partitions.of(event.user_id)
        where, offset = message.source, message.offset
        return [Contribution(partition, where, offset, arm.experiment, arm.variant, counts)]

    async def _write(self, effects: BatchEffects) -> WriteResult:
        return await self._retry(lambda: self.batches.write(effects))

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_forever(
            operation,
            what="redis batch write",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def _dead_letter(self, rejected: list[tuple[RawMessage, Rejected]]) -> None:
        now = self.clock.now_ms()
        records: list[tuple[bytes | None, bytes | None]] = []
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
        """Catalogue updates: applied here and shared with the other workers via the log.

        Availability (item v1.1, tombstones) goes to ``pipeline.worker.availability``, which
        stores it, tells the other workers and sweeps the lists holding withdrawn items.
        """
        tombstones = [m for m in messages if m.tombstone]
        valid, rejected = split_sourced(
            [m for m in messages if not m.tombstone],
            lambda raw: parse_item(raw, max_bytes=self.settings.max_event_bytes),
        )
        items = [item for _, item in await self.hop.keep_own(valid, lambda i: i.item_id)]
        changes = []
        if items:
            now = self.clock.now_ms()
            for item in items:
                self.models.upsert_item(item_info(item))
                window = Availability.of(
                    item.available, item.available_from_ts, item.available_until_ts
                )
                changes.append((item.item_id, window))
            self.recommender.refresh_indexes(now)
            await self._write(BatchEffects(now, uuid.uuid4().hex, items=items))
        for m in tombstones:  # a null value under the item's key: the item is withdrawn
            if m.key:
                changes.append((m.key.decode("utf-8", "replace"), WITHDRAWN))
            else:
                why = Rejected(
                    RejectReason.MISSING_FIELD, "an item tombstone needs the item_id as its key"
                )
                rejected.append((m, why))
        if changes and self.availability is not None:
            await self.availability.handle(changes)
        if rejected:
            await self._dead_letter(rejected)

    # ------------------------------------------------------------------ controls
    async def handle_controls(self, messages: Sequence[RawMessage]) -> None:
        """User controls (control v1); this worker owns the users' partitions."""
        await self.controls.handle(messages)
