"""The batch processor in-process: what one batch changes in Redis, the models and the lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pipeline.model.catalog import ItemInfo
from pipeline.stores.batch import BatchStore, EncodedBatch, WriteResult
from pipeline.stores.commands import send
from tests.component.conftest import Harness, run


def _catalogue(h: Harness) -> None:
    for k in range(30):
        h.worker.models.upsert_item(ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0))
    h.worker.recommender.refresh_indexes(h.clock.now_ms())


async def _features(h: Harness, user: str) -> dict[str, str]:
    raw: Any = await h.redis.hgetall(h.key("features", user))
    return {k.decode(): v.decode() for k, v in raw.items()}


def test_a_batch_persists_features_and_publishes_the_same_list_to_redis_and_kafka(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("u1", "i1"), h.event("u1", "i4", kind="click"))
            feats = await _features(h, "u1")
            assert (feats["n_watch"], feats["n_click"]) == ("1", "1")
            (doc,) = h.lists("u1")
            assert doc["trigger_event_id"] is not None and doc["items"]
            stored = await h.redis.get(h.key("recs", "u1"))
            assert orjson.loads(stored) == doc
            assert {i["item_id"] for i in doc["items"]}.isdisjoint({"i1", "i4"})

    run(scenario())


def test_duplicates_in_a_batch_and_a_redelivered_batch_count_once(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            first = h.event("u2", "i2", kind="click", event_id="e-1")
            second = h.event("u2", "i3", event_id="e-2")
            await h.events(first, first, second)
            applied = h.worker.models.records_applied
            await h.events(first, second)  # redelivered after a crash
            await h.start()  # a restart reloads the user from Redis
            await h.events(first, second)
            feats = await _features(h, "u2")
            assert (feats["n_click"], feats["n_watch"], feats["n_events"]) == ("1", "1", "2")
            assert applied == 2
            assert h.worker.models.records_applied in (0, 2)  # fresh worker: nothing new

    run(scenario())


def test_a_burst_is_coalesced_into_one_deferred_list_with_the_latest_event(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("u3", "i1", event_id="a"))
            h.clock.advance(100)  # within the 500 ms coalescing interval
            await h.events(h.event("u3", "i2", event_id="b"))
            h.clock.advance(100)
            await h.events(h.event("u3", "i5", event_id="c"))
            assert [d["trigger_event_id"] for d in h.lists("u3")] == ["a"]
            await h.worker.flush_pending()  # not yet due
            assert len(h.lists("u3")) == 1
            h.clock.advance(400)
            await h.worker.flush_pending()
            assert [d["trigger_event_id"] for d in h.lists("u3")] == ["a", "c"]

    run(scenario())


def test_bad_messages_are_dead_lettered_with_reason_and_original_bytes(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(b"not json", h.event("u4", "i1"), {"type": "watch"})
            letters = h.sender.values(h.settings.topic_dlq)
            assert [d["reason"] for d in letters] == ["not_json", "missing_field"]
            assert letters[0]["original_text"] == "not json"
            assert (await _features(h, "u4"))["n_watch"] == "1"

    run(scenario())


class FailingOnce:
    """A batch store whose first write fails with a bug (not an outage)."""

    def __init__(self, inner: BatchStore) -> None:
        self.inner = inner
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send(self, batch: EncodedBatch) -> WriteResult:
        if not self.failed:
            self.failed = True
            msg = "injected bug"
            raise RuntimeError(msg)
        return await self.inner.send(batch)


def test_a_retried_batch_teaches_every_model_once(like_ranker_harness: Harness) -> None:
    """The batch fails after learning, is retried with fresh state: nothing learns twice."""

    async def scenario() -> None:
        async with like_ranker_harness as h:
            _catalogue(h)
            processor = h.worker.processor
            failing = FailingOnce(processor.batches)
            processor.batches = failing  # type: ignore[assignment]
            ranker_before = h.worker.models.ranker.updates
            await h.events(h.event("u5", "i1"), h.event("u5", "i2", kind="skip", watch_seconds=1.0))
            assert failing.failed
            assert h.worker.models.records_applied == 2
            assert h.worker.models.ranker.updates - ranker_before == 2
            assert (await _features(h, "u5"))["n_events"] == "2"

    run(scenario())


def test_a_batch_logged_by_a_worker_killed_before_its_user_writes_is_learned_once(
    harness: Harness,
) -> None:
    """The model log's entry went out, the users' writes did not: redelivery counts once.

    The new owner learns the redelivered events again (their users never saw them) and logs
    them again under a new batch id; it catches up with the log when its partitions change,
    so it and every peer refuse the records whose event offset the log taught already.
    """

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            dead = h.worker
            owner = await h.start()  # running already, its last model sync before the entry
            _catalogue(h)
            raws = [h.raw(h.event("u8", f"i{k}", event_id=f"z{k}")) for k in (1, 2, 3)]
            prepared = await dead.processor.prepare(raws)
            assert prepared.first is not None
            await send(h.redis, prepared.first.encoded.shared)  # then the worker died
            owner.on_partitions_changed()  # its partitions move to the owner
            await owner.processor.handle_events(raws)  # Kafka redelivers the batch
            assert (await _features(h, "u8"))["n_events"] == "3"
            assert owner.models.records_applied == 3
            await owner.sync_model()  # its own entry comes back: nothing more to apply
            assert owner.models.records_applied == 3
            peer = await h.start()  # reads both entries of the log
            assert peer.models.records_applied == 3

    run(scenario())


def test_forget_deletes_the_user_and_tombstones_their_lists(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("u6", "i1"))
            assert h.lists("u6")
            assert "u6" in h.worker.models.user_knn.users()  # the worker's user-kNN knows u6
            forget = {"control_id": "f1", "type": "forget", "user_id": "u6", "ts": h.clock.now_ms()}
            raw = h.raw(forget, h.settings.topic_controls)
            await h.worker.processor.handle_controls([raw])
            kinds = ("features", "history", "excluded", "events", "recs", "controls", "meta")
            assert await h.redis.exists(*[h.key(k, "u6") for k in kinds]) == 0
            assert h.sender.tombstones(h.settings.topic_recommendations) == [b"u6"]
            knn = h.worker.models.user_knn
            assert "u6" not in knn.users() and knn.entries() == knn.liked_items() == 0

    run(scenario())


def test_a_refresh_owed_by_a_dead_worker_is_rescued_from_redis(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("u7", "i1", event_id="x1"))
            h.clock.advance(100)
            await h.events(h.event("u7", "i2", event_id="x2"))  # deferred, owed in Redis
            await h.start()  # the owner died without handing over
            _catalogue(h)
            h.clock.advance(1_000)
            assert await h.worker.refresher.rescue_owed() == 0  # not overdue yet
            h.clock.advance(int(h.settings.refresh_rescue_after_seconds * 1000))
            assert await h.worker.refresher.rescue_owed() == 1
            assert h.lists("u7")[-1]["trigger_event_id"] == "x2"
            assert await h.worker.refresher.rescue_owed() == 0  # settled

    run(scenario())


def test_a_deferred_refresh_waits_for_its_batch_write_and_settles_what_it_owes(
    harness: Harness,
) -> None:
    """A coalesced refresh never runs while its batch's write is in flight.

    The batch records the refresh as owed in that write; a list published before it could
    not settle the record, which was then rescued and published again 15 s later (seen as
    16-17 s outliers in the freshness benchmark).
    """

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("u9", "i1", event_id="y1"))  # refreshed at once
            h.clock.advance(100)
            processor = h.worker.processor
            prepared = await processor.prepare([h.raw(h.event("u9", "i2", event_id="y2"))])
            h.clock.advance(1_000)  # the deferred refresh is due; the write is not done
            await h.worker.flush_pending()
            assert [d["trigger_event_id"] for d in h.lists("u9")] == ["y1"]
            await processor.commit(prepared)
            await h.worker.flush_pending()
            assert [d["trigger_event_id"] for d in h.lists("u9")] == ["y1", "y2"]
            h.clock.advance(int(h.settings.refresh_rescue_after_seconds * 1000) + 1_000)
            assert await h.worker.refresher.rescue_owed() == 0  # the y2 list settled it
            assert len(h.lists("u9")) == 2

    run(scenario())


def test_under_overload_a_users_events_share_one_list(harness: Harness) -> None:
    """30 s of work behind: ten events of one user in ten batches give two lists, not ten."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            h.worker.refresher.set_backlog(30.0)
            for k in range(10):
                h.clock.advance(1_000)
                await h.events(h.event("u8", f"i{k}", event_id=f"o{k}"))
            assert [d["trigger_event_id"] for d in h.lists("u8")] == ["o0"]
            h.worker.refresher.set_backlog(0.0)  # caught up
            await h.worker.flush_pending()
            assert [d["trigger_event_id"] for d in h.lists("u8")] == ["o0", "o9"]

    run(scenario())


