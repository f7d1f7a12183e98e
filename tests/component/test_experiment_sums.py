"""Experiment sums on a real Redis (single and cluster): exact, exactly once, forgettable.

The invariant checked throughout: each arm's sums in Redis equal the sums over its users of
what the users' own ``experiment`` hashes hold (values, squares, products, return flags,
lists), and the exposed set holds exactly those users. It must hold after a batch is
redelivered, after a worker dies between the counters and the users' writes (the next one
has no memory of what it showed), and after forgets, redelivered or half done.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pipeline.events.ingest import RawMessage
from pipeline.lists.experiment_outcomes import (
    EXPOSURES,
    RATIOS,
    SQUARED,
    arm_from_fields,
    returned_field,
    sq_field,
    xy_field,
)
from pipeline.lists.experiments import load_experiments
from pipeline.model.catalog import ItemInfo
from pipeline.stores.commands import send
from pipeline.stores.experiments import fields_of, read_arms, read_report
from pipeline.stores.forget import withdraw_from_arms
from pipeline.stores.keys import RedisKeys
from pipeline.worker.runtime import partitioning
from tests.component.conftest import Harness, run

EXPERIMENTS = {"experiments": [{"name": "sums", "attribution_seconds": 3600, "variants": [
    {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}]}  # fmt: skip
USERS = [f"xu{k}" for k in range(10)]
RETURN_S = 60


def _harness(factory: Callable[..., Harness], tmp_path: Path) -> Harness:
    path = tmp_path / "experiments.json"
    path.write_bytes(orjson.dumps(EXPERIMENTS))
    return factory(
        experiments_file=path, refresh_interval_ms=0, experiment_return_seconds=str(RETURN_S)
    )


def _catalogue(h: Harness) -> None:
    for k in range(30):
        h.worker.models.upsert_item(ItemInfo(f"i{k}", (("A", "B", "C")[k % 3],), 600.0))
    h.worker.recommender.refresh_indexes(h.clock.now_ms())


async def _state(h: Harness, users: list[str]) -> tuple[dict[str, Counter[str]], dict[str, Any]]:
    """(the arms' sums as stored, what the users' own hashes say they must be)."""
    declared = load_experiments(h.settings.experiments_file)
    keys = RedisKeys(h.settings.redis_namespace)
    arms = await read_arms(h.redis, keys, partitioning(h.settings), declared,
                           windows=(RETURN_S,), now_ms=h.clock.now_ms())  # fmt: skip
    stored = {variant: Counter({k: v for k, v in t.counters.items() if v})
              for (_, variant), t in arms.items()}  # fmt: skip
    expected: dict[str, Counter[str]] = {v: Counter() for v in stored}
    exposed: dict[str, set[str]] = {v: set() for v in stored}
    for user in users:
        arm, lists = arm_from_fields(fields_of(await h.redis.hgetall(keys.experiment_user(user))))
        if arm is None:
            continue
        e, values = expected[arm.variant], arm.values
        e.update({k: v for k, v in values.items()})
        e.update({sq_field(k): values[k] ** 2 for k in SQUARED if k in values})
        e.update({xy_field(x, y): values.get(x, 0) * values.get(y, 0) for x, y in RATIOS.values()})
        e.update({returned_field(s): 1 for s in arm.returned})
        e[EXPOSURES] += lists
        exposed[arm.variant].add(user)
        p = h.partition_of(user)
        score = await h.redis.zscore(keys.experiment_exposed(p, "sums", arm.variant), user)
        assert score == arm.first_ms, user
    for variant, t in arms.items():
        assert t.users == len(exposed[variant[1]]), variant
    return stored, {v: +c for v, c in expected.items()}


async def _assert_exact(h: Harness, users: list[str]) -> dict[str, Counter[str]]:
    stored, expected = await _state(h, users)
    assert stored == expected
    return stored


def _batch(h: Harness, rng: random.Random, users: list[str]) -> list[RawMessage]:
    """Clicks, watches and skips, on items of each user's latest list or not."""
    raws = []
    for _ in range(40):
        user = rng.choice(users)
        shown = [i["item_id"] for i in h.lists(user)[-1]["items"]]
        item = rng.choice(shown) if rng.random() < 0.6 else f"i{rng.randrange(30)}"
        kind = rng.choice(("click", "watch", "skip"))
        extra = {"watch_seconds": rng.choice((60.0, 590.0))} if kind == "watch" else {}
        raws.append(h.raw(h.event(user, item, kind=kind, **extra)))
    return raws


