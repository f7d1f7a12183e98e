"""Co-occurrence, item statistics and the catalogue (``pipeline.model``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.events.signals import signal_for
from pipeline.features.state import UserState
from pipeline.model.catalog import Catalog, ItemInfo, item_info
from pipeline.model.cooc import CoocModel
from pipeline.model.item_stats import GLOBAL_SEGMENT, MAX_SEGMENTS, ItemStats
from pipeline.model.models import SharedModels
from schemas.events import Item

T0 = 1_700_000_000_000
HOUR_MS = 3_600_000
CATEGORIES = ("Drama", "Comedy", "Horror", "Documentary")
PREFIX = {name: name[:3].lower() for name in CATEGORIES}


def item_id(category: str, k: int) -> str:
    return f"{PREFIX[category]}-{k}"


# =========================================================================== CoocModel
def _w(m: CoocModel, i: int, j: int) -> float:
    """The raw co-occurrence weight ``C[i, j]`` (0 when absent)."""
    ids, weights = m.row(i)
    return dict(zip(ids.tolist(), weights.tolist(), strict=True)).get(j, 0.0)


def test_cooc_docstring_example() -> None:
    m = CoocModel()
    m.learn(0, 1.0, 0, [])
    m.learn(1, 1.0, 0, [(0, 1.0)])
    ids, _ = m.neighbors(0)
    assert ids.tolist() == [1]


def test_cooc_learning_is_symmetric() -> None:
    m = CoocModel()
    m.learn(0, 1.0, T0, [])
    m.learn(1, 0.8, T0, [(0, 0.5)])
    assert _w(m, 0, 1) == pytest.approx(0.4)
    assert _w(m, 1, 0) == pytest.approx(0.4)
    assert m.neighbors(0)[0].tolist() == [1]
    assert m.neighbors(1)[0].tolist() == [0]


def test_cooc_ignores_negatives_and_self_context() -> None:
    m = CoocModel()
    m.learn(0, 1.0, T0, [])
    m.learn(1, -1.0, T0, [(0, 1.0)])  # a skip is not a co-occurrence
    m.learn(2, 0.0, T0, [(0, 1.0)])
    m.learn(3, 1.0, T0, [(0, -0.5), (3, 1.0)])  # negative context, itself as context
    for item in range(4):
        assert m.neighbors(item)[0].tolist() == []
    assert m.score([(0, 1.0), (3, 1.0)])[0].tolist() == []


def _triangle(alpha: float = 0.5, beta: float = 0.5) -> CoocModel:
    """n0 = 1, n1 = 1, n2 = 2; C01 = 1, C02 = 2, C12 = 1 (all at one instant)."""
    m = CoocModel(alpha=alpha, beta=beta)
    m.learn(0, 1.0, T0, [])
    m.learn(1, 1.0, T0, [(0, 1.0)])
    m.learn(2, 2.0, T0, [(0, 1.0), (1, 0.5)])
    return m


def test_cooc_neighbours_sorted_by_damped_similarity() -> None:
    m = _triangle()
    ids, sims = m.neighbors(0)
    assert ids.tolist() == [2, 1]
    assert sims.tolist() == pytest.approx([2 / math.sqrt(2), 1.0])
    ids, sims = m.neighbors(1)
    assert ids.tolist() == [0, 2]
    assert sims.tolist() == pytest.approx([1.0, 1 / math.sqrt(2)])


def test_cooc_alpha_damps_the_history_item_and_beta_the_candidate() -> None:
    m = _triangle(alpha=1.0, beta=0.0)
    ids, sims = m.neighbors(2)  # C[2, j] / n_2
    assert dict(zip(ids.tolist(), sims.tolist(), strict=True)) == pytest.approx({0: 1.0, 1: 0.5})
    # the training feature uses the same orientation as ranking (train/serve consistency)
    assert m.similarity(0, [(2, 1.0)]) == pytest.approx(1.0)
    assert m.similarity(1, [(2, 3.0)]) == pytest.approx(1.5)


def test_cooc_popularity_damping_blockbuster_does_not_outrank_specific_neighbour() -> None:
    m = CoocModel()
    target, specific, blockbuster = 0, 1, 2
    m.learn(target, 1.0, T0, [])
    m.learn(specific, 1.0, T0, [(target, 1.0)])
    m.learn(blockbuster, 1.0, T0, [(target, 1.0)])
    for k in range(10, 30):  # the blockbuster co-occurs with everything
        m.learn(k, 1.0, T0, [])
        m.learn(blockbuster, 1.0, T0, [(k, 1.0)])
    assert _w(m, target, specific) == _w(m, target, blockbuster)
    ids, sims = m.neighbors(target)
    assert ids.tolist() == [specific, blockbuster]
    assert sims[0] > sims[1]


def test_cooc_neighbours_capped_to_the_best() -> None:
    m = CoocModel(neighbors=2)
    m.learn(0, 1.0, T0, [])
    for k, weight in ((1, 0.2), (2, 0.9), (3, 0.5), (4, 0.7)):
        m.learn(k, 1.0, T0, [(0, weight)])
    ids, _ = m.neighbors(0)
    assert ids.tolist() == [2, 4]


def test_cooc_score_sums_weighted_rows() -> None:
    m = _triangle()
    ids, scores = m.score([(0, 1.0), (1, 0.5)])
    got = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    expected = {
        0: 0.5 * 1.0,  # from item 1
        1: 1.0 * 1.0,  # from item 0
        2: 1.0 * 2 / math.sqrt(2) + 0.5 * 1 / math.sqrt(2),  # from both
    }
    assert got == pytest.approx(expected)


def test_cooc_anchor_is_the_history_item_contributing_most() -> None:
    m = _triangle()
    # item 2: 1.0 x sqrt(2) from item 0 against 0.5 / sqrt(2) from item 1
    ids, _, anchors = m.score_with_anchors([(0, 1.0), (1, 0.5)])
    assert dict(zip(ids.tolist(), anchors.tolist(), strict=True)) == {0: 1, 1: 0, 2: 0}
    # weight item 1's recency enough and it becomes the reason for item 2
    ids, _, anchors = m.score_with_anchors([(0, 0.1), (1, 1.0)])
    assert dict(zip(ids.tolist(), anchors.tolist(), strict=True))[2] == 1


def test_cooc_score_of_empty_or_unknown_history_is_empty() -> None:
    m = _triangle()
    for history in ([], [(99, 1.0)]):
        ids, scores = m.score(history)
        assert ids.shape == (0,)
        assert scores.shape == (0,)


def test_cooc_recent_co_occurrence_counts_more() -> None:
    m = CoocModel(half_life_seconds=3_600.0)
    m.learn(0, 1.0, T0, [])
    m.learn(1, 1.0, T0, [(0, 1.0)])
    m.learn(2, 1.0, T0 + HOUR_MS, [(0, 1.0)])
    assert _w(m, 0, 2) / _w(m, 0, 1) == pytest.approx(2.0)
    ids, sims = m.neighbors(0)
    assert ids.tolist() == [2, 1]
    assert sims[0] / sims[1] == pytest.approx(math.sqrt(2))


def test_cooc_forward_decay_rescale_keeps_ratios_and_refreshes_neighbours() -> None:
    m = CoocModel(half_life_seconds=1.0)  # 70 half-lives in 70 s: past 64, forces a rebase
    m.learn(0, 1.0, 0, [])
    m.learn(1, 1.0, 0, [(0, 1.0)])
    assert m.neighbors(0)[0].tolist() == [1]
    m.learn(2, 1.0, 70_000, [(0, 1.0)])
    assert _w(m, 0, 2) / _w(m, 0, 1) == pytest.approx(2.0**70)
    assert _w(m, 2, 0) / _w(m, 1, 0) == pytest.approx(2.0**70)
    assert m.mass[2] / m.mass[1] == pytest.approx(2.0**70)
    # rebased: the newest observation is back to its plain weight, nothing overflows
    assert _w(m, 0, 2) == pytest.approx(1.0)
    assert np.all(np.isfinite(m.mass))
    assert max(m.mass) <= 1.0 + 1e-9
    ids, sims = m.neighbors(0)
    assert ids.tolist() == [2, 1]
    assert np.all(np.isfinite(sims))


def test_cooc_float32_weights_are_rebased_long_before_their_range_ends() -> None:
    m = CoocModel(half_life_seconds=1.0)
    for k in range(1, 200):  # 199 half-lives, 2 ** 199 would overflow float32 without rebases
        m.learn(k, 1.0, k * 1_000, [(0, 1.0)])
    _, weights = m.table.row(0)
    assert weights.dtype == np.float32
    assert np.all(np.isfinite(weights)) and float(weights.max()) <= 2.0**64
    assert _w(m, 0, 199) / _w(m, 0, 198) == pytest.approx(2.0, rel=1e-6)


def test_cooc_references_are_32_bit_and_stale_after_eviction() -> None:
    m = CoocModel()
    m.learn(1, 1.0, 0, [(0, 1.0)])
    m.learn(2, 1.0, 0, [(0, 1.0)])
    assert m.table.ids.dtype == np.int32
    m.evict(np.array([1]))  # index 1 is reused by a new item: old references must not match
    m.learn(1, 1.0, 0, [(3, 1.0)])
    assert m.row(0)[0].tolist() == [2]
    assert m.row(3)[0].tolist() == [1]
    with pytest.raises(ValueError, match="reference"):
        m.reserve((1 << 24) + 1)


# =========================================================================== ItemStats
def test_item_stats_counts_and_smoothed_ratios() -> None:
    s = ItemStats(3_600.0, 600.0)
    for k in range(10):
        s.observe(0, T0 + k, kind="skip", completion=0.01)
    s.observe(1, T0, kind="watch", completion=1.0)
    s.observe(1, T0, kind="watch", completion=1.0)
    s.observe(1, T0, kind="click", completion=None)
    items = np.array([0, 1, 2, 999])
    assert s.skip_rate(items).tolist() == pytest.approx([11 / 20, 1 / 13, 0.1, 0.1])
    assert s.mean_completion(items).tolist() == pytest.approx([0.5, 0.75, 0.5, 0.5])


def test_item_stats_forward_decayed_popularity_and_trend() -> None:
    s = ItemStats(half_life_seconds=3_600.0, trend_half_life_seconds=1_800.0)
    s.observe(0, T0, kind="watch", completion=1.0)
    s.observe(1, T0 + HOUR_MS, kind="click", completion=None)
    assert s.popularity[1] / s.popularity[0] == pytest.approx(2.0)
    trend = s.trend_of(GLOBAL_SEGMENT, np.array([0, 1]))
    assert trend[1] / trend[0] == pytest.approx(4.0)
    assert s.interactions[:2].tolist() == [1.0, 1.0]
    # running maxima: what features are scaled by, without a scan
    assert s.popularity_max == s.popularity.max()
    assert s.trend_max == s.trend.max()


def test_item_stats_popularity_counts_users_and_needs_no_clock() -> None:
    """The default popularity: one count per user's first interaction, whatever the time."""
    s = ItemStats(half_life_seconds=0.0, trend_half_life_seconds=1_800.0)
    s.observe(0, T0, kind="click", completion=None, first=True)
    s.observe(0, T0 + 1, kind="watch", completion=0.5, first=False)  # same user, same item
    s.observe(1, T0 + 20 * 365 * 86_400_000, kind="watch", completion=1.0, first=True)
    assert s.popularity[:2].tolist() == [1.0, 1.0]  # twenty years later: still one user each
    assert s.interactions[:2].tolist() == [2.0, 1.0]
    assert np.isfinite(s.trend_max)


