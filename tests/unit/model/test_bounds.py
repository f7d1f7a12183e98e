"""Bounded model state: catalogue eviction, heavy hitters, change logs, evicted items forgotten."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.catalog import Catalog, ItemInfo
from pipeline.model.changes import ChangeLog
from pipeline.model.cooc import CoocModel
from pipeline.model.item_stats import GLOBAL_SEGMENT, ItemStats
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord
from pipeline.model.trending import HeavyHitters

T0 = 1_700_000_000_000
DAY_MS = 86_400_000


# =========================================================================== Catalog
def test_full_catalogue_evicts_the_least_recently_seen() -> None:
    evicted: list[list[int]] = []
    c = Catalog(max_items=100, on_evict=lambda items: evicted.append(items.tolist()))
    for k in range(100):
        c.ensure(f"i{k}", T0 + k)
    c.ensure("i0", T0 + 500)  # seen again: now the most recent
    idx = c.ensure("new", T0 + 501)
    assert len(c) == 100
    assert evicted == [[1]]  # 1 % of 100: the least recently seen, i1
    assert "i1" not in c and "i0" in c
    assert idx == 1  # the freed index is reused
    assert c.ids[1] == "new" and c.categories_of(1) == ()


def test_ensure_many_touches_known_items_before_registering_new_ones() -> None:
    c = Catalog(max_items=64)
    for k in range(64):
        c.ensure(f"i{k}", T0 + k)
    # i0 is the least recently seen, but this record names it: it must survive
    got = c.ensure_many(["new", "i0", "i5"], T0 + 100)
    assert "i0" in c and "i5" in c and "new" in c
    assert got == [c.index_of("new"), c.index_of("i0"), c.index_of("i5")]
    assert "i1" not in c


def test_items_not_seen_for_long_are_evicted_a_slice_at_a_time() -> None:
    c = Catalog(max_items=1_000, evict_after_ms=10 * DAY_MS)
    c.upsert(ItemInfo("old", ("X",)))
    c.ensure("old", T0)
    c.ensure("recent", T0 + 15 * DAY_MS)
    assert c.evict_stale(T0 + 5 * DAY_MS) == 0
    assert c.evict_stale(T0 + 15 * DAY_MS) == 1
    assert "old" not in c and "recent" in c
    assert c.members(c.category_index("X")).tolist() == []
    assert Catalog(evict_after_ms=0).evict_stale(T0) == 0  # disabled


def test_evicted_item_comes_back_as_a_new_item() -> None:
    c = Catalog(max_items=64)
    c.upsert(ItemInfo("a", ("X",), 600.0, T0, "c1", "A"))
    c.evict(np.array([0]))
    assert "a" not in c and len(c) == 0
    assert c.live_indices(10).tolist() == []
    assert c.ensure("a") == 0
    assert c.info(0) == ItemInfo("a")  # its metadata comes back with its next item record


def test_catalogue_memory_is_bounded_by_max_items() -> None:
    c = Catalog(capacity=16, max_items=200)
    for k in range(5_000):
        c.upsert(ItemInfo(f"i{k}", (f"C{k % 7}",), published_ts=T0 + k))
    assert len(c) <= 200 and c.slots <= 200
    assert c.share.shape[0] <= 200
    assert c.evicted >= 4_800


def test_catalogue_logs_what_the_indexes_rank_by() -> None:
    c = Catalog()
    c.upsert(ItemInfo("a", ("X",), published_ts=1))
    at = c.changes.position
    c.upsert(ItemInfo("a", ("X",), published_ts=1, title="renamed"))
    assert c.changes.since(at).tolist() == []  # a title does not move any index
    c.upsert(ItemInfo("a", ("Y",), published_ts=1))
    c.upsert(ItemInfo("a", ("Y",), published_ts=2))
    assert c.changes.since(at).tolist() == [0, 0]


def test_max_items_must_hold_a_record() -> None:
    with pytest.raises(ValueError, match="max_items must be at least 64"):
        Catalog(max_items=10)


# =========================================================================== HeavyHitters
def test_heavy_hitters_keep_the_heavy_items_within_capacity() -> None:
    h = HeavyHitters(capacity=10)
    rng = np.random.default_rng(2)
    for _ in range(5_000):
        item = int(rng.integers(0, 3)) if rng.random() < 0.5 else int(rng.integers(3, 10_000))
        h.add(item, 1.0)
    assert len(h) == 10
    assert set(h.top(3).tolist()) == {0, 1, 2}
    values = h.values(np.array([0, 1, 2]))
    true = 5_000 / 2 / 3
    # space-saving: counts overestimate by at most the smallest count
    assert np.all(values >= true * 0.8)
    assert np.all(values - h.errors[[h._slot[i] for i in (0, 1, 2)]] <= values)


def test_heavy_hitters_remove_scale_and_lookup() -> None:
    h = HeavyHitters(capacity=3)
    for item, inc in ((5, 1.0), (6, 2.0), (7, 3.0)):
        h.add(item, inc)
    h.remove(np.array([6, 99]))
    assert len(h) == 2 and 6 not in h
    h.scale(0.5)
    assert h.values(np.array([5, 6, 7])).tolist() == [0.5, 0.0, 1.5]
    assert h.max() == 1.5 and h.top(5).tolist() == [7, 5]
    assert HeavyHitters(4).values(np.array([1])).tolist() == [0.0]


# =========================================================================== ChangeLog
def test_heavy_hitters_running_max_is_the_max_of_the_counts() -> None:
    """The kept maximum equals a scan after adds, negative adds, removals and rescales."""
    one = HeavyHitters(capacity=1)
    one.add(1, 5.0)
    one.add(2, -1.0)  # replaces the largest count with a smaller one
    assert one.max() == 4.0
    rng = np.random.default_rng(4)
    h = HeavyHitters(capacity=16)
    for step in range(2_000):
        inc = float(rng.random()) - (0.3 if step % 97 == 0 else 0.0)
        h.add(int(rng.integers(0, 60)), inc)
        if step % 300 == 299:
            h.remove(np.array([int(rng.integers(0, 60))]))
        if step % 500 == 499:
            h.scale(0.5)
        assert h.max() == float(h.counts[: h.size].max(initial=0.0))


def test_change_log_tells_a_reader_that_fell_behind() -> None:
    log = ChangeLog(capacity=8)
    log.append_many(np.arange(5))
    at = log.position
    log.append_many(np.array([7, 7]))
    assert log.since(at).tolist() == [7, 7]
    log.append_many(np.arange(20))  # more than the ring holds at once
    assert log.since(at) is None
    assert log.since(log.position - 8).tolist() == list(range(12, 20))
    assert log.since(log.position + 1) is None


# =========================================================================== eviction
def test_evicted_neighbours_are_dropped_and_a_reused_index_starts_clean() -> None:
    m = CoocModel()
    m.learn(1, 1.0, T0, [(0, 1.0), (2, 1.0)])
    m.evict(np.array([2]))
    assert m.row(1)[0].tolist() == [0]  # the stale reference is dropped when read
    assert m.row(2)[0].tolist() == [] and m.mass[2] == 0
    m.learn(3, 1.0, T0, [(2, 1.0)])  # index 2 now holds another item
    assert m.row(2)[0].tolist() == [3]
    assert 2 not in m.row(1)[0].tolist()


def test_stats_forget_evicted_items_and_their_maxima() -> None:
    s = ItemStats(3_600.0, 600.0, segment_items=4)
    s.observe(0, T0, kind="watch", completion=1.0, segments=("locale:x",))
    s.observe(0, T0, kind="watch", completion=1.0)
    s.observe(1, T0, kind="watch", completion=1.0, segments=("locale:x",))
    s.evict(np.array([0]))
    both = np.array([0, 1])
    assert s.popularity_of(both)[0] == 0 and s.interactions[0] == 0
    assert s.popularity_max == s.popularity[1] and s.trend_max == s.trend[1]
    assert s.trend_of("locale:x", both).tolist() == [0.0, s.trend[1]]
    assert s.trend_of(GLOBAL_SEGMENT, both)[0] == 0


def _record(item: str, ts: int, context: tuple[str, ...] = (), segment: str = "") -> LearnRecord:
    segments = (segment,) if segment else ()
    return LearnRecord(item, ts, "watch", 1.0, 1.0, segments, tuple((c, 1.0) for c in context))


def test_shared_models_stay_within_their_bounds() -> None:
    params = ModelParams(neighbors=8, catalog_max_items=64, segment_items=5, max_segments=4)
    m = SharedModels(params)
    rng = np.random.default_rng(4)
    for k in range(3_000):
        context = tuple(f"i{int(c)}" for c in rng.integers(0, 300, 6))
        m.apply(_record(f"i{int(rng.integers(0, 300))}", T0 + k, context, f"locale:l{k % 9}"))
    assert len(m.catalog) <= 64 and m.catalog.slots <= 64
    assert int(m.cooc.table.lengths().max()) <= 8
    assert len(m.stats.segment_names()) <= 4
    assert all(len(h) <= 5 for h in m.stats.segments.values())
    assert m.catalog.evicted > 0 and m.cooc.table.pruned > 0
    live = set(m.catalog.ids) - {""}
    for i, j, _ in m.cooc.pairs():  # every stored pair names live items
        assert m.catalog.ids[i] in live and m.catalog.ids[j] in live


def test_models_evict_items_unseen_for_long_by_their_own_clock() -> None:
    m = SharedModels(ModelParams(catalog_evict_after_seconds=86_400.0))
    m.apply(_record("old", T0, ("x",)))
    for k in range(1, 2_048):  # the sweep runs every 1,024 records
        m.apply(_record("new", T0 + 2 * DAY_MS + k, ("y",)))
    assert "old" not in m.catalog and "x" not in m.catalog
    assert "new" in m.catalog and "y" in m.catalog
    assert {(m.catalog.ids[i], m.catalog.ids[j]) for i, j, _ in m.cooc.pairs()} == {
        ("new", "y"),
        ("y", "new"),
    }


def test_items_registered_before_any_event_are_not_stale_at_the_first_sweep() -> None:
    """The catalogue's clock starts with the first record: earlier items start with it."""
    m = SharedModels(ModelParams(catalog_evict_after_seconds=86_400.0))
    m.upsert_item(ItemInfo("listed", ("X",)))
    for k in range(1_024):  # one sweep
        m.apply(_record("watched", T0 + k))
    assert "listed" in m.catalog
    for k in range(1_024):  # a sweep two days later
        m.apply(_record("watched", T0 + 2 * DAY_MS + k))
    assert "listed" not in m.catalog


def test_heavy_hitters_heap_picks_what_a_scan_for_the_lightest_picks() -> None:
    """The lazy heap replaces exactly the slot ``argmin`` over the counts would (ties too)."""
    rng = np.random.default_rng(3)
    fast = HeavyHitters(capacity=20)
    items = np.full(20, -1, dtype=np.int64)  # reference: the plain scan
    counts = np.zeros(20)
    size = 0
    for step in range(5_000):
        item = int(rng.integers(0, 200))
        inc = float(rng.choice([1.0, 0.5, 2.0]))  # repeated values: ties happen
        fast.add(item, inc)
        where = np.flatnonzero(items[:size] == item)
        if where.shape[0]:
            counts[where[0]] += inc
        elif size < 20:
            items[size], counts[size] = item, inc
            size += 1
        else:
            slot = int(np.argmin(counts))
            items[slot], counts[slot] = item, counts[slot] + inc
        if step % 1_000 == 999:  # a rebase rebuilds the heap
            fast.scale(0.5)
            counts *= 0.5
        assert fast.items[: fast.size].tolist() == items[:size].tolist()
        assert fast.counts[: fast.size].tolist() == counts[:size].tolist()
