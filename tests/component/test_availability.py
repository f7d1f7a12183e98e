"""Items that come and go (issue #17): withdrawn items leave every list, in Redis and on the
topic; tombstones; windows passing by the clock; items coming back; two workers; the API's
read-time filter. Single Redis and Redis Cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from pipeline.events.ingest import RawMessage
from pipeline.model.catalog import ItemInfo
from pipeline.stores.keys import RedisKeys
from pipeline.stores.reads import recommendations
from tests.component.conftest import Harness, run

USERS = [f"u{k}" for k in range(50)]
HELD = "hot"  # an item every user's list holds (newest and trending)


def _catalogue(h: Harness) -> None:
    now = h.clock.now_ms()
    for k in range(12):
        h.worker.models.upsert_item(
            ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0, published_ts=now - 10_000 - k)
        )
    h.worker.models.upsert_item(ItemInfo(HELD, ("A",), 600.0, published_ts=now - 1_000))
    h.worker.recommender.refresh_indexes(now)


async def _lists_for_everyone(h: Harness) -> None:
    await h.events(*[h.event(u, "i0") for u in USERS])
    h.clock.advance(1_000)


async def _stored(h: Harness, user: str) -> list[str]:
    raw: Any = await h.redis.get(h.key("recs", user))
    return [e["item_id"] for e in orjson.loads(raw)["items"]]


async def _all_hold(h: Harness, item_id: str) -> bool:
    return all([item_id in await _stored(h, u) for u in USERS])


def _item(h: Harness, doc: dict[str, Any]) -> RawMessage:
    return h.raw({"categories": ["A"], **doc}, h.settings.topic_items)


def _tombstone(h: Harness, item_id: str | None) -> RawMessage:
    partition = h.partition_of(item_id) if item_id else 0
    key = item_id.encode() if item_id else None
    return RawMessage(b"", h.settings.topic_items, partition, 999, key=key, tombstone=True)


async def _assert_gone(h: Harness, item_id: str, users: list[str]) -> None:
    for user in users:
        assert item_id not in await _stored(h, user), user
        last = h.lists(user)[-1]
        assert item_id not in [e["item_id"] for e in last["items"]], user


def test_a_withdrawn_item_leaves_all_50_lists_in_redis_and_on_the_topic(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            assert await _all_hold(h, HELD)
            sent = len(h.lists())
            await h.worker.processor.handle_items([_item(h, {"item_id": HELD, "available": False})])
            await _assert_gone(h, HELD, USERS)
            assert len(h.lists()) == sent + len(USERS)  # one patched list each, at once
            # then each list is ranked again (full length) as a deferred refresh
            h.clock.advance(h.settings.refresh_interval_ms)
            await h.worker.flush_pending()
            await _assert_gone(h, HELD, USERS)
            assert len(h.lists()) == sent + 2 * len(USERS)
            assert len(await _stored(h, USERS[0])) == len(await _stored(h, USERS[1]))
            # and the item is no candidate any more: not in new lists, not trending
            await h.events(h.event("newcomer", "i1"))
            assert HELD not in await _stored(h, "newcomer")
            assert HELD not in h.worker.recommender.trending(n=100, now_ts=h.clock.now_ms())

    run(scenario())


def test_a_tombstone_withdraws_like_available_false(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            await h.worker.processor.handle_items([_tombstone(h, HELD)])
            await _assert_gone(h, HELD, USERS)
            stored: Any = await h.redis.hget(
                RedisKeys(h.settings.redis_namespace).item_availability, HELD
            )
            assert stored == b"W"

    run(scenario())


def test_a_tombstone_without_a_key_is_dead_lettered(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            await h.worker.processor.handle_items([_tombstone(h, None)])
            (letter,) = h.sender.values(h.settings.topic_dlq)
            assert letter["reason"] == "missing_field"

    run(scenario())


def test_an_item_leaves_on_time_when_its_window_ends_and_comes_back(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            until = h.clock.now_ms() + 5_000
            await h.worker.processor.handle_items(
                [_item(h, {"item_id": HELD, "available_until_ts": until})]
            )
            await _lists_for_everyone(h)
            assert await _all_hold(h, HELD)
            h.clock.advance(3_999)  # 1 ms before the end: still there
            await h.worker.sync_availability()
            assert await _all_hold(h, HELD)
            h.clock.advance(1)
            await h.worker.sync_availability()
            await _assert_gone(h, HELD, USERS)
            # the channel goes live again: a candidate again
            await h.worker.processor.handle_items([_item(h, {"item_id": HELD, "available": True})])
            h.clock.advance(1_000)
            await h.events(h.event(USERS[0], "i2"))
            assert HELD in await _stored(h, USERS[0])

    run(scenario())


def test_an_item_scheduled_for_later_is_no_candidate_until_then(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            start = h.clock.now_ms() + 60_000
            await h.worker.processor.handle_items(
                [_item(h, {"item_id": HELD, "available_from_ts": start})]
            )
            await h.events(h.event("early", "i0"))
            assert HELD not in await _stored(h, "early")
            h.clock.advance(60_000)
            await h.worker.sync_availability()
            await h.events(h.event("early", "i1"))
            assert HELD in await _stored(h, "early")

    run(scenario())


def test_the_worker_owning_the_users_sweeps_their_lists(
    harness_factory: Callable[..., Harness],
) -> None:
    """Worker A consumes the withdrawal; worker B owns the users and learns it from the log."""

    async def scenario() -> None:
        a, b = harness_factory(), harness_factory()
        async with a, b:
            for h in (a, b):
                _catalogue(h)
            a.worker.on_partitions_changed(set())
            b.worker.on_partitions_changed(set(range(b.settings.topic_partitions)))
            await _lists_for_everyone(b)
            await a.worker.processor.handle_items([_item(a, {"item_id": HELD, "available": False})])
            assert a.lists() == []  # A owns no users: it swept nothing
            assert await _all_hold(b, HELD)
            await b.worker.sync_availability()
            await _assert_gone(b, HELD, USERS)

    run(scenario())


def test_a_restarted_worker_knows_what_is_withdrawn(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.worker.processor.handle_items([_tombstone(h, HELD)])
            await h.start()
            _catalogue(h)
            await h.events(h.event("later", "i0"))
            assert HELD not in await _stored(h, "later")

    run(scenario())


def test_the_api_never_serves_a_withdrawn_item(harness: Harness) -> None:
    """Read-time filter: the item is withdrawn before the rebuilt list is written."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            keys = RedisKeys(h.settings.redis_namespace)
            await h.redis.hset(keys.item_availability, HELD, "W")  # no worker swept yet
            for n in (None, 5):
                body, source = await recommendations(
                    h.redis, keys, USERS[0], n=n, locale=None, device=None, list_size=20,
                    now_ms=h.clock.now_ms(),
                )  # fmt: skip
                assert source == "pipeline"
                items = [e["item_id"] for e in orjson.loads(body)["items"]]
                assert HELD not in items and items
            assert HELD in await _stored(h, USERS[0])  # the stored list still held it

    run(scenario())


