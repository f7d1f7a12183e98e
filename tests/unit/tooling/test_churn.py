"""Items that come and go in the simulated world: schedule, messages, and what users see."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.tooling.churn import (
    EXPIRED,
    OFF_AIR,
    ON_AIR,
    RELEASE,
    RETIRED,
    CatalogChange,
    Churn,
    ChurnSchedule,
)
from pipeline.tooling.sim_catalog import build_catalog
from pipeline.tooling.simulator import World
from schemas.events import Item

START = 1_800_000_000_000


def _run(churn: Churn, seconds: int, seed: int = 1, n_items: int = 100) -> list[CatalogChange]:
    schedule = ChurnSchedule(churn, seed, build_catalog(random.Random(seed), n_items, 0))
    out: list[CatalogChange] = []
    for s in range(seconds + 1):
        out += schedule.due(START + s * 1_000)
    return out


def test_without_churn_nothing_changes_and_the_world_is_as_before() -> None:
    assert not Churn().active
    plain, churned = World(seed=3, n_items=50), World(seed=3, n_items=50, churn=Churn())
    assert plain.items() == churned.items()
    assert churned.catalog_changes(START) == []


def test_releases_come_at_their_rate_with_new_ids_and_their_own_time() -> None:
    changes = _run(Churn(releases_per_minute=60.0), 600)
    assert {c.kind for c in changes} == {RELEASE}
    assert 480 <= len(changes) <= 720  # Poisson(600): far outside 5 standard deviations
    ids = [c.item_id for c in changes]
    assert len(set(ids)) == len(ids) and ids[0] == "i100"
    assert all(c.item is not None and c.item.published_ts == c.ts for c in changes)
    assert [c.ts for c in changes] == sorted(c.ts for c in changes)


def test_most_releases_come_from_known_creators() -> None:
    changes = _run(Churn(releases_per_minute=60.0, known_creator_share=0.8), 600)
    known = {f"c{k}" for k in range(100 // 8)}
    share = sum(c.item is not None and c.item.creator_id in known for c in changes) / len(changes)
    assert 0.7 < share < 0.9


def test_live_channels_alternate_on_and_off_air_and_start_off() -> None:
    churn = Churn(live_channels=5, on_air_seconds=30.0, off_air_seconds=30.0)
    schedule = ChurnSchedule(churn, 2, build_catalog(random.Random(2), 40, 0))
    assert all(channel.available is False for channel in schedule.channels)
    changes = [c for s in range(601) for c in schedule.due(START + s * 1_000)]
    per_channel: dict[str, list[str]] = {}
    for change in changes:
        per_channel.setdefault(change.item_id, []).append(change.kind)
    assert len(per_channel) == 5
    for kinds in per_channel.values():
        assert kinds[0] == ON_AIR
        assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))  # alternate
        assert len(kinds) > 4
    on = next(c for c in changes if c.kind == ON_AIR)
    assert on.message() is not None and on.message()["available"] is True  # type: ignore[index]


def test_limited_releases_expire_and_retirements_are_tombstones_oldest_first() -> None:
    churn = Churn(
        releases_per_minute=30.0, limited_share=1.0, limited_seconds=20.0,
        retirements_per_minute=12.0,
    )  # fmt: skip
    catalog = build_catalog(random.Random(4), 50, 0)
    schedule = ChurnSchedule(churn, 4, catalog)
    changes = [c for s in range(301) for c in schedule.due(START + s * 1_000)]
    kinds = Counter(c.kind for c in changes)
    assert kinds[RELEASE] > 100 and kinds[RETIRED] > 40
    released = {c.item_id: c for c in changes if c.kind == RELEASE}
    for change in changes:
        if change.kind == EXPIRED:
            item = released[change.item_id].item
            assert item is not None and item.available_until_ts == change.ts
            assert not change.sends
    retired = [c for c in changes if c.kind == RETIRED]
    assert all(c.message() is None and c.sends for c in retired)  # tombstones
    oldest = [i.item_id for i in sorted(catalog, key=lambda i: i.published_ts)]
    assert [c.item_id for c in retired[:10]] == oldest[:10]


def test_the_catalogue_stays_within_max_items() -> None:
    changes = _run(Churn(releases_per_minute=600.0, max_items=120), 60)
    present = (
        100 + sum(c.kind == RELEASE for c in changes) - sum(c.kind == RETIRED for c in changes)
    )
    assert present <= 120


def test_every_message_is_a_valid_item_v1() -> None:
    churn = Churn(releases_per_minute=60.0, live_channels=3, limited_share=0.5,
                  on_air_seconds=10.0, off_air_seconds=10.0)  # fmt: skip
    world = World(seed=5, n_users=10, n_items=30, churn=churn)
    messages = world.items() + [
        m for s in range(120) for c in world.catalog_changes(START + s * 1_000)
        if c.sends and (m := c.message()) is not None
    ]  # fmt: skip
    assert len(messages) > 60
    for message in messages:
        Item.model_validate(message)


def test_users_choose_new_items_and_never_an_unavailable_one() -> None:
    churn = Churn(releases_per_minute=60.0, live_channels=10, retirements_per_minute=30.0,
                  on_air_seconds=20.0, off_air_seconds=20.0)  # fmt: skip
    world = World(seed=6, n_users=100, n_items=60, churn=churn)
    gone: set[str] = set()
    on_air: set[str] = set()
    chosen_new = 0
    for s in range(300):
        ts = START + s * 1_000
        for change in world.catalog_changes(ts):
            if change.kind in (RETIRED, EXPIRED):
                gone.add(change.item_id)
            elif change.kind == ON_AIR:
                on_air.add(change.item_id)
            elif change.kind == OFF_AIR:
                on_air.discard(change.item_id)
        for _ in range(20):
            event = world.next_event(ts)
            item_id = event["item_id"]
            if event["type"] == "watch":
                continue  # the watch of an earlier click
            assert item_id not in gone
            assert not item_id.startswith("live") or item_id in on_air
            since = world.available_since(item_id)
            chosen_new += since is not None and since > ts - 60_000
    assert chosen_new > 100


def test_a_list_entry_that_is_gone_is_not_chosen() -> None:
    churn = Churn(retirements_per_minute=6_000.0)
    world = World(seed=7, n_users=5, n_items=400, churn=churn)
    assert world.catalog_changes(START) == []  # the schedule starts at the first call
    retired = [c.item_id for c in world.catalog_changes(START + 1_000)]
    assert len(retired) > 50
    for _ in range(300):
        event = world.next_event(START + 2_000, lambda _: retired, follow=1.0)
        if event["type"] != "watch":
            assert event["item_id"] not in retired


@pytest.mark.parametrize("bad", [{"releases_per_minute": -1.0}, {"known_creator_share": 2.0},
                                 {"on_air_seconds": 0.0}, {"max_items": 0}])  # fmt: skip
def test_invalid_churn_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="churn|max_items"):
        Churn(**bad)  # type: ignore[arg-type]
