"""One owner per user, forget is final, exactly-once without MULTI (single Redis and cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.model.catalog import ItemInfo
from pipeline.stores.client import is_cluster
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.testing import RecordingSender
from pipeline.worker.runtime import start_worker
from tests.component.conftest import Harness, run

EXPERIMENTS = {
    "experiments": [
        {
            "name": "own",
            "attribution_seconds": 3600,
            "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        }
    ]
}


def _catalogue(h: Harness) -> None:
    for k in range(30):
        h.worker.models.upsert_item(ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0))
    h.worker.recommender.refresh_indexes(h.clock.now_ms())


async def _counts(h: Harness, user: str) -> tuple[int, int, int]:
    raw: Any = await h.redis.hmget(h.key("features", user), ["n_click", "n_skip", "n_watch"])
    return tuple(int(v or 0) for v in raw)  # type: ignore[return-value]


def _metric(h: Harness, name: str, **labels: str) -> float:
    value = h.worker.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_the_harness_speaks_the_kind_of_redis_it_was_given(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            assert isinstance(h.redis, aioredis.RedisCluster) == await is_cluster(
                h.settings.redis_url
            )

    run(scenario())


def test_records_on_the_wrong_partition_are_reproduced_not_processed(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            event = h.event("hop-user", "i1", kind="click")
            right = h.partition_of("hop-user")
            wrong = (right + 1) % h.settings.topic_partitions
            await h.worker.processor.handle_events([h.raw(event, partition=wrong)])
            assert await _counts(h, "hop-user") == (0, 0, 0)  # not processed where it landed
            ((key, value),) = h.sender.records[h.settings.topic_events]
            assert key == b"hop-user" and orjson.loads(value or b"") == event
            assert _metric(h, "recloop_repartitioned_total", topic=h.settings.topic_events) == 1
            # where the producer's partitioner puts it, it is processed, once
            await h.worker.processor.handle_events([h.raw(value or b"", partition=right)])
            await h.worker.processor.handle_events([h.raw(value or b"", partition=right)])
            assert await _counts(h, "hop-user") == (1, 0, 0)

    run(scenario())


def test_a_stale_owner_conflicts_reloads_and_counts_every_event_once(
    harness_factory: Callable[..., Harness],
) -> None:
    """Worker A holds a user, B (the new owner) writes them, A writes again: nothing lost."""
    harness = harness_factory()

    async def scenario() -> None:
        async with harness as a:
            _catalogue(a)
            await a.events(*(a.event("split", f"i{k}", kind="click") for k in range(3)))
            b = await start_worker(
                a.settings, redis=a.redis, sender=RecordingSender(), worker_id="b", clock=a.clock
            )
            raws = [a.raw(a.event("split", f"i{k}", kind="click")) for k in range(3, 7)]
            await b.processor.handle_events(raws)
            assert await _counts(a, "split") == (7, 0, 0)
            # A still holds the user at the version it wrote: its next write conflicts
            await a.events(*(a.event("split", f"i{k}", kind="click") for k in range(7, 10)))
            assert await _counts(a, "split") == (10, 0, 0)
            assert _metric(a, "recloop_write_conflicts_total") == 1
            # B's redelivered batch (A committed nothing of it) changes nothing either
            await b.processor.handle_events(raws)
            assert await _counts(a, "split") == (10, 0, 0)
            history: Any = await a.redis.llen(a.key("history", "split"))
            events: Any = await a.redis.zcard(a.key("events", "split"))
            assert (history, events) == (10, 10)
            # the shared models too: A's conflicting round was logged with its three records,
            # its second round logged them again; a worker reading the log counts them once
            peer = await start_worker(
                a.settings, redis=a.redis, sender=RecordingSender(), worker_id="c", clock=a.clock
            )
            assert peer.models.records_applied == 10
            await a.worker.sync_model()  # and A itself, once it has B's records: the same
            assert a.worker.models.records_applied == 10

    run(scenario())


def test_forget_is_final_for_events_and_controls_sent_before_it(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            early = h.event("gone", "i1", ts=h.clock.now_ms() - 1_000)
            await h.events(h.event("gone", "i2"))
            forget_ts = h.clock.now_ms()
            forget = {"control_id": "f", "type": "forget", "user_id": "gone", "ts": forget_ts}
            await h.worker.processor.handle_controls([h.raw(forget, h.settings.topic_controls)])
            mute = {"control_id": "m", "type": "mute", "user_id": "gone", "ts": forget_ts - 5,
                    "category": "A"}  # fmt: skip
            await h.worker.processor.handle_controls([h.raw(mute, h.settings.topic_controls)])
            await h.events(early)  # a lagging copy of an event sent before the forget
            keys = RedisKeys(h.settings.redis_namespace)
            assert await h.redis.exists(*keys.user_keys("gone")) == 0
            assert _metric(h, "recloop_events_total", type="watch", outcome="forgotten") == 1
            assert _metric(h, "recloop_events_total", type="control", outcome="forgotten") == 1
            h.clock.advance(10)
            await h.events(h.event("gone", "i3", kind="click"))  # after the forget: a new start
            assert await _counts(h, "gone") == (1, 0, 0)

    run(scenario())


def test_forget_of_an_unknown_user_creates_nothing_that_names_them(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            user = f"never-{uuid.uuid4().hex[:6]}"
            forget = {"control_id": "f", "type": "forget", "user_id": user, "ts": h.clock.now_ms()}
            await h.worker.processor.handle_controls([h.raw(forget, h.settings.topic_controls)])
            found = [k async for k in h.redis.scan_iter(match=f"{h.settings.redis_namespace}:*")]
            assert found, "the forget marker"
            assert all(user.encode() not in k for k in found)
            keys = RedisKeys(h.settings.redis_namespace)
            p = h.partition_of(user)
            assert found == [keys.forgotten(p).encode()]
            assert not h.lists(user)
            assert h.sender.tombstones(h.settings.topic_recommendations) == [user.encode()]

    run(scenario())


def test_experiment_outcomes_count_once_whatever_is_redelivered(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    experiments = tmp_path / "experiments.json"
    experiments.write_bytes(orjson.dumps(EXPERIMENTS))
    harness = harness_factory(experiments_file=experiments, refresh_interval_ms=0)

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("exp-user", "i1"))
            (doc,) = h.lists("exp-user")
            arm = doc["variant"]
            shown = [i["item_id"] for i in doc["items"][:3]]
            batch = [h.raw(h.event("exp-user", item, kind="click")) for item in shown]
            await h.worker.processor.handle_events(batch)
            keys = RedisKeys(h.settings.redis_namespace)
            key = keys.experiment(h.partition_of("exp-user"), "own", arm)

            async def hits() -> int:
                return int(await h.redis.hget(key, "hits") or 0)

            assert await hits() == 3
            h.worker.processor.reset()  # as if a new owner got the batch again
            await h.worker.processor.handle_events(batch[1:])
            await h.worker.processor.handle_events(batch)
            assert await hits() == 3
            assert await _counts(h, "exp-user") == (3, 0, 1)

    run(scenario())


def test_scripts_forgotten_by_redis_are_loaded_again(harness: Harness) -> None:
    """A restarted master has an empty script cache: NOSCRIPT, then load and re-send."""

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("noscript", "i1"))
            await h.redis.script_flush()  # every primary of a cluster
            h.clock.advance(h.settings.refresh_interval_ms)
            await h.events(h.event("noscript", "i2", kind="click"))
            assert await _counts(h, "noscript") == (1, 0, 1)
            assert len(h.lists("noscript")) == 2

    run(scenario())


def test_a_settled_refresh_leaves_no_index_entry(harness: Harness) -> None:
    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("settle", "i1"))
            h.clock.advance(100)
            await h.events(h.event("settle", "i2", kind="click"))  # deferred: owed
            keys = RedisKeys(h.settings.redis_namespace)
            index = keys.owed(h.partition_of("settle"))
            assert await h.redis.zcard(index) == 1
            h.clock.advance(h.settings.refresh_interval_ms)
            await h.worker.flush_pending()
            assert await h.redis.zcard(index) == 0
            meta: Any = await h.redis.hgetall(h.key("meta", "settle"))
            assert b"owed" not in meta and int(meta[b"version"]) == 2

    run(scenario())


def test_a_dormant_user_returns_to_their_segments_on_the_next_event(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(dormant_after_seconds=60)

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            ctx = {"locale": "fr-FR"}
            await h.events(*(h.event("sleepy", f"i{k}", context=ctx) for k in range(6)))
            keys = RedisKeys(h.settings.redis_namespace)
            p = h.partition_of("sleepy")
            assert await h.redis.sismember(keys.segment(p, "locale", "fr-FR"), "sleepy")
            h.clock.advance(61_000)
            await h.worker.sweep_segments()
            assert await h.redis.sismember(keys.segment(p, "lifecycle", "dormant"), "sleepy")
            assert not await h.redis.sismember(keys.segment(p, "locale", "fr-FR"), "sleepy")
            assert not await h.redis.sismember(keys.segment(p, "lifecycle", "active"), "sleepy")
            assert await h.redis.zscore(keys.active(p), "sleepy") is None
            # the owner still caches the user as active: its next write conflicts, reloads
            await h.events(h.event("sleepy", "i9", context=ctx))
            assert _metric(h, "recloop_write_conflicts_total") == 1
            assert await h.redis.sismember(keys.segment(p, "locale", "fr-FR"), "sleepy")
            assert await h.redis.sismember(keys.segment(p, "lifecycle", "active"), "sleepy")
            assert not await h.redis.sismember(keys.segment(p, "lifecycle", "dormant"), "sleepy")
            assert await h.redis.zscore(keys.dormant(p), "sleepy") is None
            assert await _counts(h, "sleepy") == (0, 0, 7)

    run(scenario())


def test_forget_takes_a_dormant_user_out_of_every_index(
    harness_factory: Callable[..., Harness],
) -> None:
    harness = harness_factory(dormant_after_seconds=60)

    async def scenario() -> None:
        async with harness as h:
            _catalogue(h)
            await h.events(h.event("asleep", "i1", context={"device": "tv"}))
            h.clock.advance(61_000)
            await h.worker.sweep_segments()
            keys = RedisKeys(h.settings.redis_namespace)
            p = h.partition_of("asleep")
            assert await h.redis.zscore(keys.dormant(p), "asleep") is not None
            forget = {"control_id": "f", "type": "forget", "user_id": "asleep",
                      "ts": h.clock.now_ms()}  # fmt: skip
            await h.worker.processor.handle_controls([h.raw(forget, h.settings.topic_controls)])
            found = [k async for k in h.redis.scan_iter(match=f"{h.settings.redis_namespace}:*")]
            for key in found:
                kind = (await h.redis.type(key)).decode()
                members: Any = (
                    await h.redis.smembers(key) if kind == "set"
                    else await h.redis.zrange(key, 0, -1) if kind == "zset" else []
                )  # fmt: skip
                assert b"asleep" not in key and b"asleep" not in members, key

    run(scenario())