def test_learn_record_says_whether_the_interaction_is_the_users_first() -> None:
    m = SharedModels()
    state = UserState("u")
    signal = signal_for("click", None, None, threshold=0.6)
    assert m.record_for(state, "x", T0, "click", signal).first
    state.excluded["x"] = T0
    assert not m.record_for(state, "x", T0 + 1, "watch", signal).first


def test_stage_popularity_counts_positives_per_stage_in_bounded_space() -> None:
    s = ItemStats(0.0, 600.0, stage_cap=2, stage_items=2)
    for item, stage in [(0, 0), (0, 0), (1, 0), (2, 0), (2, 0), (2, 0), (3, 1), (4, 7)]:
        s.observe(item, T0, kind="watch", completion=1.0, stage=stage)
    s.observe(5, T0, kind="watch", completion=0.2)  # not a positive: no stage
    assert s.stage_hitters(0).top(5).tolist() == [2, 0]  # two slots: the heaviest kept
    assert s.stage_hitters(1).top(5).tolist() == [3]
    assert s.stage_hitters(2).top(5).tolist() == [4] == s.stage_hitters(99).top(5).tolist()
    s.evict(np.array([2]))
    assert 2 not in s.stage_hitters(0).top(5).tolist()


def test_item_stats_order_of_observations_does_not_matter() -> None:
    events = [(k % 3, T0 + 7_919 * k) for k in range(30)]
    a, b = ItemStats(3_600.0, 600.0), ItemStats(3_600.0, 600.0)
    for item, ts in events:
        a.observe(item, ts, kind="watch", completion=0.5)
    for item, ts in reversed(events):
        b.observe(item, ts, kind="watch", completion=0.5)
    pa, pb = a.popularity[:3], b.popularity[:3]
    assert (pa / pa.sum()).tolist() == pytest.approx((pb / pb.sum()).tolist())


