"""Vector math of scoring: pure numpy functions over score and id arrays.

Kept apart from ``pipeline.lists.recommend`` so the engine reads as the pipeline it is
(candidates, features, blend, cap, reasons) and these small pieces can be tested alone.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.model.catalog import FloatArray, IntArray

LOG100 = math.log1p(100.0)


def top_order(scores: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` best scores, best first (ties: lower index first)."""
    if k >= scores.shape[0]:
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.lexsort((top, -scores[top]))]


def norm(history: list[tuple[int, float]]) -> float:
    """Total history weight: turns summed similarity into a weighted mean (scale-free)."""
    return sum(w for _, w in history) or 1.0


def lookup(ids: IntArray, values: FloatArray, items: IntArray) -> FloatArray:
    """``values`` of ``items`` given ``ids`` sorted ascending, 0 where absent."""
    if ids.shape[0] == 0:
        return np.zeros(items.shape[0])
    pos = np.minimum(np.searchsorted(ids, items), ids.shape[0] - 1)
    return np.where(ids[pos] == items, values[pos], 0.0)


def sigmoid(x: FloatArray) -> FloatArray:
    """Logistic function, clipped so that large scores cannot overflow ``exp``."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def log_share(arr: FloatArray, items: IntArray) -> FloatArray:
    """log-scaled share of the maximum, 0..1 (popularity spans orders of magnitude)."""
    if arr.shape[0] == 0:
        return np.zeros(items.shape[0])
    top = float(arr.max()) or 1.0
    vals = np.zeros(items.shape[0])
    inside = items < arr.shape[0]
    vals[inside] = arr[items[inside]] / top
    return np.log1p(100.0 * vals) / LOG100


def top(arr: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` largest positive entries, best first."""
    nz = np.flatnonzero(arr > 0)
    if nz.shape[0] > k:
        nz = nz[np.argpartition(-arr[nz], k)[:k]]
    return nz[np.argsort(-arr[nz], kind="stable")].astype(np.int64)
