"""Batches in flight: the next batch is learned while the previous one is being written."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.model.catalog import ItemInfo
from pipeline.stores.batch import BatchStore, EncodedBatch, WriteResult
from tests.component.conftest import Harness, run


def _catalogue(h: Harness) -> None:
    for k in range(30):
        h.worker.models.upsert_item(ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0))
    h.worker.recommender.refresh_indexes(h.clock.now_ms())


class SlowWrites:
    """A batch store whose writes wait until released (a slow Redis), recording their order."""

    def __init__(self, inner: BatchStore) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.started: list[int] = []
        self.fail_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send(self, batch: EncodedBatch) -> WriteResult:
        self.started.append(len(batch.users.expected))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            msg = "injected bug in the write"
            raise RuntimeError(msg)
        return await self.inner.send(batch)


async def _features(h: Harness, user: str) -> dict[str, str]:
    raw: Any = await h.redis.hgetall(h.key("features", user))
    return {k.decode(): v.decode() for k, v in raw.items()}


def test_the_next_batch_is_learned_while_the_previous_one_is_written(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            slow = SlowWrites(h.worker.processor.batches)
            h.worker.processor.batches = slow  # type: ignore[assignment]
            acks: list[str] = []
            first = [h.raw(h.event("p1", "i1", event_id="a1"))]
            second = [h.raw(h.event("p1", "i2", event_id="a2", kind="click"))]
            await h.worker.events.submit(first, lambda: acks.append("first"))
            await h.worker.events.submit(second, lambda: acks.append("second"))
            # both learned (the user's cached state holds both events), nothing written yet
            state = h.worker.processor.cache.states["p1"]
            assert state.n_events == 2 and acks == []
            assert h.worker.events.in_flight == 2
            gauge = "recloop_batches_in_flight"
            assert h.worker.metrics.registry.get_sample_value(gauge) == 2
            slow.release.set()
            await h.worker.events.drain()
            assert acks == ["first", "second"]
            # read when scraped: no submit came after the acks, and the gauge knows
            assert h.worker.metrics.registry.get_sample_value(gauge) == 0
            feats = await _features(h, "p1")
            assert (feats["n_watch"], feats["n_click"]) == ("1", "1")
            history = await h.redis.lrange(h.key("history", "p1"), 0, -1)
            assert len(history) == 2  # each write carried exactly its own batch's changes
            assert h.worker.models.records_applied == 2

    run(scenario())


def test_a_failed_write_with_a_batch_in_flight_runs_both_again_and_counts_once(
    like_ranker_harness: Harness,
) -> None:
    async def scenario() -> None:
        async with like_ranker_harness as h:
            _catalogue(h)
            slow = SlowWrites(h.worker.processor.batches)
            slow.fail_next = True
            h.worker.processor.batches = slow  # type: ignore[assignment]
            acks: list[str] = []
            ranker_before = h.worker.models.ranker.updates
            batch_a = [h.raw(h.event("p2", "i1", event_id="b1"))]
            batch_b = [h.raw(h.event("p2", "i4", event_id="b2"))]
            await h.worker.events.submit(batch_a, lambda: acks.append("a"))
            await h.worker.events.submit(batch_b, lambda: acks.append("b"))
            slow.release.set()
            await h.worker.events.drain()
            assert acks == ["a", "b"]  # both acknowledged, after being written
            feats = await _features(h, "p2")
            assert (feats["n_watch"], feats["n_events"]) == ("2", "2")
            assert h.worker.models.records_applied == 2
            assert h.worker.models.ranker.updates - ranker_before == 2

    run(scenario())


def test_controls_wait_for_the_batches_in_flight(harness: Harness) -> None:
    """A forget behind an unwritten batch: the batch lands first, then the forget."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            slow = SlowWrites(h.worker.processor.batches)
            h.worker.processor.batches = slow  # type: ignore[assignment]
            await h.worker.events.submit([h.raw(h.event("p3", "i1"))], lambda: None)
            forget = {"control_id": "f", "type": "forget", "user_id": "p3", "ts": h.clock.now_ms()}
            raw = h.raw(forget, h.settings.topic_controls)

            async def apply() -> None:
                await h.worker.processor.handle_controls([raw])

            task = asyncio.create_task(h.worker.events.exclusive(apply))
            await asyncio.sleep(0.05)
            assert not task.done()  # waiting for the batch's write
            slow.release.set()
            await task
            assert await h.redis.exists(h.key("features", "p3")) == 0

    run(scenario())


def test_batches_in_flight_are_counted_in_the_batch_metrics(harness: Harness) -> None:
    """recloop_batch_seconds and recloop_batch_size count pipelined batches (once each)."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            m = h.worker.metrics
            before = m.batch_seconds.collect()[0].samples
            count0 = next(s.value for s in before if s.name.endswith("_count"))
            for n in range(3):
                batch = [h.raw(h.event(f"m{n}", "i1", event_id=f"m{n}"))]
                await h.worker.events.submit(batch, lambda: None)
            await h.worker.events.drain()
            after = m.batch_seconds.collect()[0].samples
            assert next(s.value for s in after if s.name.endswith("_count")) == count0 + 3
            assert next(s.value for s in after if s.name.endswith("_sum")) > 0

    run(scenario())


def test_every_list_built_is_timed(harness: Harness) -> None:
    """recloop_list_build_seconds counts each list built, as many as were published here."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            value = h.worker.metrics.registry.get_sample_value
            for n in range(3):
                batch = [h.raw(h.event(f"t{n}", "i1", event_id=f"t{n}"))]
                await h.worker.events.submit(batch, lambda: None)
            await h.worker.events.drain()
            built = value("recloop_list_build_seconds_count")
            published = value("recloop_lists_published_total", {"trigger": "event"})
            assert built == published == 3
            assert (value("recloop_list_build_seconds_sum") or 0.0) > 0

    run(scenario())
