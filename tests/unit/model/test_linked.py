"""LinkedNeighborTable: the same rows as searching for the mirrors, with consistent links."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.cooc import CoocModel
from pipeline.model.linked import LinkedNeighborTable
from pipeline.model.neighbors import NeighborTable

T0 = 1_700_000_000_000


class SearchingTable(NeighborTable):
    """The reference: the mirror half of an update found by searching the rows."""

    def add_linked(
        self, row: int, row_ref: int, neighbors: IntArray, rows: IntArray, incs: FloatArray
    ) -> None:
        self.add_many(row, neighbors, incs)
        self.add_to_rows(rows, row_ref, incs)


def _rows(t: NeighborTable, n: int) -> list[list[tuple[int, float]]]:
    out = []
    for r in range(n):
        ids, weights = t.row(r)
        out.append(list(zip(ids.tolist(), weights.tolist(), strict=True)))
    return out


@pytest.mark.parametrize(("capacity", "keep"), [(64, None), (6, 4), (8, 1)])
def test_linked_rows_equal_searched_rows_and_links_stay_consistent(
    capacity: int, keep: int | None
) -> None:
    rng = np.random.default_rng(capacity)
    linked = LinkedNeighborTable(capacity, keep=keep, row_of=lambda ids: ids, ref_of=int)
    plain = SearchingTable(capacity, keep=keep)
    for step in range(1_500):
        row = int(rng.integers(0, 30))
        others = np.unique(rng.integers(0, 30, int(rng.integers(1, 9))))
        others = others[others != row]
        incs = rng.random(others.shape[0])
        for t in (linked, plain):
            t.add_linked(row, row, others, others, incs)  # type: ignore[attr-defined]
        if step % 100 == 0:
            assert linked.check_links() > 0
    assert _rows(linked, 30) == _rows(plain, 30)
    assert linked.check_links() > 0
    if capacity < 30:
        assert linked.pruned > 0


def test_cooc_with_links_equals_cooc_searching_mirrors_across_evictions() -> None:
    rng = np.random.default_rng(9)
    fast, reference = CoocModel(neighbors=8, keep=5), CoocModel(neighbors=8, keep=5)
    reference.table = SearchingTable(8, keep=5)
    for step in range(3_000):
        item = int(rng.integers(0, 40))
        context = [(int(c), float(w)) for c, w in zip(rng.integers(0, 40, 5), rng.random(5))]
        for m in (fast, reference):
            m.learn(item, 1.0, T0 + step, context)
            if step % 250 == 249:  # the catalogue evicts a few items (their indices reused)
                m.evict(np.array([step % 40, (step * 7) % 40], dtype=np.int64))
    got = {(i, j): w for i, j, w in fast.pairs()}
    assert got == pytest.approx({(i, j): w for i, j, w in reference.pairs()})
    assert fast.table.check_links() > 0  # type: ignore[attr-defined]
    for item in range(40):
        ids_f, w_f = fast.neighbors(item)
        ids_r, w_r = reference.neighbors(item)
        assert ids_f.tolist() == ids_r.tolist()
        assert w_f.tolist() == pytest.approx(w_r.tolist())