def test_item_stats_segments_and_fallback() -> None:
    s = ItemStats(3_600.0, 600.0)
    s.observe(0, T0, kind="watch", completion=1.0, segments=("locale:fr-FR",))
    s.observe(1, T0, kind="watch", completion=1.0)
    both = np.array([0, 1])
    fr = s.trend_of("locale:fr-FR", both)
    assert fr[0] > 0 and fr[1] == 0
    glob = s.trend_of(GLOBAL_SEGMENT, both)
    assert glob[0] > 0 and glob[1] > 0
    assert s.trend_of("locale:unknown", both).tolist() == glob.tolist()
    assert s.has_segment("locale:fr-FR") and not s.has_segment("locale:unknown")
    assert s.segment_names() == [GLOBAL_SEGMENT, "locale:fr-FR"]
    assert s.trend_top("locale:fr-FR") == fr[0]
    assert s.trend_top("locale:unknown") == s.trend_max


def test_item_stats_segments_are_bounded() -> None:
    s = ItemStats(3_600.0, 600.0)
    for k in range(MAX_SEGMENTS + 50):
        s.observe(k % 5, T0, kind="click", completion=None, segments=(f"device:d{k}",))
    assert len(s.segment_names()) <= MAX_SEGMENTS
    assert s.trend[:5].sum() == pytest.approx(MAX_SEGMENTS + 50)