def test_a_late_event_at_a_full_dedupe_set_is_still_a_duplicate_after_a_restart(
    harness_factory: Callable[..., Harness],
) -> None:
    # The set is trimmed in Redis by rank of score: scored by event time, a late event
    # (an old ts) at a full set would be the first trimmed and its redelivery applied again.
    async def scenario() -> None:
        async with harness_factory(dedupe_ids_per_user=10) as h:
            _catalogue(h)
            now = h.clock.now_ms()
            await h.events(*(h.event("u9", f"i{k}", event_id=f"e{k}", ts=now) for k in range(10)))
            late = h.event("u9", "i7", kind="click", event_id="late", ts=now - 86_400_000)
            await h.events(late)
            await h.start()  # a restart reloads the user from Redis
            await h.events(late)  # redelivered
            feats = await _features(h, "u9")
            assert (feats["n_click"], feats["n_events"]) == ("1", "11")
            members = await h.redis.zrange(h.key("events", "u9"), 0, -1)
            assert [m.decode() for m in members] == [f"e{k}" for k in range(1, 10)] + ["late"]

    run(scenario())


def test_the_worker_trains_the_learning_to_rank_layer_on_the_list_it_published(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            for k, item in enumerate(("i1", "i2", "i3")):  # other users: co-occurrence
                await h.events(h.event(f"o{k}", item, event_id=f"o{k}-1"))
                await h.events(h.event(f"o{k}", "i9", event_id=f"o{k}-2"))
            await h.events(h.event("u9", "i1", event_id="u9-1"))
            (doc,) = h.lists("u9")  # the list the user is shown; its head is kept
            chosen = doc["items"][0]["item_id"]
            before = h.worker.models.reranker.updates
            h.clock.advance(1_000)
            await h.events(h.event("u9", chosen, event_id="u9-2"))
            assert h.worker.models.reranker.updates > before  # chosen against the head

    run(scenario())


def test_the_like_ranker_is_trained_only_when_an_experiment_arm_reads_it(
    harness: Harness, like_ranker_harness: Harness
) -> None:
    """No list reads the P(like) ranker by default: the worker skips a quarter of its learn
    step. An arm with ``ranker_power`` > 0 makes it train on every watch and skip."""

    async def scenario(h: Harness, user: str) -> tuple[bool, int]:
        async with h:
            _catalogue(h)
            before = h.worker.models.ranker.updates
            await h.events(h.event(user, "i1"), h.event(user, "i2", kind="skip", watch_seconds=1.0))
            assert h.worker.models.records_applied == 2
            assert h.lists(user)
            return h.worker.models.params.like_ranker, h.worker.models.ranker.updates - before

    async def both() -> None:
        assert await scenario(harness, "r1") == (False, 0)
        assert await scenario(like_ranker_harness, "r2") == (True, 2)

    run(both())
