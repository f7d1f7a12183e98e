"""Vector math of scoring: pure numpy functions over score and id arrays.

Kept apart from ``pipeline.lists.recommend`` so the recommender reads as the pipeline it is
(candidates, features, blend, cap, reasons) and these small pieces can be tested alone.
"""

from __future__ import annotations

import numpy as np

from pipeline.model.arrays import FloatArray, IntArray


def top_order(scores: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` best scores, best first (ties: lower index first).

    >>> top_order(np.array([0.1, 0.5, 0.5, 0.2]), 2).tolist()
    [1, 2]
    """
    if k >= scores.shape[0]:
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.lexsort((top, -scores[top]))]


def lookup(ids: IntArray, values: FloatArray, items: IntArray) -> FloatArray:
    """``values`` of ``items`` given ``ids`` sorted ascending, 0 where absent.

    >>> lookup(np.array([2, 5]), np.array([1.0, 2.0]), np.array([5, 3])).tolist()
    [2.0, 0.0]
    """
    if ids.shape[0] == 0:
        return np.zeros(items.shape[0])
    pos = np.minimum(np.searchsorted(ids, items), ids.shape[0] - 1)
    return np.where(ids[pos] == items, values[pos], 0.0)


def sigmoid(x: FloatArray) -> FloatArray:
    """Logistic function, clipped so that large scores cannot overflow ``exp``."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def top(arr: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` largest positive entries, best first.

    >>> top(np.array([0.0, 3.0, 1.0, 2.0]), 2).tolist()
    [1, 3]
    """
    nz = np.flatnonzero(arr > 0)
    if nz.shape[0] > k:
        nz = nz[np.argpartition(-arr[nz], k)[:k]]
    return nz[np.argsort(-arr[nz], kind="stable")].astype(np.int64)
