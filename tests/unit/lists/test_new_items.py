"""The new-item slot: new and live items get a fair first chance, with their own reasons."""

from __future__ import annotations

import numpy as np

from pipeline.features.state import UserState
from pipeline.lists.new_items import LIVE_NOW, NEW_FROM_CREATOR, new_item_slot, new_items
from pipeline.model.availability import WITHDRAWN, Availability
from pipeline.model.catalog import ItemInfo
from tests.factories import feed, make_recommender

T0 = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def _engine(**params: object) -> object:
    items = [
        ItemInfo(f"old{k}", ("AB"[k % 2],), 600.0, published_ts=T0 - 30 * DAY, creator_id="c0")
        for k in range(20)
    ]
    items += [
        ItemInfo("new-fav", ("B",), 600.0, published_ts=T0 - HOUR, creator_id="fav"),
        ItemInfo("new-a", ("A",), 600.0, published_ts=T0 - 2 * HOUR, creator_id="other"),
        ItemInfo("new-b", ("B",), 600.0, published_ts=T0 - 3 * HOUR, creator_id="other"),
        ItemInfo("fav-old", ("A",), 600.0, published_ts=T0 - 40 * DAY, creator_id="fav"),
        ItemInfo("channel", ("B",), 600.0, published_ts=T0 - 90 * DAY, creator_id="streamer"),
    ]
    return make_recommender(items, **params)


def test_new_and_just_live_items_are_new_others_not() -> None:
    engine = _engine()
    catalog = engine.models.catalog  # type: ignore[attr-defined]
    catalog.set_availability("channel", WITHDRAWN, now_ms=T0 - DAY)
    catalog.set_availability("channel", Availability(), now_ms=T0 - 10_000)  # went live
    cands = np.arange(catalog.slots)
    ids = {catalog.ids[i] for i in new_items(catalog, cands, T0, DAY).tolist()}
    assert ids == {"new-fav", "new-a", "new-b", "channel"}


def test_the_slot_orders_creator_then_taste_then_trend_and_labels_each() -> None:
    engine = _engine()
    models = engine.models  # type: ignore[attr-defined]
    catalog = models.catalog
    catalog.set_availability("channel", WITHDRAWN, now_ms=T0 - DAY)
    catalog.set_availability("channel", Availability(), now_ms=T0 - 10_000)
    user = UserState("u")
    feed(models, user, "e1", "fav-old", T0 - DAY)  # watched a creator's older item
    feed(models, user, "e2", "old1", T0 - DAY + 1)  # likes B
    cands = np.arange(catalog.slots)
    slot = new_item_slot(
        catalog,
        user,
        cands,
        np.zeros(catalog.slots),
        taken=set(),
        count=4,
        now_ms=T0,
        window_ms=DAY,
    )
    assert [(s.item_id, s.reason) for s in slot][:2] == [
        ("new-fav", NEW_FROM_CREATOR),
        ("channel", LIVE_NOW),
    ]
    assert {s.item_id for s in slot[2:]} == {"new-a", "new-b"}
    assert slot[2].item_id == "new-b" and slot[2].reason == "new in B"  # taste: B over A


def test_a_list_gives_its_share_to_new_items_and_without_a_share_nothing_changes() -> None:
    plain, slotted = _engine(), _engine(new_item_share=0.25)
    lists = []
    for engine in (plain, slotted):
        models = engine.models  # type: ignore[attr-defined]
        user = UserState("u")
        for k in range(6):
            feed(models, user, f"e{k}", f"old{k}", T0 - DAY + k)
        engine.refresh_indexes(T0)  # type: ignore[attr-defined]
        lists.append(engine.recommend(user, T0))  # type: ignore[attr-defined]
    reasons = [r.reason for r in lists[1]]
    assert len(lists[1]) <= 20 and len({r.item_id for r in lists[1]}) == len(lists[1])
    assert (
        sum(r in (LIVE_NOW, NEW_FROM_CREATOR) or r.startswith("new in") for r in reasons) == 3
    )  # all 3 new items (the share allows 5)
    assert not any(r.reason.startswith("new in") for r in lists[0])