def test_item_stats_rescale_keeps_ratios() -> None:
    s = ItemStats(half_life_seconds=10.0, trend_half_life_seconds=1.0)
    s.observe(0, 0, kind="watch", completion=1.0)
    s.observe(1, 500_000, kind="watch", completion=1.0)  # 500 trend half-lives later
    assert s.popularity[1] / s.popularity[0] == pytest.approx(2.0**50)
    trend = s.trend
    assert trend[1] / trend[0] == pytest.approx(2.0**500)
    assert np.all(np.isfinite(trend)) and trend.max() <= 1.0 + 1e-9
    assert s.popularity.max() <= 1.0 + 1e-9
    assert s.trend_max == pytest.approx(trend.max())
    assert s.popularity_max == pytest.approx(s.popularity.max())


# =========================================================================== Catalog
def test_catalog_docstring_example() -> None:
    c = Catalog()
    assert c.upsert(ItemInfo("m1", ("Comedy",))) == 0
    assert (c.index_of("m1"), c.category_index("Comedy")) == (0, 0)


def _membership(c: Catalog, idx: int) -> dict[str, float]:
    """Category share of an item, by name (what the sparse columns encode)."""
    out = {}
    for k, name in enumerate(c.category_names):
        one = np.zeros(len(c.category_names))
        one[k] = 1.0
        share = float(c.category_mass(np.array([idx]), one)[0])
        if share:
            out[name] = share
    return out


def test_catalog_indices_are_stable_and_metadata_updates() -> None:
    c = Catalog()
    assert c.upsert(ItemInfo("a", ("X",), published_ts=5)) == 0
    assert c.ensure("b") == 1  # first seen in an event: no metadata yet
    assert c.categories_of(1) == ()
    assert _membership(c, 1) == {}
    assert c.upsert(ItemInfo("b", ("Y", "Z"), title="B")) == 1
    assert c.upsert(ItemInfo("a", ("Y",), published_ts=9)) == 0
    assert c.ensure("a") == 0
    assert c.categories_of(0) == ("Y",)
    assert _membership(c, 0) == {"Y": 1.0}  # the old category no longer counts
    assert _membership(c, 1) == {"Y": 0.5, "Z": 0.5}  # mass sums to one
    assert c.published_ts[0] == 9.0
    assert (len(c), c.item_id(1), c.ids) == (2, "b", ["a", "b"])
    assert c.info(1) == ItemInfo("b", ("Y", "Z"), title="B")


