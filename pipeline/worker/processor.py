"""The worker's batch logic, without Faust: decode, dedupe, learn, persist, refresh, publish.

The Faust agents hand raw batches to ``Processor.handle_events`` and timers call the
periodic methods; everything that decides what happens lives here and in the pure modules it
calls, so it is tested against real Kafka and Redis without a Faust app.

Delivery guarantee (README "Guarantees"): a batch's offsets are committed by the agent only
after ``handle_events`` returns, and it returns only once every valid event's effects are in
Redis (one transaction per batch, retried until Redis answers) and every dead letter was
acknowledged by the broker. Redelivered events are recognised by ``event_id`` (per user, the
last ``dedupe_ids_per_user`` ids, TTL ``user_ttl_seconds``), so at-least-once delivery has an
exactly-once effect on user state and on the shared models.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence

import redis.asyncio as aioredis

from pipeline.clock import wall_ms
from pipeline.config import Settings
from pipeline.events.ingest import Publisher, RawMessage, split_valid
from pipeline.features.controls import apply_control
from pipeline.features.segments import sweep_dormant
from pipeline.features.state import FeatureParams, UserState
from pipeline.lists.experiments import attribute, load_experiments
from pipeline.lists.recommend import Engine, EngineParams
from pipeline.model.catalog import item_info
from pipeline.model.learn import event_signal, learn_event
from pipeline.model.record import LearnRecord
from pipeline.publish.coalesce import RefreshScheduler, Trigger
from pipeline.publish.refresh import ListRefresher
from pipeline.stores.keys import RedisKeys
from pipeline.stores.model_log import ModelLog
from pipeline.stores.owed import OwedRefreshes
from pipeline.stores.users import UserStore
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever
from schemas.control import Control, ControlType
from schemas.dead_letter import RejectReason
from schemas.events import Event, Item
from schemas.validation import (
    Rejected,
    dead_letter_bytes,
    parse_control,
    parse_event,
    parse_item,
)

log = logging.getLogger(__name__)


def engine_params(settings: Settings) -> EngineParams:
    """The engine knobs a worker takes from its settings."""
    return EngineParams(
        list_size=settings.list_size,
        category_cap=settings.category_cap,
        exploration_share=settings.exploration_share,
        trend_half_life_seconds=settings.trending_half_life_seconds,
    )


class Processor(ListRefresher):
    """One worker's state and batch handling (one instance per worker process)."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis,
        publisher: Publisher,
        worker_id: str,
        metrics: WorkerMetrics | None = None,
        cache_size: int = 100_000,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.publisher = publisher
        self.worker_id = worker_id
        self.metrics = metrics or WorkerMetrics()
        self.keys = RedisKeys(settings.redis_namespace)
        self.engine = Engine(engine_params(settings))
        self.model_version = 0
        self.users = UserStore(
            redis,
            keys=self.keys,
            ttl_seconds=settings.user_ttl_seconds,
            history_cap=settings.history_size,
            excluded_cap=settings.dedupe_ids_per_user,
            events_cap=settings.dedupe_ids_per_user,
        )
        self.owed = OwedRefreshes(redis, self.keys)
        self.model_log = ModelLog(
            redis,
            keys=self.keys,
            worker_id=worker_id,
            retention_seconds=3 * settings.model_snapshot_seconds,
        )
        self.feature_params = FeatureParams(
            half_life_seconds=settings.affinity_half_life_seconds,
            history_size=settings.history_size,
            excluded_size=settings.dedupe_ids_per_user,
            dedupe_size=settings.dedupe_ids_per_user,
        )
        self.scheduler = RefreshScheduler(settings.refresh_interval_ms)
        self.experiments = load_experiments(settings.experiments_file)
        # user -> the latest list an experiment user saw: (items, published ms, exp, arm)
        self.exposed: OrderedDict[str, tuple[frozenset[str], int, str, str]] = OrderedDict()
        self.cache: OrderedDict[str, UserState] = OrderedDict()
        self.cache_size = cache_size
        self._pending_items: list[Item] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load scripts and the newest model snapshot, then catch up with the log."""
        await retry_forever(self.users.ensure_scripts, what="redis script load")
        engine, version = await retry_forever(
            lambda: self.model_log.load_latest(self.engine.params), what="model snapshot load"
        )
        self.engine, self.model_version = engine, version
        self.metrics.model_version.set(version)
        await self.sync_model()
        self.engine.refresh_indexes(wall_ms())

    def on_partitions_changed(self) -> None:
        """Partitions moved: cached user states may now be written by another worker."""
        self.cache.clear()
        self.scheduler.clear()
        self.metrics.cached_users.set(0)

    # ------------------------------------------------------------------ events
    async def handle_events(self, messages: Sequence[RawMessage]) -> None:
        """Handle one batch; returns only when its effects are durable (see module doc)."""
        started = time.perf_counter()
        try:
            await self._handle_events(messages)
        except Exception:
            # A bug must not lose events: reload state and retry once, then dead-letter the
            # batch with the reason so it can be replayed after a fix.
            self.metrics.processing_errors.inc()
            log.exception("batch failed; retrying once with fresh state size=%d", len(messages))
            self.on_partitions_changed()
            try:
                await self._handle_events(messages)
            except Exception as exc:
                log.exception("batch failed twice; dead-lettering size=%d", len(messages))
                await self._dead_letter(
                    [
                        (m, Rejected(RejectReason.PROCESSING_ERROR, type(exc).__name__))
                        for m in messages
                    ]
                )
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(messages))

    async def _handle_events(self, messages: Sequence[RawMessage]) -> None:
        now = wall_ms()
        s = self.settings
        valid, rejected = split_valid(
            messages,
            lambda raw: parse_event(
                raw, now_ms=now, max_bytes=s.max_event_bytes, max_future_ms=s.max_future_ms
            ),
        )
        await self._load_users({e.user_id for e in valid})
        records: list[LearnRecord] = []
        touched: dict[str, Trigger] = {}
        outcomes: dict[tuple[str, str], dict[str, int]] = {}
        for event in valid:
            state = self.cache[event.user_id]
            if event.event_id in state.seen_events:
                self.metrics.events.labels(event.type, "duplicate").inc()
                continue
            record = self._learn(state, event)
            records.append(record)
            attribute(
                self.experiments,
                self.exposed.get(event.user_id),
                event_type=event.type,
                item_id=event.item_id,
                completed=record.kind == "watch"
                and (record.completion or 0.0) >= self.settings.completion_threshold,
                now_ms=now,
                outcomes=outcomes,
            )
            touched[event.user_id] = Trigger(event.event_id, event.ts)
            self.metrics.events.labels(event.type, "applied").inc()
        # decided before the write, which records every refresh these events owe
        due = [(u, t) for u, t in touched.items() if self.scheduler.on_event(u, t, now)]
        if touched or records:
            await self._persist(
                [self.cache[u] for u in touched],
                records,
                now,
                outcomes,
                owed=self._owed(touched, now),
            )
        for record in records:
            self.engine.apply(record)
        self.metrics.model_records.labels("own").inc(len(records))
        if rejected:
            await self._dead_letter(rejected)
        await self._refresh(due, trigger_kind="event")

    def _owed(self, touched: dict[str, Trigger], now: int) -> dict[str, tuple[Trigger, int]]:
        """The refreshes ``touched`` users are owed, due within the coalescing interval."""
        due = now + self.settings.refresh_interval_ms
        return {u: (t, due) for u, t in touched.items()}

    def _learn(self, state: UserState, event: Event) -> LearnRecord:
        """Apply one new event to the user's state and the ranker (``pipeline.model.learn``)."""
        signal = event_signal(self.engine, event, threshold=self.settings.completion_threshold)
        return learn_event(self.engine, state, event, signal, self.feature_params)

    async def _load_users(self, user_ids: set[str]) -> None:
        missing = [u for u in user_ids if u not in self.cache]
        if missing:
            loaded = await retry_forever(
                lambda: self.users.load_many(missing),
                what="redis user load",
                on_error=lambda _: self.metrics.redis_errors.inc(),
            )
            self.cache.update(loaded)
        for u in user_ids:
            self.cache.move_to_end(u)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        self.metrics.cached_users.set(len(self.cache))

    async def _persist(
        self,
        states: list[UserState],
        records: list[LearnRecord],
        now: int,
        outcomes: dict[tuple[str, str], dict[str, int]] | None = None,
        owed: dict[str, tuple[Trigger, int]] | None = None,
    ) -> None:
        """One transaction: users' changes, model-log entry, activity, experiment outcomes.

        Outcome counters share the transaction with the events' de-duplication marks, so a
        redelivered event is credited exactly once too; so do the owed list refreshes
        (``pipeline.stores.owed``), so no crash can leave an event without its refresh.
        """
        batch_id = self.model_log.new_batch_id()
        items, self._pending_items = self._pending_items, []

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for state in states:
                    self.users.queue_save(pipe, state, now)
                self.model_log.queue_append(pipe, batch_id, records, items)
                if states:
                    pipe.zadd(self.keys.active_users, {st.user_id: now for st in states})
                for (name, arm), counts in (outcomes or {}).items():
                    for key, inc in counts.items():
                        pipe.hincrby(self.keys.experiment(name, arm), key, inc)
                self.owed.queue_owe(pipe, owed or {})
                await pipe.execute()

        await retry_forever(
            write, what="redis batch write", on_error=lambda _: self.metrics.redis_errors.inc()
        )
        for state in states:
            state.mark_clean()

    async def _dead_letter(self, rejected: list[tuple[RawMessage, Rejected]]) -> None:
        now = wall_ms()
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
        await retry_forever(
            lambda: self.publisher.publish(self.settings.topic_dlq, records),
            what="kafka dead-letter send",
            retryable=(Exception,),
            on_error=lambda _: self.metrics.kafka_errors.inc(),
        )

    # ------------------------------------------------------------------ items
    async def handle_items(self, messages: Sequence[RawMessage]) -> None:
        """Catalogue updates: applied here and shared with the other workers via the log."""
        items, rejected = split_valid(
            messages, lambda raw: parse_item(raw, max_bytes=self.settings.max_event_bytes)
        )
        for item in items:
            self.engine.upsert_item(item_info(item))
        if items:
            self.engine.refresh_indexes(wall_ms())
            self._pending_items.extend(items)
            await self._persist([], [], wall_ms())
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
        await self._load_users({c.user_id for c in controls})
        touched: dict[str, Trigger] = {}
        for control in controls:
            state = self.cache[control.user_id]
            apply_control(state.controls, control, n_events=state.n_events)
            touched[control.user_id] = Trigger(control.control_id, control.ts)
            self.metrics.controls.labels(str(control.type)).inc()

        now = wall_ms()
        due = [(u, t) for u, t in touched.items() if self.scheduler.on_event(u, t, now)]

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for user_id in touched:
                    self.users.queue_save_controls(pipe, self.cache[user_id])
                self.owed.queue_owe(pipe, self._owed(touched, now))
                await pipe.execute()

        await retry_forever(
            write, what="redis controls write", on_error=lambda _: self.metrics.redis_errors.inc()
        )
        await self._refresh(due, trigger_kind="control")

    async def _forget(self, user_ids: list[str]) -> None:
        """Delete every key of the users, then publish a non-personalised list for each.

        The list (trending, no personal data) replaces the personalised one for consumers of
        the topic and of the recs key; the user is personalised again from their next event.
        """
        for user_id in user_ids:
            self.cache.pop(user_id, None)
            self.scheduler.forget(user_id)

        async def delete() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for user_id in user_ids:
                    pipe.delete(*self.keys.user_keys(user_id))
                    pipe.zrem(self.keys.active_users, user_id)
                    self.owed.queue_forget(pipe, user_id)
                await pipe.execute()

        await retry_forever(
            delete, what="redis forget", on_error=lambda _: self.metrics.redis_errors.inc()
        )
        for user_id in user_ids:
            self.cache[user_id] = UserState(user_id)
        await self._refresh([(u, Trigger(None, None)) for u in user_ids], trigger_kind="forget")
        for user_id in user_ids:
            self.cache.pop(user_id, None)
            self.scheduler.forget(user_id)
        self.metrics.forgotten.inc(len(user_ids))
        log.info("forgot users count=%d", len(user_ids))

    # ------------------------------------------------------------------ shared model
    async def sync_model(self) -> None:
        """Apply the learn records and items other workers appended to the log."""
        records, items = await retry_forever(
            self.model_log.read_new,
            what="model log read",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )
        for item in items:
            self.engine.upsert_item(item_info(item))
        if items:
            self.engine.refresh_indexes(wall_ms())
        for record in records:
            self.engine.apply(record)
        self.metrics.model_records.labels("peer").inc(len(records))

    async def snapshot_model(self) -> None:
        """Sync, then write a snapshot unless another worker just did."""
        await self.sync_model()
        version = await self.model_log.write_snapshot(
            self.engine, lock_seconds=self.settings.model_snapshot_seconds * 0.9
        )
        if version is not None:
            self.model_version = version
            self.metrics.model_version.set(version)

    async def sweep_segments(self) -> None:
        """Move users who went quiet to the dormant segment (see ``pipeline.features.segments``)."""
        s = self.settings
        await retry_forever(
            lambda: sweep_dormant(
                self.redis,
                self.keys,
                now_ms=wall_ms(),
                dormant_after_ms=int(s.dormant_after_seconds * 1000),
                ttl_ms=s.user_ttl_seconds * 1000,
            ),
            what="redis segment sweep",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def refresh_trending(self) -> None:
        """Rebuild trending indexes and publish them as ``recloop:trending:*`` sorted sets."""
        self.engine.refresh_indexes(wall_ms())
        segments = {seg: self.engine.trending(seg, 100) for seg in self.engine.stats.trend}

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for seg, items in segments.items():
                    key = self.keys.trending(seg)
                    pipe.delete(key)
                    if items:
                        pipe.zadd(key, {item: len(items) - rank for rank, item in enumerate(items)})
                await pipe.execute()

        await retry_forever(
            write, what="redis trending write", on_error=lambda _: self.metrics.redis_errors.inc()
        )
