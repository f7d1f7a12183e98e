"""Withdrawn items are no candidates: pools, kNN scores, trending, fallback; patched lists."""

from __future__ import annotations

import orjson

from pipeline.features.state import UserState
from pipeline.lists.withdraw import item_ids
from pipeline.model.availability import WITHDRAWN, Availability
from pipeline.model.catalog import ItemInfo
from tests.factories import feed, make_recommender

T0 = 1_700_000_000_000


def test_a_withdrawn_item_leaves_every_pool_knn_and_trending() -> None:
    engine = make_recommender(
        [ItemInfo(f"i{k}", (("A", "B")[k % 2],), 600.0, published_ts=T0 - k) for k in range(20)]
    )
    models = engine.models
    # i1 co-occurs with i0 and trends
    for u in range(5):
        state = UserState(f"u{u}")
        feed(models, state, f"a{u}", "i0", T0 + u)
        feed(models, state, f"b{u}", "i1", T0 + u + 1)
    engine.refresh_indexes(T0 + 10)
    fan = UserState("fan")
    feed(models, fan, "f", "i0", T0 + 10)
    ids = [r.item_id for r in engine.recommend(fan, T0 + 20)]
    assert "i1" in ids and "i1" in engine.trending(n=10, now_ts=T0 + 20)
    idx = models.catalog.index_of("i1")
    models.catalog.set_availability("i1", WITHDRAWN)
    engine.refresh_indexes(T0 + 20)
    ids = [r.item_id for r in engine.recommend(fan, T0 + 20)]
    assert "i1" not in ids
    assert "i1" not in engine.trending(n=10, now_ts=T0 + 20)
    index = engine.index
    pools = [index.fresh, index.fallback, *index.by_category.values()]
    pools += list(index.trending_by_segment.values())
    assert all(idx not in pool.tolist() for pool in pools)
    # it comes back
    models.catalog.set_availability("i1", Availability())
    engine.refresh_indexes(T0 + 30)
    assert "i1" in [r.item_id for r in engine.recommend(fan, T0 + 30)]


def test_a_window_that_ended_excludes_the_item_even_before_the_pools_refresh() -> None:
    engine = make_recommender([ItemInfo(f"i{k}", ("A",), 600.0) for k in range(10)])
    engine.models.catalog.set_availability("i3", Availability(0, T0 + 5))
    engine.refresh_indexes(T0)
    cold = UserState("cold")
    assert "i3" in [r.item_id for r in engine.recommend(cold, T0)]
    assert "i3" not in [r.item_id for r in engine.recommend(cold, T0 + 5)]  # no refresh


def test_item_ids_of_stored_documents() -> None:
    doc = orjson.dumps({"user_id": "u", "items": [{"item_id": "a"}, {"item_id": "b"}]})
    assert item_ids(doc) == ["a", "b"]
    assert item_ids(b"not json") == [] and item_ids(b'{"items": 3}') == []
