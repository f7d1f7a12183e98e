"""The cheaper learn step computes the same bits as the straightforward formulas it replaced.

``bench/scale_learn.py --digest`` checks it at a million items; these check it on small,
random inputs that reach every branch (rows at the arena's end, rows that grow and prune,
evictions that make references stale).
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.cooc import CoocModel
from pipeline.model.item_features import recency_weights
from pipeline.model.neighbors import NeighborTable


def _similarity_to_reference(
    m: CoocModel, item: int, *histories: list[tuple[int, float]]
) -> tuple[float, ...]:
    """The vectorised formula ``similarity_to`` used before (bincount of the terms)."""
    zero = (0.0,) * len(histories)
    if item >= m.mass.shape[0] or m.mass[item] <= 0:
        return zero
    ids, weights = m.row(item)
    others = [pair for history in histories for pair in history]
    if ids.shape[0] == 0 or not others:
        return zero
    other_ids = np.array([o for o, _ in others], dtype=np.int64)
    flat = np.flatnonzero(ids == other_ids[:, None])
    if flat.shape[0] == 0:
        return zero
    k, at = np.divmod(flat, ids.shape[0])
    mass = m.mass[other_ids[k]]
    w = np.array([others[j][1] for j in k.tolist()])
    terms = np.where(mass > 0, w * weights[at], 0.0) / (
        np.maximum(mass, 1e-9) ** m.alpha * float(m.mass[item]) ** m.beta
    )
    ends = np.cumsum([len(h) for h in histories])
    sums = np.bincount(np.searchsorted(ends, k, side="right"), terms, len(histories))
    return tuple(float(x) for x in sums)


def _pairs(rng: np.random.Generator, n: int, items: int = 60) -> list[tuple[int, float]]:
    return list(zip(rng.integers(0, items, n).tolist(), rng.random(n).tolist(), strict=True))


def test_similarity_to_is_bit_identical_to_the_bincount_formula() -> None:
    rng = np.random.default_rng(3)
    m = CoocModel(neighbors=16, keep=12, window=5.0)
    for step in range(2_000):
        m.learn(int(rng.integers(0, 60)), float(rng.random()) + 0.1, step, _pairs(rng, 8))
        if step == 1_000:  # after an eviction references carry generations
            m.evict(np.array([3, 4], dtype=np.int64))
        if step % 20 == 0:
            item = int(rng.integers(0, 62))
            pos, neg = _pairs(rng, 20), _pairs(rng, 5)
            want = _similarity_to_reference(m, item, pos, neg, [])
            assert m.similarity_to(item, pos, neg, []) == want  # exact, not approx


def test_references_are_plain_indices_until_the_first_eviction() -> None:
    m = CoocModel(neighbors=8)
    m.learn(1, 1.0, 0, [(0, 1.0), (2, 1.0)])
    assert not m.evicted
    assert m.table.row(1)[0].tolist() == [0, 2]
    m.evict(np.array([0], dtype=np.int64))
    assert m.evicted
    m.learn(1, 1.0, 1, [(0, 1.0)])  # index 0 again: a new item, generation 1
    assert m.table.row(1)[0].tolist() == [0, 2, (1 << 24) | 0]
    assert m.row(1)[0].tolist() == [2, 0]  # the stale reference to the old item 0 is gone
    assert m.table.row(1)[0].tolist() == [2, (1 << 24) | 0]  # purged when read


def test_mirror_search_reads_rows_at_the_end_of_the_arena() -> None:
    """The last block allocated ends at the high-water mark: the search's view covers it."""
    t = NeighborTable(capacity=8, keep=5)
    t.ids = np.full(16, -1, dtype=np.int32)  # a tight arena: only the slack past the end
    t.weights = np.zeros(16, dtype=np.float32)
    rows = np.arange(6, dtype=np.int64)
    for k in range(8):
        t.add_to_rows(rows, 100 + k, np.ones(6))
        t.add_to_rows(rows, 100 + k, np.full(6, 0.5))  # found: weights add
    for row in rows.tolist():
        ids, weights = t.row(row)
        assert ids.tolist() == list(range(100, 108))
        assert weights.tolist() == [1.5] * 8
    assert t.used + t.capacity <= t.ids.shape[0]


def test_windows_view_is_read_only() -> None:
    t = NeighborTable(capacity=8)
    t.add_many(0, np.array([1, 2]), np.array([1.0, 2.0]))
    view = t._windows(4)
    assert view[0].tolist() == t.ids[:4].tolist()
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 7


def test_recency_weights_are_cached_copies() -> None:
    first = recency_weights(4, 0.5)
    first[0] = 99.0  # a caller may change its copy
    assert recency_weights(4, 0.5) == [0.125, 0.25, 0.5, 1.0]