def test_forget_leaves_no_holders_entry(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            keys = RedisKeys(h.settings.redis_namespace)
            user = USERS[0]
            p = h.partition_of(user)
            assert await h.redis.zscore(keys.holders(p, HELD), user) is not None
            forget = {"control_id": "f", "type": "forget", "user_id": user, "ts": h.clock.now_ms()}
            await h.worker.processor.handle_controls([h.raw(forget, h.settings.topic_controls)])
            assert await h.redis.zscore(keys.holders(p, HELD), user) is None

    run(scenario())


def test_a_list_that_drops_an_item_leaves_its_holders(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            keys = RedisKeys(h.settings.redis_namespace)
            user = USERS[0]
            await h.events(h.event(user, HELD))  # watched: excluded from their next list
            assert HELD not in await _stored(h, user)
            assert await h.redis.zscore(keys.holders(h.partition_of(user), HELD), user) is None

    run(scenario())


def test_a_list_of_only_withdrawn_items_becomes_an_empty_list(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await _lists_for_everyone(h)
            user = USERS[0]
            held = await _stored(h, user)
            await h.worker.processor.handle_items(
                [_item(h, {"item_id": i, "available": False}) for i in held]
            )
            raw: Any = await h.redis.get(h.key("recs", user))
            doc = orjson.loads(raw)
            assert doc["items"] == [] and doc["user_id"] == user
            assert doc["generated_ts"] == h.clock.now_ms()
            assert await h.redis.ttl(h.key("recs", user)) > 0  # the key kept its TTL
            assert h.lists(user)[-1] == doc  # the topic got the same document

    run(scenario())


def test_plain_catalogue_updates_cost_no_availability_write(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            keys = RedisKeys(h.settings.redis_namespace)
            await h.worker.processor.handle_items(
                [_item(h, {"item_id": f"p{k}"}) for k in range(5)]
            )
            assert await h.redis.exists(keys.availability_log) == 0
            await h.worker.processor.handle_items([_item(h, {"item_id": "p1", "available": False})])
            await h.worker.processor.handle_items([_item(h, {"item_id": "p1"})])  # restored
            assert await h.redis.xlen(keys.availability_log) == 2
            assert await h.redis.hget(keys.item_availability, "p1") is None

    run(scenario())
