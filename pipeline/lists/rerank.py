"""The learning-to-rank layer's features, fused order and training pairs (pure numpy).

A list's head (its ``depth`` best candidates by the blend) is re-ordered by the river model
of ``pipeline.model.reranker``. This module builds the head's feature rows
(``RERANK_FEATURES``), fuses the learned order with the blend's, and turns a chosen item into
training pairs against items of the same head. Every feature is a share of the head's best or
a rate, so the weights mean the same on any catalogue size or time scale.

The fused score is rank-based: ``(1 - mix) / log2(learned rank + 2) + mix / log2(blend
rank + 2)``. ``mix`` 1 keeps the blend's order, 0 is the learned order alone; ranks, not
scores, so the two scales never have to agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.ranker import FEATURES
from pipeline.model.reranker import RERANK_FEATURES

_COLS = {name: k for k, name in enumerate(RERANK_FEATURES)}
_POPULARITY, _CATEGORY = FEATURES.index("popularity"), FEATURES.index("category")
_COMPLETION, _SKIP = FEATURES.index("completion"), FEATURES.index("skip_rate")


@dataclass(frozen=True, slots=True)
class Head:
    """A list's head: candidate item indices in blend order and their feature rows."""

    items: IntArray
    features: FloatArray


def _share(values: FloatArray) -> FloatArray:
    """``values`` over their maximum (0 when none is positive)."""
    top = float(values.max(initial=0.0))
    return values / top if top > 0 else np.zeros(values.shape[0])


def rank_gain(n: int) -> FloatArray:
    """``1 / log2(rank + 2)`` for ranks ``0..n-1`` (the NDCG discount).

    >>> rank_gain(3).round(3).tolist()
    [1.0, 0.631, 0.5]
    """
    gain: FloatArray = 1.0 / np.log2(np.arange(n) + 2.0)
    return gain


def head_features(
    blend: FloatArray,
    knn: FloatArray,
    knn_last: FloatArray,
    uknn: FloatArray | None,
    stage: FloatArray | None,
    rows: FloatArray,
    n_events: int,
) -> FloatArray:
    """Feature rows of a head given in blend order.

    ``blend``, ``knn``, ``knn_last`` (the latest item's neighbours), ``uknn``, ``stage``
    are the head's scores of each source (``None``: the source is off), ``rows`` its
    ``pipeline.model.ranker.FEATURES`` rows (the item statistics), ``n_events`` the user's
    history length.

    >>> f = head_features(np.array([2.0, 1.0]), np.array([1.0, 0.0]), np.zeros(2), None,
    ...                   None, np.zeros((2, 8)), 0)
    >>> f[:, 0].tolist(), float(f[0, 10])
    ([1.0, 0.5], 1.0)
    """
    n = blend.shape[0]
    out = np.zeros((n, len(RERANK_FEATURES)))
    cold = 3.0 / (3.0 + n_events)
    out[:, _COLS["blend"]] = _share(blend)
    out[:, _COLS["rank"]] = rank_gain(n)
    out[:, _COLS["knn"]] = _share(knn)
    out[:, _COLS["knn_last"]] = _share(knn_last)
    if uknn is not None:
        out[:, _COLS["uknn"]] = _share(uknn)
    if stage is not None:
        out[:, _COLS["stage"]] = _share(stage)
    out[:, _COLS["popularity"]] = rows[:, _POPULARITY]
    out[:, _COLS["category"]] = rows[:, _CATEGORY]
    out[:, _COLS["completion"]] = rows[:, _COMPLETION]
    out[:, _COLS["skip_rate"]] = rows[:, _SKIP]
    out[:, _COLS["cold"]] = cold
    out[:, _COLS["stage_cold"]] = out[:, _COLS["stage"]] * cold
    out[:, _COLS["popularity_cold"]] = out[:, _COLS["popularity"]] * cold
    out[:, _COLS["knn_cold"]] = out[:, _COLS["knn"]] * cold
    return out


def fuse(learned: FloatArray, mix: float) -> FloatArray:
    """Fused scores of a head in blend order (see the module docstring), all in (0, 1].

    >>> fuse(np.array([0.0, 1.0]), 0.0).round(3).tolist()
    [0.631, 1.0]
    >>> fuse(np.array([0.0, 1.0]), 1.0).round(3).tolist()
    [1.0, 0.631]
    """
    n = learned.shape[0]
    gain = rank_gain(n)
    order = np.argsort(-learned, kind="stable")  # ties keep the blend's order
    learned_gain = np.empty(n)
    learned_gain[order] = gain
    fused: FloatArray = (1.0 - mix) * learned_gain + mix * gain
    return fused


def pairs(head: Head, item: int, negatives: int, rng: np.random.Generator) -> FloatArray | None:
    """Training rows ``chosen - other`` for ``negatives`` items of the head drawn at random.

    ``None`` when ``item`` is not in the head: the layer only re-orders the head, so an item
    the blend did not reach teaches it nothing.

    >>> head = Head(np.array([5, 7, 9]), np.eye(3, len(RERANK_FEATURES)))
    >>> pairs(head, 7, 5, np.random.default_rng(0)).shape
    (2, 14)
    >>> pairs(head, 4, 5, np.random.default_rng(0)) is None
    True
    """
    at = np.flatnonzero(head.items == item)
    if at.shape[0] == 0:
        return None
    k = int(at[0])
    others = np.delete(np.arange(head.items.shape[0]), k)
    if others.shape[0] == 0:
        return None
    if others.shape[0] > negatives:
        others = rng.choice(others, size=negatives, replace=False)
    diff: FloatArray = head.features[k] - head.features[others]
    return diff
