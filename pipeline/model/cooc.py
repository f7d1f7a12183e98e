"""Item-item co-occurrence: the collaborative signal ("people who liked X went on to like Y").

Every positive interaction with item ``j`` by a user whose recent positives are
``i_1..i_L`` adds ``w_j * w_i`` (times forward-decay mass, so old co-occurrences fade with
``half_life``) to ``C[i, j]`` and ``C[j, i]``. Similarity is popularity-damped,
``C[i, j] / (n_i ** alpha * n_j ** beta)``, so a blockbuster does not become everybody's
neighbour. A user is scored by summing the similarity rows of their recent positives,
weighted by recency: what the user did last counts most (the strongest cheap signal on the
quality benchmark, see README).

Rows are sparse dicts. Scoring reads a cached top-``neighbors`` array per row, rebuilt after
``rebuild_every`` updates to that row, which keeps a refresh at a few hundred microseconds
whatever the catalogue size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.features.decay import growth_exponent, rescale_needed
from pipeline.model.arrays import FloatArray, IntArray, fit

_MIN_MASS = 1e-9
_EMPTY_IDS: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_W: FloatArray = np.zeros(0, dtype=np.float64)


class CoocModel:
    """Online, decayed, popularity-damped item co-occurrence.

    >>> m = CoocModel()
    >>> m.learn(1, 1.0, 0, [(0, 1.0)])
    >>> ids, sims = m.neighbors(0)
    >>> ids.tolist()
    [1]
    """

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        beta: float = 0.5,
        half_life_seconds: float = 180 * 86_400.0,
        neighbors: int = 200,
        rebuild_every: int = 8,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.half_life = half_life_seconds
        self.max_neighbors = neighbors
        self.rebuild_every = rebuild_every
        self.landmark_ts: int | None = None
        self.rows: dict[int, dict[int, float]] = {}
        self.mass = np.zeros(0, dtype=np.float64)  # decayed positive mass n_i
        self._cache: dict[int, tuple[IntArray, FloatArray]] = {}
        self._dirty: dict[int, int] = {}
        self.updates = 0

    def learn(
        self, item: int, weight: float, ts: int, context: Sequence[tuple[int, float]]
    ) -> None:
        """Learn a positive interaction with ``item`` that followed the ``context`` items.

        ``context`` holds the user's recent positives as ``(item, weight)``; negative
        interactions are not co-occurrences and are never passed here.
        """
        if weight <= 0:
            return
        if self.landmark_ts is None:
            self.landmark_ts = ts
        exponent = growth_exponent(ts, self.landmark_ts, self.half_life)
        if rescale_needed(exponent):
            self._rescale(ts)
            exponent = 0.0
        mass = weight * 2.0**exponent
        # context items may not be known here yet (learned by another worker, not synced)
        top = max([item, *(other for other, _ in context)])
        self.mass = fit(self.mass, top + 1)
        self.mass[item] += mass
        row_j = self.rows.setdefault(item, {})
        for other, other_weight in context:
            if other == item or other_weight <= 0:
                continue
            inc = mass * other_weight
            row_j[other] = row_j.get(other, 0.0) + inc
            row_i = self.rows.setdefault(other, {})
            row_i[item] = row_i.get(item, 0.0) + inc
            self._dirty[other] = self._dirty.get(other, 0) + 1
        self._dirty[item] = self._dirty.get(item, 0) + 1
        self.updates += 1

    def neighbors(self, item: int) -> tuple[IntArray, FloatArray]:
        """Top neighbours of ``item`` and their damped similarities, best first."""
        cached = self._cache.get(item)
        if cached is not None and self._dirty.get(item, 0) < self.rebuild_every:
            return cached
        row = self.rows.get(item)
        if not row:
            return _EMPTY_IDS, _EMPTY_W
        ids = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
        weights = np.fromiter(row.values(), dtype=np.float64, count=len(row))
        # an item only seen as context has no mass of its own yet: floor it, no inf scores
        mass = np.maximum(self.mass[ids], _MIN_MASS)
        sims = weights / (mass**self.beta * max(float(self.mass[item]), _MIN_MASS) ** self.alpha)
        if ids.shape[0] > self.max_neighbors:
            top = np.argpartition(-sims, self.max_neighbors)[: self.max_neighbors]
            ids, sims = ids[top], sims[top]
        order = np.argsort(-sims)
        cached = (ids[order], sims[order])
        self._cache[item] = cached
        self._dirty[item] = 0
        return cached

    def score(self, history: Sequence[tuple[int, float]]) -> tuple[IntArray, FloatArray]:
        """Items similar to a weighted history, with summed similarity (sorted by id)."""
        ids, summed, _ = self.score_with_anchors(history)
        return ids, summed

    def score_with_anchors(
        self, history: Sequence[tuple[int, float]]
    ) -> tuple[IntArray, FloatArray, IntArray]:
        """``score``, plus per item the history item that contributes most to its score.

        The anchor is what a list names in "because you watched X" (on an exact tie, any of
        the best).
        """
        parts_ids: list[IntArray] = []
        parts_w: list[FloatArray] = []
        sources: list[int] = []
        for item, weight in history:
            ids, sims = self.neighbors(item)
            if ids.shape[0]:
                parts_ids.append(ids)
                parts_w.append(sims * weight)
                sources.append(item)
        if not parts_ids:
            return _EMPTY_IDS, _EMPTY_W, _EMPTY_IDS
        ids = np.concatenate(parts_ids)
        weights = np.concatenate(parts_w)
        unique, inverse = np.unique(ids, return_inverse=True)
        summed = np.bincount(inverse, weights=weights, minlength=unique.shape[0])
        best = np.zeros(unique.shape[0])
        np.maximum.at(best, inverse, weights)
        source = np.repeat(np.array(sources, dtype=np.int64), [p.shape[0] for p in parts_ids])
        top = np.flatnonzero(weights == best[inverse])
        anchors = np.zeros(unique.shape[0], dtype=np.int64)
        anchors[inverse[top]] = source[top]
        return unique, summed.astype(np.float64), anchors

    def similarity(self, item: int, others: Sequence[tuple[int, float]]) -> float:
        """Weighted damped similarity of one item to a history (for training features)."""
        row = self.rows.get(item)
        if not row or item >= self.mass.shape[0] or self.mass[item] <= 0:
            return 0.0
        total = 0.0
        for other, weight in others:
            c = row.get(other)
            if c and self.mass[other] > 0:
                total += (
                    weight * c / (self.mass[other] ** self.alpha * self.mass[item] ** self.beta)
                )
        return total

    def _rescale(self, ts: int) -> None:
        assert self.landmark_ts is not None
        factor = 2.0 ** -growth_exponent(ts, self.landmark_ts, self.half_life)
        self.mass *= factor
        for row in self.rows.values():
            for key in row:
                row[key] *= factor
        self._cache.clear()
        self.landmark_ts = ts