def test_sums_are_exact_and_redelivery_leaves_them_unchanged(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with _harness(harness_factory, tmp_path) as h:
            _catalogue(h)
            rng = random.Random(11)
            await h.events(*(h.event(u, "i1") for u in USERS))  # first lists: exposures
            h.clock.advance(1_000)
            raws = _batch(h, rng, USERS)
            await h.worker.processor.handle_events(raws)
            before = await _assert_exact(h, USERS)
            assert before["a"]["hits"] + before["b"]["hits"] > 0
            h.worker.processor.reset()  # a new owner gets the batch again, in part and whole
            await h.worker.processor.handle_events(raws[7:])
            await h.worker.processor.handle_events(raws)
            assert await _assert_exact(h, USERS) == before

    run(scenario())


def test_a_worker_dying_between_the_counters_and_the_users_writes_changes_nothing(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    """The next worker knows nothing of the lists shown but what the users' keys say."""

    async def scenario() -> None:
        async with _harness(harness_factory, tmp_path) as h:
            _catalogue(h)
            rng = random.Random(5)
            await h.events(*(h.event(u, "i2") for u in USERS))
            h.clock.advance(1_000)
            await h.worker.processor.handle_events(_batch(h, rng, USERS))
            h.clock.advance(1_000)
            raws = _batch(h, rng, USERS)
            prepared = await h.worker.processor.prepare(raws)
            assert prepared.first is not None
            await send(h.redis, prepared.first.encoded.shared)  # counters written, then death
            await h.start()  # a new worker process: empty cache, no lists in memory
            _catalogue(h)
            await h.worker.processor.handle_events(raws)
            stored = await _assert_exact(h, USERS)
            assert sum(stored[a]["actions"] for a in stored) >= 40 + len(USERS) - 5

    run(scenario())


def test_returns_are_counted_once_per_user_and_eligibility_follows_first_exposure(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with _harness(harness_factory, tmp_path) as h:
            _catalogue(h)
            early, late = USERS[:6], USERS[6:]
            await h.events(*(h.event(u, "i1") for u in early))
            h.clock.advance(RETURN_S * 1000 - 1)
            await h.events(*(h.event(u, "i3", kind="click") for u in early[:3]))  # too soon
            await h.events(*(h.event(u, "i1") for u in late))
            h.clock.advance(1)
            await h.events(*(h.event(u, "i4", kind="click") for u in early[:2]))  # back
            await h.events(*(h.event(u, "i5", kind="click") for u in early[:2]))  # again
            stored = await _assert_exact(h, USERS)
            assert sum(s[returned_field(RETURN_S)] for s in stored.values()) == 2
            declared = load_experiments(h.settings.experiments_file)
            keys = RedisKeys(h.settings.redis_namespace)
            rows = await read_report(h.redis, keys, partitioning(h.settings), declared,
                                     windows=(RETURN_S,), now_ms=h.clock.now_ms())  # fmt: skip
            metric = "return_1m"
            eligible = sum(v["metrics"][metric]["users"] for v in rows[0]["variants"])
            returned = sum(v["metrics"][metric]["numerator"] for v in rows[0]["variants"])
            assert (eligible, returned) == (len(early), 2)  # the late users are not eligible
            assert sum(rows[0]["users"].values()) == len(USERS)

    run(scenario())


def test_forget_takes_the_users_part_out_exactly_once(
    harness_factory: Callable[..., Harness], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with _harness(harness_factory, tmp_path) as h:
            _catalogue(h)
            rng = random.Random(8)
            await h.events(*(h.event(u, "i1") for u in USERS))
            h.clock.advance(1_000)
            await h.worker.processor.handle_events(_batch(h, rng, USERS))
            keys = RedisKeys(h.settings.redis_namespace)
            forgets = {u: h.raw({"control_id": f"f-{u}", "type": "forget", "user_id": u,
                                 "ts": h.clock.now_ms()}, h.settings.topic_controls)
                       for u in USERS[:3]}  # fmt: skip
            # a forget that died after its subtraction, before deleting: redelivered below
            half = forgets[USERS[0]]
            source = {USERS[0]: (f"{half.topic}:{half.partition}", half.offset)}
            await withdraw_from_arms(h.redis, keys, partitioning(h.settings), [USERS[0]], source)
            for raw in forgets.values():
                await h.worker.processor.handle_controls([raw])
            await h.worker.processor.handle_controls([forgets[USERS[1]]])  # redelivered
            kept = USERS[3:]
            await _assert_exact(h, kept)
            for user in USERS[:3]:
                assert await h.redis.exists(keys.experiment_user(user)) == 0
            declared = load_experiments(h.settings.experiments_file)
            arms = await read_arms(h.redis, keys, partitioning(h.settings), declared,
                                   windows=(), now_ms=h.clock.now_ms())  # fmt: skip
            assert sum(t.users for t in arms.values()) == len(kept)

    run(scenario())
