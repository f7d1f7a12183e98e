"""Sparse category membership of the catalogue's items: a few category indices per item.

Ranking needs, per candidate, the user's affinity summed over the item's categories; the
candidate pools need the members of a category. A dense item x category matrix does both
in one product but costs ``items x categories x 8`` bytes (600 MB at a million items). Here
each item has a short row of category indices (``cats``, -1 padded, as wide as the item
with the most categories, at most ``MAX_ITEM_CATEGORIES``) and the share ``1 / len(names)``
of each (``share``): 4 bytes per column and 8 per item.

>>> c = CategoryMembership(capacity=4)
>>> c.assign(0, ("Drama", "Crime")), c.assign(1, ("Crime",))
(('Drama', 'Crime'), ('Crime',))
>>> c.mass(np.array([0, 1, 2]), np.array([1.0, 0.5])).tolist()
[0.75, 0.5, 0.0]
>>> c.members(c.index("Crime"), np.ones(4, dtype=bool), 3).tolist()
[0, 1]
"""

from __future__ import annotations

import numpy as np

from pipeline.model.arrays import BoolArray, FloatArray, Int32Array, IntArray

MAX_CATEGORIES = 4_096  # category names indexed (more: kept in the item's names, not indexed)
MAX_ITEM_CATEGORIES = 16  # categories indexed per item


class CategoryMembership:
    """Category names and, per item index, its categories as indices with their share."""

    def __init__(self, capacity: int) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        self._tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.cats: Int32Array = np.full((capacity, 1), -1, dtype=np.int32)
        self.share: FloatArray = np.zeros(capacity, dtype=np.float64)

    def index(self, name: str) -> int:
        """Index of a category, registering it when new (``-1`` past ``MAX_CATEGORIES``)."""
        idx = self._index.get(name)
        if idx is None:
            if len(self.names) >= MAX_CATEGORIES:
                return -1
            idx = len(self.names)
            self._index[name] = idx
            self.names.append(name)
        return idx

    def find(self, name: str) -> int | None:
        """Index of a known category, or ``None``."""
        return self._index.get(name)

    def assign(self, item: int, names: tuple[str, ...]) -> tuple[str, ...]:
        """Set an item's categories; returns the names as a shared (interned) tuple."""
        indexed = [c for c in dict.fromkeys(self.index(n) for n in names) if c >= 0]
        indexed = indexed[:MAX_ITEM_CATEGORIES]
        if len(indexed) > self.cats.shape[1]:
            wider = np.full((self.cats.shape[0], len(indexed)), -1, dtype=np.int32)
            wider[:, : self.cats.shape[1]] = self.cats
            self.cats = wider
        self.cats[item] = -1
        self.cats[item, : len(indexed)] = indexed
        # an item's category mass sums to one over the names it declares
        self.share[item] = 1.0 / len(names) if indexed else 0.0
        if len(self._tuples) > MAX_CATEGORIES:  # interning is only a saving: stay bounded
            self._tuples.clear()
        return self._tuples.setdefault(names, names)

    def clear(self, items: IntArray) -> None:
        """Items left the catalogue: no categories."""
        self.cats[items] = -1
        self.share[items] = 0.0

    def mass(self, items: IntArray, values: FloatArray) -> FloatArray:
        """Per item, ``sum(values[c] * share)`` over its categories (``values`` per category)."""
        padded = np.append(values, 0.0)  # index -1 (padding) reads the 0
        mass: FloatArray = padded[self.cats[items]].sum(axis=1) * self.share[items]
        return mass

    def members(self, category: int, live: BoolArray, n: int) -> IntArray:
        """Indices below ``n`` of the live items of a category (a scan: for rebuilds only)."""
        return np.flatnonzero((self.cats[:n] == category).any(axis=1) & live[:n])

    def grow(self, capacity: int) -> None:
        """Room for item indices below ``capacity``."""
        have = self.share.shape[0]
        cats = np.full((capacity, self.cats.shape[1]), -1, dtype=np.int32)
        cats[:have] = self.cats
        share = np.zeros(capacity, dtype=np.float64)
        share[:have] = self.share
        self.cats, self.share = cats, share

    def nbytes(self) -> int:
        """Bytes of the arrays."""
        return int(self.cats.nbytes + self.share.nbytes)
