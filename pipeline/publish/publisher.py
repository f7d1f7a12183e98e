"""Publishing lists: build them, store them, send them; note what each user is shown.

``ListPublisher`` is composed from ports (``pipeline.publish.ports``): a list store, a record
sender, a clock and a metrics sensor. *What* a list is comes from ``pipeline.lists.build``;
*when* one is published is ``pipeline.publish.refresher``'s business.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence

from pipeline.clock import Clock
from pipeline.features.state import UserState
from pipeline.lists.build import BuiltList, Trigger, build_list
from pipeline.lists.experiment_outcomes import note_exposure
from pipeline.lists.experiments import Experiment
from pipeline.lists.recommend import Recommender
from pipeline.publish.ports import ListStore, PublishSensor, RecordSender


class ListPublisher:
    """Builds, stores and sends lists (one instance per worker)."""

    def __init__(
        self,
        recommender: Recommender,
        experiments: tuple[Experiment, ...],
        *,
        store: ListStore,
        sender: RecordSender,
        topic: str,
        clock: Clock,
        sensor: PublishSensor,
        version: Callable[[], str],
    ) -> None:
        self.recommender = recommender
        self.experiments = experiments
        self.store = store
        self.sender = sender
        self.topic = topic
        self.clock = clock
        self.sensor = sensor
        self.version = version
        # held while lists are stored and sent, and by a forget: no list built before a
        # forget reaches Redis or the topic after it
        self.lock = asyncio.Lock()

    def build(self, users: Sequence[tuple[UserState, Trigger]]) -> list[BuiltList]:
        """The users' lists as of now (pure apart from the clock).

        A list of an experiment arm is noted in the user's state at once (what the user is
        shown next, and their first exposure): the next batch, which may be prepared before
        this list is stored, credits the user's actions to it. The store records the same
        in the user's keys (``ListStore.write``), so a worker that loads the user later
        credits the same way.
        """
        now = self.clock.now_ms()
        version = self.version()
        built = []
        timer, on_built = time.perf_counter, self.sensor.on_list_built
        for state, trigger in users:
            started = timer()
            b = build_list(
                self.recommender, self.experiments, state, trigger, now_ms=now, version=version
            )
            on_built(timer() - started)
            if b.exposure is not None:
                note_exposure(state, b.exposure, now)
            built.append(b)
        return built

    async def publish(self, users: Sequence[tuple[UserState, Trigger]], kind: str) -> int:
        """Build, store, then send the users' lists; returns when the broker acknowledged.

        Returns the time (ms) the lists were published.
        """
        async with self.lock:
            return await self._deliver(self.build(users), kind)

    async def republish(
        self, chunks: Callable[[], AsyncIterator[Sequence[BuiltList]]], kind: str
    ) -> list[BuiltList]:
        """Send lists already rewritten in Redis (``chunks``), under the lock; all sent.

        Under one hold of the lock, so no list this worker built earlier is written
        meanwhile (``pipeline.publish.withdraw``). Each chunk is sent while the next one
        is rewritten.
        """
        sent: list[BuiltList] = []
        async with self.lock:
            sending: asyncio.Task[None] | None = None
            async for chunk in chunks():
                if sending is not None:
                    await sending
                sending = asyncio.create_task(self.send(chunk))
                sent += chunk
            if sending is not None:
                await sending
            self.observe(sent, kind, self.clock.now_ms())
        return sent

    async def deliver(self, built: Sequence[BuiltList], kind: str) -> int:
        """Store, then send lists built earlier; returns the time (ms) they were published."""
        async with self.lock:
            return await self._deliver(built, kind)

    async def _deliver(self, built: Sequence[BuiltList], kind: str) -> int:
        """Store, then send; the time (ms) the lists were published.

        The Redis key is written first, so a consumer of the topic that reads Redis next
        finds the same document; a list whose user is gone (forgotten) is neither stored nor
        sent.
        """
        if not built:
            return self.clock.now_ms()
        stored = await self.store.write(built)
        kept = [b for b, ok in zip(built, stored, strict=True) if ok]
        await self.send(kept)
        published = self.clock.now_ms()
        self.observe(kept, kind, published)
        return published

    async def send(self, built: Sequence[BuiltList]) -> None:
        """Send lists to the recommendations topic, keyed by user."""
        if built:
            await self.sender.send(self.topic, [(b.user_id.encode(), b.doc) for b in built])

    def observe(self, built: Sequence[BuiltList], kind: str, published: int) -> None:
        """Tell the sensor about lists published at ``published`` (ms).

        Freshness counts from when a worker received the trigger; the lag behind the
        event's own time is reported apart, since a late event says nothing about the
        pipeline's speed.
        """
        for b in built:
            if b.trigger.received_ms is not None:
                self.sensor.on_event_to_list(max(0.0, (published - b.trigger.received_ms) / 1000))
            if b.trigger.ts is not None:
                self.sensor.on_event_time_lag((published - b.trigger.ts) / 1000)
        self.sensor.on_lists(kind, len(built))
