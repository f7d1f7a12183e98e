"""Publishing users' lists: when (now, coalesced, background, handover, rescue) and the I/O.

The refresh half of a worker's ``Processor``, as a mixin: it shares the processor's state
(user cache, scheduler, engine, clients), and the processor calls ``_refresh`` after the
writes that change a list. Timers call ``flush_pending``, ``refresh_stale`` and
``rescue_owed``; the Faust app calls ``hand_over`` before partitions move or the worker
stops. What a list *is* lives in ``pipeline.lists.build``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import redis.asyncio as aioredis

from pipeline.clock import wall_ms
from pipeline.config import Settings
from pipeline.events.ingest import Publisher
from pipeline.features.state import UserState
from pipeline.lists.build import build_list
from pipeline.lists.experiments import Experiment
from pipeline.lists.recommend import Engine
from pipeline.publish.coalesce import RefreshScheduler, Trigger
from pipeline.stores.keys import RedisKeys
from pipeline.stores.owed import OwedRefreshes
from pipeline.stores.users import UserStore
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever

log = logging.getLogger(__name__)


class ListRefresher:
    """Refreshing and publishing lists; mixed into ``pipeline.worker.processor.Processor``."""

    settings: Settings
    redis: aioredis.Redis
    keys: RedisKeys
    engine: Engine
    model_version: int
    experiments: tuple[Experiment, ...]
    publisher: Publisher
    metrics: WorkerMetrics
    scheduler: RefreshScheduler
    owed: OwedRefreshes
    users: UserStore
    cache: OrderedDict[str, UserState]
    cache_size: int
    # user -> the latest list an experiment user saw: (items, published ms, exp, arm)
    exposed: OrderedDict[str, tuple[frozenset[str], int, str, str]]

    async def _load_users(self, user_ids: set[str]) -> None:
        """Make ``user_ids`` present in ``cache`` (the processor loads them from Redis)."""
        raise NotImplementedError

    async def flush_pending(self) -> None:
        """Run deferred (coalesced) refreshes whose interval has passed."""
        due = self.scheduler.due(wall_ms())
        if due:
            await self._load_users({u for u, _ in due})
            await self._refresh(due, trigger_kind="deferred")

    async def rescue_owed(self, limit: int = 200) -> None:
        """Refresh, from Redis, lists still owed long after they were due (see module doc).

        Their worker died between committing the events and writing the list. Any worker
        may rescue any user: the write is conditional on the same refresh still being owed,
        so a list the owner wrote meanwhile is never overwritten. Rescued lists are not
        counted as experiment exposures.
        """
        now = wall_ms()
        grace_ms = int(self.settings.refresh_rescue_after_seconds * 1000)
        owed = await self.owed.overdue(now - grace_ms, limit)
        if not owed:
            return
        states = await self.users.load_many([u for u, _ in owed])
        version = f"knn/{self.model_version}.{self.engine.records_applied}"
        built = [
            build_list(self.engine, self.experiments, states[u], t, now_ms=now, version=version)
            for u, t in owed
        ]
        written = await self.owed.rescue(
            [(b.user_id, b.trigger, b.doc) for b in built], self.settings.user_ttl_seconds
        )
        rescued = [b for b, ok in zip(built, written, strict=True) if ok]
        if not rescued:
            return
        await retry_forever(
            lambda: self.publisher.publish(
                self.settings.topic_recommendations, [(b.user_id.encode(), b.doc) for b in rescued]
            ),
            what="kafka list send",
            retryable=(Exception,),
            on_error=lambda _: self.metrics.kafka_errors.inc(),
        )
        self.metrics.lists.labels("rescued").inc(len(rescued))
        log.warning("rescued owed list refreshes count=%d", len(rescued))

    async def hand_over(self, timeout: float = 5.0) -> None:
        """Run every deferred refresh now, before partitions are revoked or the worker stops.

        Offsets of the events behind those refreshes are already committed, so a refresh left
        pending here would be lost: the next owner never sees those events, and the user's
        list would miss their last event until they act again. Bounded by ``timeout`` so a
        Redis or Kafka outage cannot hold up a rebalance past the session timeout.
        """
        pending = self.scheduler.take_pending()
        if not pending:
            return
        try:
            await asyncio.wait_for(self._refresh_handover(pending), timeout)
        except TimeoutError:
            log.warning("handover refresh timed out users=%d", len(pending))

    async def _refresh_handover(self, pending: list[tuple[str, Trigger]]) -> None:
        await self._load_users({u for u, _ in pending})
        await self._refresh(pending, trigger_kind="deferred")

    async def refresh_stale(self, limit: int = 500) -> None:
        """Refresh active users whose list is older than ``stale_list_seconds``."""
        s = self.settings
        users = self.scheduler.stale(
            wall_ms(),
            stale_ms=int(s.stale_list_seconds * 1000),
            active_ms=int(s.active_user_seconds * 1000),
            limit=limit,
        )
        if users:
            await self._load_users(set(users))
            await self._refresh(
                [(u, Trigger(None, None)) for u in users], trigger_kind="background"
            )

    async def _refresh(self, due: list[tuple[str, Trigger]], *, trigger_kind: str) -> None:
        """Build, store and publish the lists of ``due`` users in one round of I/O."""
        if not due:
            return
        now = wall_ms()
        version = f"knn/{self.model_version}.{self.engine.records_applied}"
        built = [
            build_list(self.engine, self.experiments, state, trigger, now_ms=now, version=version)
            for state, trigger in ((self.cache.get(u), t) for u, t in due)
            if state is not None
        ]
        docs = [(b.user_id, b.doc, b.trigger) for b in built]
        exposures = {b.user_id: b.exposure for b in built if b.exposure is not None}

        async def write() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user_id, doc, trigger in docs:
                    pipe.set(self.keys.recs(user_id), doc, ex=self.settings.user_ttl_seconds)
                    if trigger.event_id is not None:
                        self.owed.queue_settle(pipe, user_id, trigger)
                for user_id, (_, exp_name, arm_name) in exposures.items():
                    pipe.hincrby(self.keys.experiment(exp_name, arm_name), "exposures", 1)
                    pipe.pfadd(self.keys.experiment_users(exp_name, arm_name), user_id)
                await pipe.execute()

        await retry_forever(
            write, what="redis list write", on_error=lambda _: self.metrics.redis_errors.inc()
        )
        await retry_forever(
            lambda: self.publisher.publish(
                self.settings.topic_recommendations, [(u.encode(), d) for u, d, _ in docs]
            ),
            what="kafka list send",
            retryable=(Exception,),
            on_error=lambda _: self.metrics.kafka_errors.inc(),
        )
        published = wall_ms()
        for user_id, (items, exp_name, arm_name) in exposures.items():
            self.exposed[user_id] = (items, published, exp_name, arm_name)
            self.exposed.move_to_end(user_id)
        while len(self.exposed) > self.cache_size:
            self.exposed.popitem(last=False)
        for user_id, _, trigger in docs:
            self.scheduler.mark_refreshed(user_id, published)
            if trigger.ts is not None:
                self.metrics.event_to_list.observe(max(0.0, (published - trigger.ts) / 1000))
        self.metrics.lists.labels(trigger_kind).inc(len(docs))
