"""One worker, composed: the single place where its parts are built and wired.

``start_worker`` loads the shared models, then builds the batch processor from its stores,
a list publisher, a refresher, a clock and the metrics. ``agents.app`` calls it when the
Faust worker starts, hands batches to ``Worker.processor`` and calls the periodic steps from
timers; tests build the same object around a ``ManualClock`` and a recording sender.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Sequence

from pipeline.clock import Clock, SystemClock
from pipeline.config import Settings
from pipeline.events.ingest import RawMessage
from pipeline.kafka.partitioning import key_partitioner
from pipeline.lists.experiments import load_experiments, reads_like_ranker
from pipeline.lists.params import ListParams
from pipeline.lists.recommend import Recommender
from pipeline.model.models import ModelParams, SharedModels
from pipeline.publish.ports import RecordSender
from pipeline.publish.publisher import ListPublisher
from pipeline.publish.refresher import Refresher
from pipeline.publish.withdraw import Withdrawals
from pipeline.stores.availability import INDEX_HOLDERS, WITHDRAW_LIST, AvailabilityStore
from pipeline.stores.batch import BatchStore
from pipeline.stores.client import RedisClient
from pipeline.stores.commands import load_scripts
from pipeline.stores.experiments import COUNT_OUTCOMES
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.lists import WRITE_LIST, RedisListStore
from pipeline.stores.model_log import ModelLog
from pipeline.stores.segments import MARK_DORMANT, sweep_dormant
from pipeline.stores.trending import REPLACE_ZSET, write_trending
from pipeline.stores.users import APPLY_USER, LOAD_USER, UserStore
from pipeline.worker.adapters import CachedUsers, DurableListStore, DurableSender
from pipeline.worker.availability import ItemAvailability
from pipeline.worker.cache import UserCache
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.pipeline import BatchPipeline
from pipeline.worker.processor import BatchProcessor, PreparedBatch
from pipeline.worker.retry import retry_forever
from pipeline.worker.sharing import ModelSharing

log = logging.getLogger(__name__)

HAND_OVER_SECONDS = 5.0
RATE_WINDOW_SECONDS = 5.0

SCRIPTS = (
    APPLY_USER,
    LOAD_USER,
    WRITE_LIST,
    WITHDRAW_LIST,
    INDEX_HOLDERS,
    COUNT_OUTCOMES,
    MARK_DORMANT,
    REPLACE_ZSET,
)
"""Every Lua script a worker sends, loaded on every primary at start (NOSCRIPT reloads)."""


def partitioning(settings: Settings) -> Partitioning:
    """Users' partitions: Kafka's default partitioner over ``topic_partitions``."""
    return Partitioning(settings.topic_partitions, key_partitioner(settings.topic_partitions))


class Worker:
    """A started worker: the processor plus the periodic steps the app's timers call."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: RedisClient,
        partitions: Partitioning,
        models: SharedModels,
        recommender: Recommender,
        sharing: ModelSharing,
        processor: BatchProcessor,
        refresher: Refresher,
        availability: ItemAvailability,
        clock: Clock,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.partitions = partitions
        self.keys = RedisKeys(settings.redis_namespace)
        self.models = models
        self.recommender = recommender
        self.sharing = sharing
        self.processor = processor
        self.refresher = refresher
        self.clock = clock
        self.metrics = metrics
        self.availability = availability
        processor.catch_up = self.sync_model
        self._done: deque[tuple[float, int]] = deque()
        self.events: BatchPipeline[Sequence[RawMessage], PreparedBatch] = BatchPipeline(
            processor.prepare,
            processor.commit,
            processor.handle_events,
            reset=processor.reset,
            depth=settings.batches_in_flight,
        )
        # read when scraped: a value set at each submit would go stale while batches finish
        metrics.in_flight.set_function(lambda: self.events.in_flight)

    def on_partitions_changed(self, owned: set[int] | None = None) -> None:
        """Partitions moved: cached user states may now be written by another worker.

        ``owned``: the partitions of the events topic this worker now owns (whose lists it
        sweeps when an item is withdrawn).
        """
        self.processor.reset()
        if owned is not None:
            self.availability.owned = owned

    async def sync_availability(self) -> None:
        """Apply availability changes of other workers and passed windows; sweep lists."""
        gone = await self.availability.sync()
        if gone:
            await self.events.exclusive(lambda: self.availability.sweep(gone))

    def note_backlog(self, events_behind: int, events_done: int) -> None:
        """The consumer is ``events_behind`` behind after handling ``events_done`` more.

        The backlog in seconds of work (events behind / recent rate) stretches refresh
        coalescing under overload (``pipeline.publish.coalesce``).
        """
        now = time.monotonic()
        self._done.append((now, events_done))
        while self._done and now - self._done[0][0] > RATE_WINDOW_SECONDS:
            self._done.popleft()
        span = max(now - self._done[0][0], 1.0)
        rate = max(sum(n for _, n in self._done) / span, 1.0)
        self.refresher.set_backlog(events_behind / rate)
        self.metrics.backlog_seconds.set(events_behind / rate)

    async def sync_model(self) -> None:
        """Apply the learn records and items other workers appended to the log."""
        if await self.sharing.sync(self.models):
            self.recommender.refresh_indexes(self.clock.now_ms())

    async def snapshot_model(self) -> None:
        """Write a model snapshot unless another worker just did."""
        await self.sharing.snapshot(
            self.models, lock_seconds=self.settings.model_snapshot_seconds * 0.9
        )

    async def refresh_trending(self) -> None:
        """Rebuild the candidate indexes and publish trending as ``recloop:trending:*``."""
        self.recommender.refresh_indexes(self.clock.now_ms())
        names = self.models.stats.segment_names()
        now = self.clock.now_ms()
        segments = {seg: self.recommender.trending(seg, 100, now) for seg in names}
        await retry_forever(
            lambda: write_trending(self.redis, self.keys, segments),
            what="redis trending write",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def sweep_segments(self) -> None:
        """Move users who went quiet to the dormant segment (``pipeline.stores.segments``)."""
        s = self.settings
        await retry_forever(
            lambda: sweep_dormant(
                self.redis,
                self.keys,
                self.partitions,
                now_ms=self.clock.now_ms(),
                dormant_after_ms=int(s.dormant_after_seconds * 1000),
                ttl_ms=s.user_ttl_seconds * 1000,
            ),
            what="redis segment sweep",
            on_error=lambda _: self.metrics.redis_errors.inc(),
        )

    async def flush_pending(self) -> None:
        """Run deferred (coalesced) refreshes whose interval has passed."""
        await self.refresher.flush_due()

    async def refresh_stale(self) -> None:
        """Refresh active users whose list is old."""
        await self.refresher.refresh_stale()

    async def rescue_owed(self) -> None:
        """Refresh lists a dead worker owed (see ``pipeline.publish.refresher``)."""
        await self.refresher.rescue_owed()

    async def hand_over(self) -> None:
        """Finish the batches in flight, then run deferred refreshes (partitions move)."""
        try:
            await asyncio.wait_for(self.events.drain(), HAND_OVER_SECONDS)
        except TimeoutError:
            log.warning("batches still in flight at handover count=%d", self.events.in_flight)
        await self.refresher.hand_over()


async def start_worker(
    settings: Settings,
    *,
    redis: RedisClient,
    sender: RecordSender,
    worker_id: str,
    metrics: WorkerMetrics | None = None,
    clock: Clock | None = None,
    cache_size: int = 100_000,
) -> Worker:
    """Load the shared models and compose a worker around them."""
    metrics = metrics or WorkerMetrics()
    clock = clock or SystemClock()
    keys = RedisKeys(settings.redis_namespace)
    partitions = partitioning(settings)
    users = UserStore(
        redis,
        keys=keys,
        partitions=partitions,
        ttl_seconds=settings.user_ttl_seconds,
        history_cap=settings.history_size,
        excluded_cap=settings.dedupe_ids_per_user,
        events_cap=settings.dedupe_ids_per_user,
    )
    await retry_forever(
        lambda: load_scripts(redis, SCRIPTS),
        what="redis script load",
        on_error=lambda _: metrics.redis_errors.inc(),
    )
    model_log = ModelLog(
        redis, keys=keys, worker_id=worker_id, retention_seconds=3 * settings.model_snapshot_seconds
    )
    experiments = load_experiments(settings.experiments_file)
    list_params = ListParams.from_settings(settings)
    like_ranker = reads_like_ranker(list_params, experiments)
    params = dataclasses.replace(ModelParams.from_settings(settings), like_ranker=like_ranker)
    sharing = ModelSharing(model_log, params=params, clock=clock, metrics=metrics)
    models = await sharing.load()
    await sharing.sync(models)
    metrics.watch_model(models)
    recommender = Recommender(models, list_params)
    recommender.refresh_indexes(clock.now_ms())

    cache = UserCache(users, size=cache_size, metrics=metrics)
    durable_sender = DurableSender(sender, metrics)
    publisher = ListPublisher(
        recommender,
        experiments,
        store=DurableListStore(
            RedisListStore(redis, keys, partitions, ttl_seconds=settings.user_ttl_seconds),
            metrics,
        ),
        sender=durable_sender,
        topic=settings.topic_recommendations,
        clock=clock,
        sensor=metrics,
        version=lambda: sharing.list_version(models),
    )
    refresher = Refresher(
        publisher,
        CachedUsers(cache, users, metrics),
        clock=clock,
        interval_ms=settings.refresh_interval_ms,
        stale_ms=int(settings.stale_list_seconds * 1000),
        active_ms=int(settings.active_user_seconds * 1000),
        rescue_after_ms=int(settings.refresh_rescue_after_seconds * 1000),
        max_interval_ms=int(settings.refresh_max_coalesce_seconds * 1000),
    )
    processor = BatchProcessor(
        settings,
        models=models,
        recommender=recommender,
        cache=cache,
        batches=BatchStore(
            redis,
            keys,
            partitions=partitions,
            users=users,
            model_log=model_log,
            forget_marker_ms=settings.forget_marker_seconds * 1000,
        ),
        refresher=refresher,
        experiments=experiments,
        sender=durable_sender,
        clock=clock,
        metrics=metrics,
        partitions=partitions,
    )
    availability = ItemAvailability(
        models,
        recommender,
        AvailabilityStore(redis, keys, partitions, worker_id=worker_id),
        clock=clock,
        metrics=metrics,
        partitions=partitions.count,
    )
    availability.withdrawals = Withdrawals(
        publisher,
        refresher,
        availability.store,
        available=availability.available,
        owned=lambda: availability.owned,
        clock=clock,
    )
    await availability.load()
    processor.availability = availability
    worker = Worker(
        settings,
        redis=redis,
        partitions=partitions,
        models=models,
        recommender=recommender,
        sharing=sharing,
        processor=processor,
        refresher=refresher,
        availability=availability,
        clock=clock,
        metrics=metrics,
    )
    log.info(
        "worker started worker_id=%s model_version=%d like_ranker=%s",
        worker_id,
        sharing.version,
        "trained (an experiment arm reads it)" if like_ranker else "not trained (no list reads it)",
    )
    return worker
