"""Item-item co-occurrence: the collaborative signal ("people who liked X went on to like Y").

Every positive interaction with item ``j`` by a user whose recent positives are
``i_1..i_L`` (oldest first, ``d`` = how many items back ``i`` is) adds
``w_j * w_i * exp(-(d - 1) / window)`` to ``C[i, j]`` and ``C[j, i]``: items chosen close
together in a user's sequence become closer neighbours (windowed co-occurrence; the weights
and the sequence are the user's, see ``pipeline.features.sequence``). Nothing fades with time by
default (``half_life_seconds`` 0): the context weights count positions in the user's own
sequence, so the model means the same on a stream that spans a week or decades (a wall-clock
half-life tuned on one data set does not transfer, see README "Quality"). A positive
``half_life_seconds`` brings back forward decay (the mass is then ``2 ** ((t - landmark) /
half_life)``, rebased before it overflows). Similarity is popularity-damped,
``C[i, j] / (n_i ** alpha * n_j ** beta)``, so a blockbuster does not become everybody's
neighbour. A user is scored by summing the similarity rows of their recent positives,
weighted by recency: what the user did last counts most (the strongest cheap signal on the
quality benchmark, see README). ``forward`` makes the pairs directed: the earlier item's row
(``C[i, j]``: what came after ``i``) gets ``2 * forward`` of the increment and the later
one's ``2 * (1 - forward)``; 0.5, the default, is the symmetric model (README "Quality"
gives the measurement that kept it).

Rows live in a ``NeighborTable`` of at most ``neighbors`` entries each
(``RECLOOP_MODEL_NEIGHBORS``; a full row is pruned to its heaviest entries, see
``pipeline.model.neighbors`` for the error that introduces), so reading a row costs
``O(neighbors)`` whatever its history and similarities are computed when a list is built,
never cached. Entries name their neighbour by a 32-bit *reference*, the catalogue index
(24 bits: at most 16,777,216 items) plus the index's generation modulo 128
(``generation << 24 | index``, never negative): when the catalogue evicts an item and
reuses its index, references to the old item no longer match and are dropped when read.
A stale reference could only pass the check if its index were reused a multiple of 128
times while the row holding it was never read (every read purges it); an eviction needs the
item unseen for ``RECLOOP_CATALOG_EVICT_AFTER_SECONDS`` or the catalogue full, so that is
far outside what a worker lives through.

Weights are float32 (``pipeline.model.neighbors``): with forward decay (a positive
``half_life_seconds``) they are rebased when the growth factor reaches ``2 ** 64``, so a
weight stays below ``2 ** 64`` times the events summed into it, far below float32's
``2 ** 128``; the per-item mass stays float64.

Memory: the table (arena slots x 8 bytes + 14 bytes per row; the arena bounded by
``RECLOOP_MODEL_NEIGHBOR_MEMORY_MB``, see ``pipeline.model.neighbors``) + 12 bytes per item
(mass, generation).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from operator import itemgetter, mul

import numpy as np

from pipeline.features.decay import growth_exponent, rescale_needed
from pipeline.model.arrays import (
    BoolArray,
    Float32Array,
    FloatArray,
    Int32Array,
    IntArray,
    fit,
    unique_inverse,
)
from pipeline.model.neighbors import NeighborTable

_first, _second = itemgetter(0), itemgetter(1)  # of (item, weight) pairs
_MIN_MASS = 1e-9
_INDEX_BITS = 24
_INDEX = (1 << _INDEX_BITS) - 1
MAX_ITEMS = 1 << _INDEX_BITS  # catalogue indices a reference can name
_GENERATIONS = 128  # generation kept modulo this: a reference stays a non-negative int32
_RESCALE_EXPONENT = 64.0  # float32 weights: rebase while 2 ** exponent is far from 2 ** 128
_FACTORS_CACHED = 256  # context lengths whose window factors are kept (bounded cache)
_EMPTY_IDS: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_W: FloatArray = np.zeros(0, dtype=np.float64)


def resolve_refs(refs: Int32Array, generation: Int32Array) -> tuple[IntArray, BoolArray]:
    """Catalogue indices named by row references, and which of them are still live.

    A reference is live while its index's generation is the one it was written with (see
    the module docstring); snapshots drop the others, as reading a row does.

    >>> ids, live = resolve_refs(np.array([5, (1 << 24) | 6], dtype=np.int32),
    ...                          np.array([0] * 6 + [2], dtype=np.int32))
    >>> ids.tolist(), live.tolist()
    ([5, 6], [True, False])
    """
    ids = (refs & _INDEX).astype(np.int64)
    return ids, (refs >> _INDEX_BITS) == generation[ids]


class CoocModel:
    """Online, decayed, popularity-damped item co-occurrence in bounded rows.

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
        half_life_seconds: float = 0.0,
        window: float = 0.0,
        neighbors: int = 200,
        keep: int | None = None,
        forward: float = 0.5,
        max_slots: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.half_life = half_life_seconds
        self.window = window
        self.forward = forward
        self.table = NeighborTable(neighbors, keep=keep, max_slots=max_slots)
        self.landmark_ts: int | None = None
        self.mass = np.zeros(0, dtype=np.float64)  # decayed positive mass n_i
        self.generation = np.zeros(0, dtype=np.int32)  # of each index, modulo 128
        self.updates = 0
        self.evicted = False  # whether an index was ever evicted (references may be stale)
        self._factors: dict[int, list[float]] = {}  # window factors by context length

    @property
    def max_neighbors(self) -> int:
        """Neighbours a row holds at most."""
        return self.table.capacity

    def learn(
        self, item: int, weight: float, ts: int, context: Sequence[tuple[int, float]]
    ) -> None:
        """Learn a positive interaction with ``item`` that followed the ``context`` items.

        ``context`` holds the user's recent items as ``(item, weight)``, oldest first, the
        latest last; with a ``window``, the ``d``-th latest counts ``exp(-(d - 1) / window)``.
        """
        if weight <= 0:
            return
        mass = weight
        if self.half_life > 0:
            if self.landmark_ts is None:
                self.landmark_ts = ts
            exponent = growth_exponent(ts, self.landmark_ts, self.half_life)
            if rescale_needed(exponent, _RESCALE_EXPONENT):
                self._rescale(ts)
                exponent = 0.0
            mass *= 2.0**exponent
        # whole-list operations in C (``map``), not a Python loop per context item: a
        # context holds up to ``learn_context`` (100) items
        others_list, weights = list(map(_first, context)), list(map(_second, context))
        if self.window > 0 and weights:
            weights = list(map(mul, weights, self._window_factors(len(weights))))
        if (
            item in others_list
            or min(weights, default=1.0) <= 0
            or len(set(others_list)) != len(others_list)
        ):  # the item itself, non-positive or repeated context: sum per item
            incs: dict[int, float] = {}
            for other, other_weight in zip(others_list, weights, strict=True):
                if other != item and other_weight > 0:
                    incs[other] = incs.get(other, 0.0) + other_weight
            others_list, weights = list(incs), list(incs.values())
        self._fit(max(item, *others_list) + 1 if others_list else item + 1)
        self.mass[item] += mass
        if others_list:
            others = np.array(others_list, dtype=np.int64)
            values = mass * np.array(weights)
            ahead = values
            if self.forward != 0.5:  # directed: what came after an item weighs more
                values, ahead = values * (2.0 * (1.0 - self.forward)), values * (2.0 * self.forward)
            table, ref = self.table, self._ref(item)
            # every generation is 0 until the first eviction: a reference is the index
            refs = (self.generation[others] << _INDEX_BITS) | others if self.evicted else others
            new = table.add_many(item, refs, values)
            if table.was_pruned(item) or not np.count_nonzero(new):
                table.add_to_rows(others, ref, ahead)
            else:  # a pair new to a row never pruned is new to its mirror row too
                table.add_to_rows(others[~new], ref, ahead[~new])
                table.append_to_rows(others[new], ref, ahead[new])
        self.updates += 1

    def _window_factors(self, n: int) -> list[float]:
        """``exp(-(d - 1) / window)`` for a context of ``n`` items, oldest first (cached).

        The same floats as computing them per record: 20 ``exp`` calls a record saved.
        Contexts longer than the cache (another worker's records) are computed.
        """
        factors = self._factors.get(n)
        if factors is None:
            last = n - 1
            factors = [math.exp((k - last) / self.window) for k in range(n)]
            if n <= _FACTORS_CACHED:
                self._factors[n] = factors
        return factors

    def row(self, item: int) -> tuple[IntArray, FloatArray]:
        """Catalogue indices and raw decayed weights ``C[item, :]`` (stale entries dropped)."""
        ids, weights = self._live_row(item)
        if ids.shape[0] == 0:
            return _EMPTY_IDS, _EMPTY_W
        return ids.astype(np.int64), weights.astype(np.float64)

    def _live_row(self, item: int) -> tuple[Int32Array, Float32Array]:
        """``row`` as the table stores it (views: int32 indices, float32 weights).

        Until the catalogue first evicts an item every generation is 0, so a reference is
        its index and none can be stale: no check (a gather and a comparison per read).
        """
        refs, weights = self.table.row(item)
        if not self.evicted or refs.shape[0] == 0:
            return refs, weights
        ids = refs & _INDEX
        stale = (refs >> _INDEX_BITS) != self.generation[ids]
        if stale.any():  # the catalogue evicted these neighbours (and may reuse the index)
            self.table.remove_where(item, stale)
            refs, weights = self.table.row(item)
            ids = refs & _INDEX
        return ids, weights

    def similarities(self, item: int) -> tuple[IntArray, FloatArray]:
        """Neighbours of ``item`` and their damped similarities, in row order."""
        ids, weights = self.row(item)
        if ids.shape[0] == 0:
            return ids, weights
        return ids, self._damped(ids, weights, self._own_damping(item))

    def _own_damping(self, item: int) -> float:
        """``mass[item] ** alpha``, the row item's side of the damping."""
        # an item only seen as context has no mass of its own yet: floor it, no inf scores
        own: float = max(float(self.mass[item]), _MIN_MASS) ** self.alpha
        return own

    def _damped(self, ids: IntArray, weights: FloatArray, own: float | FloatArray) -> FloatArray:
        """Raw weights over ``mass[neighbour] ** beta x own`` (``own`` per entry or one)."""
        mass = np.maximum(self.mass[ids], _MIN_MASS)
        damped: FloatArray = weights / (mass**self.beta * own)
        return damped

    def neighbors(self, item: int) -> tuple[IntArray, FloatArray]:
        """Neighbours of ``item`` and their damped similarities, best first."""
        ids, sims = self.similarities(item)
        order = np.argsort(-sims)
        return ids[order], sims[order]

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
        # Rows are gathered as the table stores them and damped in one vectorised pass
        # (``_damped``, as ``similarities`` does per row): ``similarities`` per history item
        # cost ~8 numpy calls each, most of a list's kNN step. The same floats.
        parts_ids: list[Int32Array] = []
        parts_w: list[Float32Array] = []
        sources: list[int] = []
        owns: list[float] = []
        gains: list[float] = []
        size = self.mass.shape[0]
        for item, weight in history:
            if item >= size:
                continue
            refs, stored = self._live_row(item)
            if refs.shape[0]:
                parts_ids.append(refs)
                parts_w.append(stored)
                sources.append(item)
                owns.append(self._own_damping(item))
                gains.append(weight)
        if not parts_ids:
            return _EMPTY_IDS, _EMPTY_W, _EMPTY_IDS
        lengths = [p.shape[0] for p in parts_ids]
        ids = np.concatenate(parts_ids).astype(np.int64)
        raw = np.concatenate(parts_w, dtype=np.float64)  # float32 widens exactly
        sims = self._damped(ids, raw, np.repeat(np.array(owns), lengths))
        weights = sims * np.repeat(np.array(gains, dtype=np.float64), lengths)
        unique, inverse = unique_inverse(ids)
        summed = np.bincount(inverse, weights=weights, minlength=unique.shape[0])
        best = np.zeros(unique.shape[0])
        np.maximum.at(best, inverse, weights)
        source = np.repeat(np.array(sources, dtype=np.int64), lengths)
        top = np.flatnonzero(weights == best[inverse])
        anchors = np.zeros(unique.shape[0], dtype=np.int64)
        anchors[inverse[top]] = source[top]
        return unique, summed.astype(np.float64), anchors

    def similarity(self, item: int, others: Sequence[tuple[int, float]]) -> float:
        """Weighted damped similarity of one item to a history (for training features)."""
        return self.similarity_to(item, others)[0]

    def similarity_to(
        self, item: int, *histories: Sequence[tuple[int, float]]
    ) -> tuple[float, ...]:
        """``similarity`` of one item to each history, reading its row once."""
        zero = (0.0,) * len(histories)
        if item >= self.mass.shape[0] or self.mass[item] <= 0:
            return zero
        ids, weights = self._live_row(item)  # float32: ``w * weights[at]`` widens exactly
        others = [pair for history in histories for pair in history]
        if ids.shape[0] == 0 or not others:
            return zero
        other_ids = np.array([o for o, _ in others], dtype=np.int64)
        flat = np.flatnonzero(ids == other_ids[:, None])  # a row holds an item at most once
        if flat.shape[0] == 0:
            return zero
        k, at = np.divmod(flat, ids.shape[0])
        mass = self.mass[other_ids[k]]
        which = k.tolist()
        w = np.array([others[j][1] for j in which])
        terms = np.where(mass > 0, w * weights[at], 0.0) / (
            np.maximum(mass, _MIN_MASS) ** self.alpha * float(self.mass[item]) ** self.beta
        )
        # per history, its terms summed in order (what ``np.bincount`` adds, without the
        # three numpy calls that cost more than the handful of terms a row matches)
        sums = [0.0] * len(histories)
        ends = list(accumulate(len(h) for h in histories))
        for j, term in zip(which, terms.tolist(), strict=True):
            h = bisect_right(ends, j)
            sums[h] = sums[h] + term
        return tuple(sums)

    def evict(self, items: IntArray) -> None:
        """Forget evicted catalogue indices: their rows, mass, and references to them."""
        if items.shape[0]:
            self.evicted = True
        for item in items.tolist():
            self.table.remove_row(item)
        inside = items[items < self.mass.shape[0]]
        self.mass[inside] = 0.0
        self.generation[inside] = (self.generation[inside] + 1) % _GENERATIONS

    def pairs(self) -> list[tuple[int, int, float]]:
        """Every stored ``(item, neighbour, weight)`` (tests and snapshots)."""
        out: list[tuple[int, int, float]] = []
        for item in self.table.rows().tolist():
            ids, weights = self.row(item)
            out.extend(zip([item] * ids.shape[0], ids.tolist(), weights.tolist(), strict=True))
        return out

    def nbytes(self) -> int:
        """Bytes of the arrays this model holds."""
        return self.table.nbytes() + self.mass.nbytes + self.generation.nbytes

    def _ref(self, item: int) -> int:
        """How rows name ``item``: its catalogue index and the index's generation."""
        return (int(self.generation[item]) << _INDEX_BITS) | item

    def reserve(self, size: int) -> None:
        """Make room for item indices below ``size`` (the catalogue's capacity)."""
        self._fit(size)

    def _fit(self, size: int) -> None:
        if size > self.mass.shape[0]:
            if size > MAX_ITEMS:
                msg = f"at most {MAX_ITEMS} catalogue indices fit a reference, got {size}"
                raise ValueError(msg)
            self.mass = fit(self.mass, size)
            generation = np.zeros(self.mass.shape[0], dtype=np.int32)
            generation[: self.generation.shape[0]] = self.generation
            self.generation = generation
            self.table.reserve(self.mass.shape[0])

    def _rescale(self, ts: int) -> None:
        assert self.landmark_ts is not None
        factor = 2.0 ** -growth_exponent(ts, self.landmark_ts, self.half_life)
        self.mass *= factor
        self.table.scale(factor)
        self.landmark_ts = ts
