"""An exact top-k kept up to date from changes, so an index refresh never scans the catalogue.

The candidate pools (trending, per category, newest) are the best items of a ranking whose
scores only move in known ways between two refreshes: a trend mass grows when its item is
counted (forward decay: all scores are rescaled together, which keeps the order), metadata
changes when an item is updated or evicted. ``TopK`` holds the exact top of such a ranking
under the strict order *score descending, then index ascending*, for up to ``capacity``
items, and two operations keep it exact:

* ``merge(changed)``: items whose score rose, or that may have become eligible, are ranked
  together with the current top. An item outside both scored no better than the last
  member when it was left out, and members only rose since, so the new top of the union is
  the top of everything, for as many places as the top was exact.
* ``remove(items)``: items whose score may have dropped or that may no longer be eligible
  leave; what remains is still exact but for one place fewer, unless the top held every
  eligible item (``complete``). When it holds fewer than its readers need, the caller
  rebuilds it from a scan (``rebuild``), which is rare: it takes item updates or evictions.

>>> top = TopK(capacity=2)
>>> scores = np.array([0.0, 3.0, 1.0, 2.0])
>>> top.rebuild(np.arange(4), scores[np.arange(4)])
>>> top.items.tolist(), top.complete
([1, 3], False)
>>> scores[2] = 5.0
>>> top.merge(np.array([2]), lambda items: (scores[items], scores[items] > 0))
>>> top.items.tolist()
[2, 1]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.model.arrays import BoolArray, FloatArray, IntArray

Score = Callable[[IntArray], tuple[FloatArray, BoolArray]]
"""Scores of items and whether each is eligible for the ranking at all."""

_EMPTY: IntArray = np.zeros(0, dtype=np.int64)


def ranked(items: IntArray, scores: FloatArray, limit: int) -> IntArray:
    """The ``limit`` best ``items`` by score, ties by lower index.

    >>> ranked(np.array([4, 2, 9]), np.array([1.0, 1.0, 3.0]), 2).tolist()
    [9, 2]
    """
    if items.shape[0] > 4 * limit:  # partition first: only the head needs sorting
        head = np.argpartition(-scores, limit - 1)[:limit] if limit else _EMPTY
        bound = scores[head].min() if limit else np.inf
        keep = np.flatnonzero(scores >= bound)  # ties at the boundary are all ranked
        items, scores = items[keep], scores[keep]
    return items[np.lexsort((items, -scores))][:limit]


class TopK:
    """The exact best ``capacity`` items of a ranking, kept from changes (see module doc)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: IntArray = _EMPTY
        self.complete = True  # holds every eligible item

    def rebuild(self, items: IntArray, scores: FloatArray) -> None:
        """Start over from every eligible item and its score."""
        self.items = ranked(items, scores, self.capacity)
        self.complete = items.shape[0] <= self.capacity

    def remove(self, items: IntArray) -> bool:
        """Drop ``items`` (their score may have fallen or they may no longer be eligible).

        Returns whether any was in the top.
        """
        if self.items.shape[0] and items.shape[0]:
            keep = ~np.isin(self.items, items)
            if not keep.all():
                self.items = self.items[keep]
                return True
        return False

    def merge(self, changed: IntArray, score: Score) -> None:
        """Rank ``changed`` (distinct items whose score rose or may now count) with the top."""
        if changed.shape[0] == 0:
            return
        union = np.union1d(self.items, changed)
        scores, eligible = score(union)
        union, scores = union[eligible], scores[eligible]
        if self.complete:
            self.items = ranked(union, scores, self.capacity)
            self.complete = union.shape[0] <= self.capacity
        else:
            self.items = ranked(union, scores, self.items.shape[0])
