"""NeighborTable: exact below the bound, pruning rules at it, blocks, transport."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.model.cooc import CoocModel
from pipeline.model.neighbors import NeighborTable


def _as_dict(t: NeighborTable, row: int) -> dict[int, float]:
    ids, weights = t.row(row)
    return dict(zip(ids.tolist(), weights.tolist(), strict=True))


def test_rows_are_exact_sums_while_below_capacity() -> None:
    """Random symmetric updates (what co-occurrence does) against a dict of dicts."""
    rng = random.Random(3)
    t = NeighborTable(capacity=64)
    expected: dict[int, dict[int, float]] = {}
    for _ in range(2_000):
        item = rng.randrange(40)
        others = sorted({rng.randrange(40) for _ in range(rng.randrange(1, 12))} - {item})
        incs = [rng.random() for _ in others]
        t.add_many(item, np.array(others, dtype=np.int64), np.array(incs))
        t.add_to_rows(np.array(others, dtype=np.int64), item, np.array(incs))
        for other, inc in zip(others, incs, strict=True):
            for r, n in ((item, other), (other, item)):
                row = expected.setdefault(r, {})
                row[n] = row.get(n, 0.0) + inc
    assert t.pruned == 0
    for row, want in expected.items():
        assert _as_dict(t, row) == pytest.approx(want)
    assert t.entries() == sum(len(r) for r in expected.values())
    assert sorted(t.rows().tolist()) == sorted(expected)


def test_insertion_order_is_kept_and_unknown_rows_are_empty() -> None:
    t = NeighborTable(capacity=8)
    for n in (5, 3, 9):
        t.add(2, n, 1.0)
    assert t.row(2)[0].tolist() == [5, 3, 9]
    assert t.row(0)[0].shape == (0,) and t.row(99)[1].shape == (0,)


def test_row_moves_to_larger_blocks_as_it_grows() -> None:
    t = NeighborTable(capacity=20, smallest=4)
    assert t.classes.tolist() == [4, 8, 16, 20]
    for n in range(17):
        t.add(0, n, float(n))
    assert int(t.block[0]) == 3  # 17 entries: the 20 block
    assert t.row(0)[0].tolist() == list(range(17))
    assert [len(f) for f in t._free] == [1, 1, 1, 0]  # outgrown blocks, reusable
    t.add(1, 7, 1.0)  # a new row reuses the freed 4-block
    assert [len(f) for f in t._free] == [0, 1, 1, 0]


def test_full_row_keeps_its_heaviest_and_always_takes_the_new_neighbour() -> None:
    t = NeighborTable(capacity=8, keep=5)
    for n in range(8):
        t.add(0, n, float(n + 1))  # weights 1..8: full
    t.add(0, 100, 0.1)  # lighter than everything, still gets in
    row = _as_dict(t, 0)
    assert row == pytest.approx({3: 4.0, 4: 5.0, 5: 6.0, 6: 7.0, 7: 8.0, 100: 0.1})  # float32
    assert t.pruned == 1
    assert t.row(0)[0].tolist() == [3, 4, 5, 6, 7, 100]  # order of the survivors kept


def test_pair_seen_once_is_the_first_to_go() -> None:
    """A row under churn keeps the pairs that recur, drops the one-offs."""
    t = NeighborTable(capacity=16, keep=12)
    rng = random.Random(1)
    for k in range(3_000):
        t.add(0, rng.randrange(5), 1.0)  # five regular neighbours
        t.add(0, 1_000 + k, 1.0)  # one-off neighbours
    ids = set(t.row(0)[0].tolist())
    assert set(range(5)) <= ids
    assert len(ids) <= 16
    assert t.pruned > 0


def test_rows_never_exceed_capacity() -> None:
    t = NeighborTable(capacity=10)
    rng = np.random.default_rng(0)
    for _ in range(500):
        rows = np.unique(rng.integers(0, 30, 8))
        t.add_to_rows(rows, int(rng.integers(0, 1_000)), np.ones(rows.shape[0]))
        nbrs = np.unique(rng.integers(0, 1_000, 25))
        t.add_many(int(rng.integers(0, 30)), nbrs, rng.random(nbrs.shape[0]))
    assert int(t.lengths().max()) <= 10


def test_more_new_neighbours_than_capacity_keeps_the_heaviest() -> None:
    t = NeighborTable(capacity=4)
    t.add_many(0, np.arange(6, dtype=np.int64), np.array([1.0, 6.0, 2.0, 5.0, 3.0, 4.0]))
    assert _as_dict(t, 0) == {1: 6.0, 3: 5.0, 4: 3.0, 5: 4.0}


def test_remove_row_and_remove_where() -> None:
    t = NeighborTable(capacity=8)
    t.add_many(0, np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    t.remove_where(0, np.array([False, True, False]))
    assert _as_dict(t, 0) == {1: 1.0, 3: 3.0}
    t.remove_row(0)
    assert t.row(0)[0].shape == (0,)
    assert t.entries() == 0
    t.add(0, 5, 1.0)  # a removed row can come back
    assert _as_dict(t, 0) == {5: 1.0}


def test_scale_and_arrays_round_trip() -> None:
    t = NeighborTable(capacity=8)
    t.add_many(3, np.array([1, 2]), np.array([1.0, 2.0]))
    t.add_many(7, np.array([4]), np.array([4.0]))
    t.scale(0.5)
    rows, offsets, ids, weights = t.to_arrays()
    assert rows.tolist() == [3, 7]
    assert offsets.tolist() == [0, 2, 3]
    assert ids.tolist() == [1, 2, 4] and weights.tolist() == [0.5, 1.0, 2.0]
    copy = NeighborTable(capacity=8)
    copy.load_arrays(rows, offsets, ids, weights)
    assert _as_dict(copy, 3) == {1: 0.5, 2: 1.0} and _as_dict(copy, 7) == {4: 2.0}


def _filled(capacity: int, seed: int, **options: int) -> NeighborTable:
    t = NeighborTable(capacity=capacity, **options)
    rng = np.random.default_rng(seed)
    for _ in range(400):
        row = int(rng.zipf(1.5)) % 60  # hot rows fill up, the tail's stay short
        nbrs = np.unique(rng.integers(0, 300, int(rng.integers(1, 12))))
        t.add_many(row, nbrs, rng.random(nbrs.shape[0]))
    return t


def _rows(t: NeighborTable) -> tuple[np.ndarray, ...]:
    rows, offsets, ids, weights = t.to_arrays()
    pruned = t.pruned_rows[rows]
    return rows, np.diff(offsets), ids.astype(np.int64), weights.astype(np.float64), pruned


def test_rows_loaded_at_once_are_the_rows_added_one_by_one() -> None:
    """``load_rows`` (a snapshot at start-up) against ``add_many`` per row, then learning on."""
    source = _filled(16, seed=4)
    rows, lengths, ids, weights, pruned = _rows(source)
    assert lengths.max() == 16 and lengths.min() < 4  # every block class in use
    assert pruned.any() and not pruned.all()
    bulk, one_by_one = NeighborTable(capacity=16), NeighborTable(capacity=16)
    assert bulk.load_rows(rows, lengths, ids, weights, pruned)
    ends = np.cumsum(lengths)
    for row, end, length in zip(rows.tolist(), ends.tolist(), lengths.tolist(), strict=True):
        one_by_one.add_many(row, ids[end - length : end], weights[end - length : end])
    one_by_one.pruned_rows[rows] = pruned
    for t in (bulk, one_by_one):
        assert all(_as_dict(t, r) == _as_dict(source, r) for r in range(70))
        assert t.pruned_rows[rows].tolist() == pruned.tolist()
        assert t.used == sum(int(t.classes[t.block[r]]) for r in t.rows().tolist())
    rng = np.random.default_rng(9)
    for _ in range(300):  # the same learning afterwards: the same rows (prunes included)
        row = int(rng.integers(0, 70))
        nbrs = np.unique(rng.integers(0, 300, int(rng.integers(1, 12))))
        incs = rng.random(nbrs.shape[0])
        for t in (bulk, one_by_one):
            t.add_many(row, nbrs, incs)
    assert all(_as_dict(bulk, r) == _as_dict(one_by_one, r) for r in range(70))
    assert bulk.pruned == one_by_one.pruned > 0


def test_rows_that_cannot_be_loaded_at_once_are_left_to_add_many() -> None:
    rows, lengths, ids, weights, pruned = _rows(_filled(16, seed=5))
    assert not NeighborTable(capacity=8).load_rows(rows, lengths, ids, weights, pruned)  # long
    tight = NeighborTable(capacity=16, max_slots=64)
    assert not tight.load_rows(rows, lengths, ids, weights, pruned)  # over the budget
    assert tight.used == 0
    twice = np.concatenate((rows[:1], rows[:1]))
    two = np.concatenate((lengths[:1], lengths[:1]))
    pairs = np.concatenate((ids[: lengths[0]], ids[: lengths[0]]))
    w = np.concatenate((weights[: lengths[0]], weights[: lengths[0]]))
    flags = np.concatenate((pruned[:1], pruned[:1]))
    assert not NeighborTable(capacity=16).load_rows(twice, two, pairs, w, flags)  # a row twice
    filled = _filled(16, seed=6)
    assert not filled.load_rows(rows, lengths, ids, weights, pruned)  # not empty


def test_memory_is_bounded_by_rows_times_capacity() -> None:
    t = NeighborTable(capacity=32)
    rng = np.random.default_rng(1)
    for _ in range(3_000):
        row = int(rng.integers(0, 50))
        nbrs = np.unique(rng.integers(0, 10_000, 20))
        t.add_many(row, nbrs, np.ones(nbrs.shape[0]))
    # 50 rows: at most 50 blocks of 32 in use, plus freed smaller blocks and slack
    assert t.entries() <= 50 * 32
    assert t.used <= 50 * (32 + 16 + 8 + 4)
    assert t.nbytes() < 200_000
    assert t.ids.itemsize + t.weights.itemsize == 8  # int32 id + float32 weight an entry


def _grow_rows(
    t: NeighborTable, rng: np.random.Generator, steps: int
) -> dict[int, dict[int, float]]:
    """Rows that grow through the block classes (what a large catalogue does), and a reference."""
    expected: dict[int, dict[int, float]] = {}
    for _ in range(steps):
        row = int(rng.integers(0, 400))
        nbrs = np.unique(rng.integers(0, 5_000, int(rng.integers(1, 6))))
        incs = rng.random(nbrs.shape[0])
        t.add_many(row, nbrs, incs)
        ref = expected.setdefault(row, {})
        for n, w in zip(nbrs.tolist(), incs.tolist(), strict=True):
            ref[n] = ref.get(n, 0.0) + w
    return expected


def test_compaction_keeps_every_row_and_drops_the_freed_blocks() -> None:
    t = NeighborTable(capacity=128)
    expected = _grow_rows(t, np.random.default_rng(5), 4_000)
    assert t.pruned == 0 and t.free_slots() > 0
    in_blocks = int(t.classes[t.block[t.rows()]].sum())
    assert t.used == in_blocks + t.free_slots()
    t.compact()
    assert t.free_slots() == 0 and t.used == in_blocks
    for row, want in expected.items():
        assert _as_dict(t, row) == pytest.approx(want)
    more = _grow_rows(t, np.random.default_rng(6), 2_000)  # and it goes on as before
    for row, want in more.items():
        for n, w in want.items():
            expected.setdefault(row, {})[n] = expected.get(row, {}).get(n, 0.0) + w
    assert t.pruned == 0
    for row, want in expected.items():
        assert _as_dict(t, row) == pytest.approx(want)


def test_arena_is_packed_instead_of_grown_when_freed_blocks_hold_a_quarter() -> None:
    t = NeighborTable(capacity=256)
    expected = _grow_rows(t, np.random.default_rng(8), 12_000)
    assert t.compactions >= 1
    in_blocks = int(t.classes[t.block[t.rows()]].sum())
    assert t.used == in_blocks + t.free_slots()
    # a block from the arena's end packs it first when freed blocks hold a quarter
    assert t.pruned == 0 and t.free_slots() * 4 < t.used + 256 * 4
    for row, want in expected.items():
        assert _as_dict(t, row) == pytest.approx(want)


def test_compaction_with_a_threshold_drops_exactly_the_lighter_entries() -> None:
    t = NeighborTable(capacity=128)
    expected = _grow_rows(t, np.random.default_rng(4), 3_000)
    theta = 0.5
    t.compact(min_weight=theta)
    for row, want in expected.items():
        kept = {n: w for n, w in want.items() if np.float32(w) >= np.float32(theta)}
        assert _as_dict(t, row) == pytest.approx(kept)
        assert t.was_pruned(row) == (len(kept) < len(want))
    in_blocks = int(t.classes[t.block[t.rows()]].sum())
    assert t.used == in_blocks and t.free_slots() == 0
    lengths = t.length[t.rows()]
    assert (t.classes[t.block[t.rows()]] >= lengths).all()  # smallest block holding each
    assert ((lengths > 4) <= (t.classes[t.block[t.rows()] - 1] < lengths)).all()


def test_budget_bounds_the_arena_and_keeps_the_heaviest_pairs() -> None:
    """Heavy pairs seen often survive; the slots handed out never pass the budget."""
    rng = np.random.default_rng(2)
    budget = 16 * 64
    t = NeighborTable(capacity=64, max_slots=budget)
    heavy = {(r, r + 1000) for r in range(20)}
    for step in range(6_000):
        row = int(rng.integers(0, 60))
        nbrs = np.unique(rng.integers(2_000, 50_000, 3))
        t.add_many(row, nbrs, np.full(nbrs.shape[0], 0.1))
        if step % 10 == 0:
            for r, n in heavy:
                t.add(r, n, 1.0)
        assert t.used <= budget and t.high_water <= budget
    assert t.budget_passes >= 1
    for r, n in heavy:
        ids, weights = t.row(r)
        assert n in ids.tolist()
    assert t.nbytes() <= (budget + 64) * 8 + t.start.nbytes * 3


def test_budget_must_hold_four_rows() -> None:
    with pytest.raises(ValueError, match="four full rows"):
        NeighborTable(capacity=64, max_slots=100)


def test_capacity_must_hold_two() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 2"):
        NeighborTable(capacity=1)


class _SearchingTable(NeighborTable):
    """Reference: every mirror update searches its row, nothing is assumed absent."""

    def append_to_rows(self, rows: np.ndarray, neighbor: int, incs: np.ndarray) -> None:
        self.add_to_rows(rows, neighbor, incs)


def test_mirrors_appended_without_a_search_are_the_ones_a_search_finds_absent() -> None:
    """A row never pruned that lacks a pair means its mirror row lacks it (prunes, evictions)."""
    rng = np.random.default_rng(9)
    fast, reference = CoocModel(neighbors=8, keep=5), CoocModel(neighbors=8, keep=5)
    reference.table = _SearchingTable(8, keep=5)
    for step in range(3_000):
        item = int(rng.integers(0, 40))
        others, weights = rng.integers(0, 40, 5).tolist(), rng.random(5).tolist()
        context = list(zip(others, weights, strict=True))
        for m in (fast, reference):
            m.learn(item, 1.0, 1_700_000_000_000 + step, context)
            if step % 250 == 249:  # the catalogue evicts a few items (their indices reused)
                m.evict(np.array([step % 40, (step * 7) % 40], dtype=np.int64))
    assert fast.table.pruned > 0
    got = {(i, j): w for i, j, w in fast.pairs()}
    assert got == pytest.approx({(i, j): w for i, j, w in reference.pairs()})
    for item in range(40):  # no row holds a neighbour twice
        ids, _ = fast.row(item)
        assert len(set(ids.tolist())) == ids.shape[0]


@pytest.mark.parametrize("forward", [0.5, 0.75])
def test_directed_pairs_weigh_what_came_after_an_item(forward: float) -> None:
    """``forward`` of a pair's weight goes to the earlier item's row ("what came next")."""
    model = CoocModel(neighbors=8, forward=forward)
    model.learn(2, 1.0, 0, [(0, 1.0), (1, 0.5)])  # 0, then 1, then 2
    pairs = {(i, j): w for i, j, w in model.pairs()}
    assert pairs[(0, 2)] == pytest.approx(2 * forward * 1.0)  # 2 came after 0
    assert pairs[(2, 0)] == pytest.approx(2 * (1 - forward) * 1.0)
    assert pairs[(1, 2)] == pytest.approx(2 * forward * 0.5)
    assert pairs[(2, 1)] == pytest.approx(2 * (1 - forward) * 0.5)