def test_catalog_lookup_of_unknown() -> None:
    c = Catalog()
    c.upsert(ItemInfo("a"))
    assert "a" in c and "zz" not in c
    assert c.get("zz") is None
    assert c.find_category("Nope") is None
    with pytest.raises(KeyError):
        c.index_of("zz")


def test_catalog_grows_past_item_capacity_keeping_data() -> None:
    c = Catalog(capacity=2)
    for k in range(9):
        c.upsert(ItemInfo(f"i{k}", (f"C{k % 3}",), published_ts=100 + k))
    assert len(c) == 9
    for k in range(9):
        assert _membership(c, c.index_of(f"i{k}")) == {f"C{k % 3}": 1.0}
        assert c.published_ts[k] == 100 + k


def test_catalog_many_categories_and_items_with_many_categories() -> None:
    """Categories are sparse columns per item: any number of categories, widening as needed."""
    c = Catalog()
    n = 40
    for k in range(n):
        c.upsert(ItemInfo(f"i{k}", (f"C{k}",)))
    c.upsert(ItemInfo("wide", tuple(f"C{k}" for k in range(5))))
    assert len(c.category_names) == n
    for k in range(n):
        assert _membership(c, c.index_of(f"i{k}")) == {f"C{k}": 1.0}, f"item i{k}"
    assert _membership(c, c.index_of("wide")) == {f"C{k}": 0.2 for k in range(5)}
    assert c.cats.shape[1] == 5  # columns, not categories: memory per item stays small
    assert c.members(c.category_index("C3")).tolist() == [3, n]


def test_item_info_from_item_record() -> None:
    item = Item(
        item_id="m9",
        categories=("Drama", "Crime"),
        duration_seconds=1_200.0,
        published_ts=T0,
        creator_id="c1",
        title="Nine",
    )
    assert item_info(item) == ItemInfo("m9", ("Drama", "Crime"), 1_200.0, T0, "c1", "Nine")


def test_cooc_similarity_to_several_histories_reads_the_row_once() -> None:
    m = _triangle(alpha=1.0, beta=0.0)
    pos, neg, empty = [(0, 1.0)], [(1, 2.0), (0, 1.0), (7, 1.0)], []
    assert m.similarity_to(2, pos, neg, empty) == pytest.approx(
        (m.similarity(2, pos), m.similarity(2, neg), 0.0)
    )
    assert m.similarity_to(2, pos, neg) == pytest.approx((2.0, 4.0))
    assert m.similarity_to(99, pos) == (0.0,)


def test_cooc_history_score_is_the_row_by_row_sum_bit_for_bit() -> None:
    """The summed scores and anchors are each row's similarities added in history order."""
    rng = np.random.default_rng(11)
    m = CoocModel(neighbors=12)
    for step in range(3_000):
        context = [
            (int(i), float(w)) for i, w in zip(rng.integers(0, 60, 5), rng.random(5), strict=True)
        ]
        m.learn(int(rng.integers(0, 60)), float(rng.random()) + 0.1, step, context)
        if step == 2_000:  # stale references: rows cleaned while a history is read
            m.evict(np.array([3, 17]))
    history = [
        (int(i), float(w)) for i, w in zip(rng.integers(0, 70, 20), rng.random(20), strict=True)
    ]
    sums: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}
    for item, weight in history:  # the reference: each row's similarities, in order
        if item >= m.mass.shape[0]:
            continue
        ids, sims = m.similarities(item)
        for j, s in zip(ids.tolist(), (sims * weight).tolist(), strict=True):
            sums[j] = sums.get(j, 0.0) + s
            if j not in best or s >= best[j][0]:  # ties: the later history item
                best[j] = (s, item)
    ids, scores, anchors = m.score_with_anchors(history)
    assert ids.tolist() == sorted(sums)
    assert scores.tolist() == [sums[j] for j in sorted(sums)]  # exact, not approximate
    assert anchors.tolist() == [best[j][1] for j in sorted(best)]
