"""User x item feature rows, in ``pipeline.model.ranker.FEATURES`` order (pure numpy).

The same rows feed the ranker's training examples (``pipeline.model.learn``) and the score
blend of a list (``pipeline.lists.recommend``), so what the ranker learns from is exactly
what it is later applied to. ``feature_row`` is the same formulas for one item in scalar
arithmetic: a training example per event costs a few microseconds instead of the forty
vector operations of a one-row matrix (numpy's vector math may differ in the last bit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.features.sequence import recent_items
from pipeline.features.state import UserState
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.catalog import Catalog
from pipeline.model.item_stats import GLOBAL_SEGMENT, ItemStats

WEEK_MS = 7 * 86_400_000.0
LOG100 = math.log1p(100.0)

WeightedHistory = list[tuple[int, float]]

# recency weights by (history length, decay): the same floats, computed once per length
# (a learn step and a list each ask for them); bounded, a deployment has a few lengths
_RECENCY_CACHED = 1_024
_RECENCY: dict[tuple[int, float], list[float]] = {}


def recency_weights(count: int, decay: float) -> list[float]:
    """Weights for a history of ``count`` items, oldest first: the newest gets 1.

    >>> recency_weights(3, 0.5)
    [0.25, 0.5, 1.0]
    """
    key = (count, decay)
    weights = _RECENCY.get(key)
    if weights is None:
        weights = [decay ** (count - 1 - k) for k in range(count)]
        if len(_RECENCY) < _RECENCY_CACHED:
            _RECENCY[key] = weights
    return list(weights)  # a copy: the cached list is never handed out


def weighted_history(
    catalog: Catalog, items: Sequence[tuple[str, float]], decay: float
) -> WeightedHistory:
    """``(item index, |weight| x recency)`` of known items, oldest first."""
    weights = recency_weights(len(items), decay)
    out = []
    for (item_id, w), r in zip(items, weights, strict=True):
        idx = catalog.get(item_id)
        if idx is not None:
            out.append((idx, abs(w) * r))
    return out


def histories(
    catalog: Catalog,
    state: UserState,
    *,
    context_size: int,
    dislike_size: int,
    decay: float,
    weak: float,
    skip: float,
    recent: Sequence[tuple[str, float]] | None = None,
) -> tuple[WeightedHistory, WeightedHistory]:
    """The user's recent items and negatives, weighted by affinity and recency.

    The items are the sequence view the learn records use (``pipeline.features.sequence``:
    distinct items, weak positives at ``weak``, skips as co-exposure at ``skip``), so a
    list is scored from the same history the co-occurrence learned from. ``recent``: that
    view when the caller has it already (the learn step computes it once per event).
    """
    if recent is None:
        recent = recent_items(state.history, context_size, weak=weak, skip=skip)
    negatives = [(h.item_id, h.weight) for h in state.negatives(dislike_size)]
    return (
        weighted_history(catalog, recent, decay),
        weighted_history(catalog, negatives, decay),
    )


def norm(history: WeightedHistory) -> float:
    """Total history weight: turns summed similarity into a weighted mean (scale-free)."""
    return sum(w for _, w in history) or 1.0


def segment_of(stats: ItemStats, state: UserState) -> str:
    """The trending segment a user's lists draw from: their locale when it has trending."""
    if state.context.locale and stats.has_segment(f"locale:{state.context.locale}"):
        return f"locale:{state.context.locale}"
    return GLOBAL_SEGMENT


def category_vector(catalog: Catalog, values: Mapping[str, float]) -> FloatArray:
    """A per-category vector (catalogue category order) from category names."""
    vec = np.zeros(len(catalog.category_names))
    for name, value in values.items():
        c = catalog.find_category(name)
        if c is not None:
            vec[c] = value
    return vec


def log_share(values: FloatArray, top: float) -> FloatArray:
    """log-scaled share of the maximum ``top``, 0..1 (popularity spans orders of magnitude).

    ``top`` is a running maximum the statistics keep (``ItemStats.popularity_max``): no
    scan of the catalogue per list or per event.

    >>> log_share(np.array([0.0, 1.0, 4.0]), 4.0).round(2).tolist()
    [0.0, 0.71, 1.0]
    """
    return np.log1p(100.0 * values / (top or 1.0)) / LOG100


def feature_matrix(
    catalog: Catalog,
    stats: ItemStats,
    items: IntArray,
    knn: FloatArray,
    dislike: FloatArray,
    now_ts: int,
    segment: str,
    affinity: Mapping[str, float],
    *,
    full: bool = True,
) -> FloatArray:
    """One row per item, columns in ``FEATURES`` order (all roughly in -1..1).

    The category column is the user's observed affinity, scaled to its maximum. Without
    ``full`` only the columns the score blend weighs are computed (the rest are 0).
    """
    out = np.zeros((items.shape[0], 8))
    out[:, 0] = knn
    if affinity:
        vec = category_vector(catalog, affinity)
        vec /= float(np.abs(vec).max()) or 1.0
        out[:, 1] = catalog.category_mass(items, vec)
    out[:, 2] = log_share(stats.popularity_of(items), stats.popularity_max)
    out[:, 3] = log_share(stats.trend_of(segment, items), stats.trend_top(segment))
    if not full:
        return out
    published = catalog.published_ts[items]
    age = np.maximum(now_ts - published, 0.0)
    out[:, 4] = stats.skip_rate(items)
    out[:, 5] = stats.mean_completion(items)
    out[:, 6] = dislike
    out[:, 7] = np.where(published > 0, np.exp(-age / WEEK_MS), 0.0)
    return out


def feature_row(
    catalog: Catalog,
    stats: ItemStats,
    item: int,
    knn: float,
    dislike: float,
    now_ts: int,
    segment: str,
    affinity: Mapping[str, float],
) -> tuple[float, ...]:
    """``feature_matrix`` of a single item, as a tuple (see the module docstring)."""
    cat = 0.0
    if affinity:
        known = {}
        for name, value in affinity.items():
            c = catalog.find_category(name)
            if c is not None:
                known[c] = value
        top = max((abs(v) for v in known.values()), default=0.0) or 1.0
        cats = catalog.cats[item].tolist()
        cat = sum(known.get(c, 0.0) / top for c in cats if c >= 0) * float(catalog.share[item])
    popularity = math.log1p(100.0 * stats.at("popularity", item) / (stats.popularity_max or 1.0))
    trend = stats.trend_at(segment, item) / (stats.trend_top(segment) or 1.0)
    inter, skips = stats.at("interactions", item), stats.at("skips", item)
    watches, completion = stats.at("watches", item), stats.at("completion_sum", item)
    published = float(catalog.published_ts[item])
    fresh = math.exp(-max(now_ts - published, 0.0) / WEEK_MS) if published > 0 else 0.0
    return (
        knn,
        cat,
        popularity / LOG100,
        math.log1p(100.0 * trend) / LOG100,
        (skips + 1.0) / (inter + 10.0),
        (completion + 1.0) / (watches + 2.0),
        dislike,
        fresh,
    )
