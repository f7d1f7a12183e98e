"""Late and odd event times in the worker: history order, first_ts, freshness metrics."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.model.catalog import ItemInfo
from pipeline.stores.keys import RedisKeys
from pipeline.stores.reads import explanation
from pipeline.worker.metrics import EVENT_TIME_LAG_CAP_SECONDS
from tests.component.conftest import T0, Harness, run

YEAR_MS = 365 * 86_400_000


def _catalogue(h: Harness) -> None:
    for k in range(30):
        h.worker.models.upsert_item(ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0))
    h.worker.recommender.refresh_indexes(h.clock.now_ms())


def _sample(h: Harness, name: str) -> float:
    value = h.worker.metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


def test_a_years_old_late_watch_is_the_weakest_recent_source_not_the_strongest(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("late", "i1"), h.event("late", "i4"))
            h.clock.advance(1_000)
            await h.events(h.event("late", "i7", ts=T0 - 40 * YEAR_MS))
            stored: Any = await h.redis.lrange(h.key("history", "late"), 0, -1)
            assert [orjson.loads(r)[0] for r in stored] == ["i4", "i1", "i7"]  # newest first
            doc = await explanation(h.redis, h.settings, "late")
            recent = doc["signals"]["recent_positives"]  # strongest first
            assert [p["item_id"] for p in recent] == ["i4", "i1", "i7"]
            assert recent[-1]["weight"] < recent[0]["weight"]
            await h.start()  # reloaded from Redis: the same order
            state = (await h.worker.processor.cache.ensure({"late"}))["late"]
            assert [p.item_id for p in state.positives(20)] == ["i7", "i1", "i4"]

    run(scenario())


def test_first_ts_of_an_event_at_epoch_zero_survives_a_later_event(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("zero", "i1", ts=0))
            await h.events(h.event("zero", "i2", ts=5_000))
            raw: Any = await h.redis.hmget(h.key("features", "zero"), ["first_ts", "last_ts"])
            assert raw == [b"0", b"5000"]

    run(scenario())


def test_freshness_counts_from_receipt_and_event_time_lag_is_clamped(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("old", "i1", ts=T0 - 40 * YEAR_MS))  # received now
            assert _sample(h, "recloop_event_to_list_seconds_count") == 1
            assert _sample(h, "recloop_event_to_list_seconds_sum") == 0.0  # same clock tick
            assert _sample(h, "recloop_event_time_lag_seconds_sum") == EVENT_TIME_LAG_CAP_SECONDS
            await h.events(h.event("ahead", "i2", ts=T0 + 60_000))  # producer clock ahead
            assert _sample(h, "recloop_event_time_lag_seconds_count") == 2
            assert _sample(h, "recloop_event_time_lag_seconds_sum") == EVENT_TIME_LAG_CAP_SECONDS
            # a coalesced refresh is timed from the receipt of the event it reflects
            h.clock.advance(100)
            await h.events(h.event("old", "i3", event_id="later", ts=T0 - YEAR_MS))
            h.clock.advance(400)
            await h.worker.flush_pending()
            assert h.lists("old")[-1]["trigger_event_id"] == "later"
            assert _sample(h, "recloop_event_to_list_seconds_sum") == 0.4
            le_week = {"le": str(EVENT_TIME_LAG_CAP_SECONDS)}
            top = h.worker.metrics.registry.get_sample_value(
                "recloop_event_time_lag_seconds_bucket", le_week
            )
            assert top == 3  # decades and a year land in the finite top bucket

    run(scenario())


def test_a_rescued_list_is_timed_from_the_dead_workers_receipt(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("r", "i1", event_id="x1"))
            h.clock.advance(100)
            await h.events(h.event("r", "i2", event_id="x2"))  # deferred, owed in Redis
            owed: Any = await h.redis.hget(h.key("meta", "r"), "owed")
            assert owed == f"x2 {T0 + 100}@{T0 + 100}".encode()
            await h.start()  # the owner died without handing over
            _catalogue(h)
            h.clock.advance(20_000)
            assert await h.worker.refresher.rescue_owed() == 1
            assert _sample(h, "recloop_event_to_list_seconds_sum") == 20.0
            rescued = {"trigger": "rescued"}
            lists = h.worker.metrics.registry.get_sample_value(
                "recloop_lists_published_total", rescued
            )
            assert lists == 1  # the new worker's only list

    run(scenario())


def test_a_trigger_stored_by_an_earlier_version_is_rescued_and_settled(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("v1", "i1", event_id="y1"))
            keys = RedisKeys(h.settings.redis_namespace)
            index = keys.owed(h.partition_of("v1"))
            # as a worker before receipt times stored it: "<event_id> <ts>", a 3-field member
            await h.redis.hset(h.key("meta", "v1"), mapping={"owed": f"y1 {T0}", "owed_due": T0})
            await h.redis.zadd(index, {orjson.dumps(["v1", "y1", T0]): T0})
            h.clock.advance(20_000)
            assert await h.worker.refresher.rescue_owed() == 1
            assert h.lists("v1")[-1]["trigger_event_id"] == "y1"
            assert await h.redis.hget(h.key("meta", "v1"), "owed") is None
            assert await h.redis.zcard(index) == 0

    run(scenario())


def test_ids_over_the_limit_are_dead_lettered_and_at_the_limit_applied(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            longest, too_long = "u" * 256, "v" * 257
            await h.events(h.event(longest, "i1"), h.event(too_long, "i1"))
            (letter,) = h.sender.values(h.settings.topic_dlq)
            assert letter["reason"] == "invalid_value"
            assert letter["detail"] == "user_id: String should have at most 256 characters"
            assert await h.redis.exists(h.key("features", longest)) == 1
            assert await h.redis.exists(h.key("features", too_long)) == 0

    run(scenario())
