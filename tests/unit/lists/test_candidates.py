"""Candidate pools kept incrementally are the pools a scan of the catalogue gives."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lists.candidates import CandidateIndex
from pipeline.lists.ranking import TopK, ranked
from pipeline.model.catalog import ItemInfo
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord

T0 = 1_700_000_000_000
SIZES = {"trending": 6, "per_category": 4, "fresh": 5}


def _pools(index: CandidateIndex) -> dict[str, object]:
    return {
        "trending": {k: v.tolist() for k, v in index.trending_by_segment.items()},
        "by_category": {k: v.tolist() for k, v in index.by_category.items()},
        "fresh": index.fresh.tolist(),
        "fallback": index.fallback.tolist(),
    }


def _scratch(models: SharedModels, now: int) -> dict[str, object]:
    index = CandidateIndex(**SIZES)
    index.refresh(models, now)
    assert index.rebuilds == 1
    return _pools(index)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_pools_equal_pools_rebuilt_from_a_scan(seed: int) -> None:
    """Random traffic, item updates (categories, publication), evictions and time."""
    rng = np.random.default_rng(seed)
    models = SharedModels(ModelParams(catalog_max_items=64, segment_items=8, max_segments=6))
    index = CandidateIndex(**SIZES)
    now = T0
    for step in range(300):
        now += int(rng.integers(0, 50_000))
        for _ in range(int(rng.integers(0, 12))):
            item = f"i{int(rng.integers(0, 120))}"
            context = tuple((f"i{int(c)}", 1.0) for c in rng.integers(0, 120, 3))
            segment = (f"locale:l{int(rng.integers(0, 5))}",)
            models.apply(LearnRecord(item, now, "watch", 1.0, 0.9, segment, context))
        for _ in range(int(rng.integers(0, 3))):
            k = int(rng.integers(0, 120))
            cats = tuple(f"C{int(c)}" for c in rng.integers(0, 5, int(rng.integers(0, 3))))
            published = now + int(rng.integers(-200_000, 200_000))
            models.upsert_item(ItemInfo(f"i{k}", cats, published_ts=published))
        index.refresh(models, now)
        assert _pools(index) == _scratch(models, now), f"step {step}"
    assert models.catalog.evicted > 0
    assert index.rebuilds < 30  # mostly incremental


def test_a_reader_that_fell_behind_the_change_log_rebuilds() -> None:
    models = SharedModels()
    index = CandidateIndex(**SIZES)
    index.refresh(models, T0)
    for k in range(70_000):  # more changes than the log holds
        models.stats.observe(k % 50, T0, kind="click", completion=None)
    index.refresh(models, T0)
    assert index.rebuilds == 2
    index.refresh(models, T0)
    assert index.rebuilds == 2


def test_time_going_back_rebuilds_fresh() -> None:
    models = SharedModels()
    models.upsert_item(ItemInfo("a", published_ts=T0))
    models.upsert_item(ItemInfo("b", published_ts=T0 + 10))
    index = CandidateIndex(**SIZES)
    index.refresh(models, T0 + 20)
    assert index.fresh.tolist() == [1, 0]
    index.refresh(models, T0 + 5)
    assert index.fresh.tolist() == [0]


def test_ranked_orders_by_score_then_index() -> None:
    items = np.arange(20, dtype=np.int64)
    scores = np.array([1.0] * 10 + [2.0] * 10)
    assert ranked(items, scores, 3).tolist() == [10, 11, 12]
    assert ranked(items[::-1], scores[::-1], 12).tolist() == [*range(10, 20), 0, 1]


def test_topk_shrinks_after_removals_and_merges_within_what_it_knows() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    top = TopK(capacity=3)
    top.rebuild(np.arange(5), scores)
    assert top.items.tolist() == [0, 1, 2] and not top.complete
    top.remove(np.array([1]))
    assert top.items.tolist() == [0, 2]
    # item 3 rose to 3.5: above item 2 but the top only knows its first two places
    scores[3] = 3.5
    top.merge(np.array([3]), lambda items: (scores[items], scores[items] > 0))
    assert top.items.tolist() == [0, 3]
