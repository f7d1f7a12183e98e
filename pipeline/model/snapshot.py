"""Shared-model state to and from a JSON document (pure), for versioned snapshots in Redis.

A snapshot holds the catalogue, the co-occurrence rows, the item statistics and the ranker
weights, with public item ids (dense indices are per process). It is JSON, compressed by the
store, never a pickle: reading a snapshot must not be able to run code.

Format 2 (bounded state): ``catalog``, when each item was last seen (eviction order);
the overall trend as a dense vector and each segment's trending as heavy hitters
``[[item_id, count, error], ...]``. Format 1 (one dense trend vector per segment) is still
read: each segment keeps its heaviest items, as if they had been counted by heavy hitters.
Format 3 adds ``stats.stages``, the stage popularity (heavy hitters per stage, in the same
``[item_id, count, error]`` form); formats 1 and 2 read with empty stages, which fill again
from the next positives. Format 4 adds ``reranker``, the learning-to-rank layer's weights
(``pipeline.model.reranker``); formats 1-3 read with its starting weights (the blend's order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.model.arrays import FloatArray
from pipeline.model.catalog import ItemInfo
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.trending import HeavyHitters

SNAPSHOT_FORMAT = 4
READABLE_FORMATS = (1, 2, 3, 4)
_DENSE = ("popularity", "interactions", "skips", "watches", "completion_sum")


def models_to_dict(models: SharedModels) -> dict[str, Any]:
    """Everything the shared models learned, keyed by item id."""
    catalog, stats, cooc = models.catalog, models.stats, models.cooc
    order = np.flatnonzero(catalog.live[: catalog.slots])
    ids = catalog.ids
    rows: dict[str, dict[str, float]] = {}
    for item in cooc.table.rows().tolist():
        nbrs, weights = cooc.row(item)
        if nbrs.shape[0]:
            names = [ids[j] for j in nbrs.tolist()]
            rows[ids[item]] = dict(zip(names, weights.tolist(), strict=True))
    return {
        "format": SNAPSHOT_FORMAT,
        "items": [_info_row(catalog.info(i)) for i in order.tolist()],
        "catalog": {
            "last_seen": catalog.last_seen[order].tolist(),
            "touched": catalog.touched[order].tolist(),
        },
        "cooc": {
            "landmark_ts": cooc.landmark_ts,
            "mass": _dense(cooc.mass, order),
            "rows": rows,
        },
        "stats": {
            "landmark_ts": stats.landmark_ts,
            **{name: _dense(getattr(stats, name), order) for name in _DENSE},
            "trend": _dense(stats.trend, order),
            "segments": {name: _hitters(h, ids) for name, h in stats.segments.items()},
            "stages": [_hitters(h, ids) for h in stats.stages],
        },
        "ranker": models.ranker.snapshot(),
        "reranker": models.reranker.snapshot(),
        "records_applied": models.records_applied,
        "learned_through": dict(models.learned_through),
    }


def models_from_dict(doc: dict[str, Any], params: ModelParams | None = None) -> SharedModels:
    """Models that continue from a snapshot written by ``models_to_dict`` (format 1 or 2).

    The format number is checked where snapshots are decoded (``pipeline.stores.codec``).
    """
    models = SharedModels(params)
    catalog = models.catalog
    for item_id, cats, duration, published, creator, title in doc["items"]:
        catalog.upsert(ItemInfo(item_id, tuple(cats), duration, published, creator, title))
    index = np.array([catalog.index_of(row[0]) for row in doc["items"]], dtype=np.int64)
    seen = doc.get("catalog", {})
    if seen:  # least recently seen first to go, as before the snapshot
        catalog.last_seen[index] = np.array(seen["last_seen"], dtype=np.int64)
        catalog.touched[index] = np.array(seen["touched"], dtype=np.int64)
        catalog.touches = int(catalog.touched[index].max(initial=0)) + 1
    catalog.clock = int(catalog.last_seen[: catalog.slots].max(initial=0))
    cooc = doc["cooc"]
    models.cooc.landmark_ts = cooc["landmark_ts"]
    models.cooc.mass = _scatter(cooc["mass"], index, catalog.slots)
    models.cooc.generation = np.zeros(models.cooc.mass.shape[0], dtype=np.int32)
    for item_id, row in cooc["rows"].items():
        nbrs = np.array([catalog.index_of(j) for j in row], dtype=np.int64)
        models.cooc.table.add_many(catalog.index_of(item_id), nbrs, np.array(list(row.values())))
    st = doc["stats"]
    stats = models.stats
    stats.landmark_ts = st["landmark_ts"]
    for name in _DENSE:
        setattr(stats, name, _scatter(st[name], index, catalog.slots))
    trend = st["trend"]
    segments = st.get("segments", {})
    if isinstance(trend, dict):  # format 1: a dense vector per segment
        segments = {
            name: _heaviest(values, doc["items"], stats.segment_items)
            for name, values in trend.items()
            if name != GLOBAL_SEGMENT
        }
        trend = trend[GLOBAL_SEGMENT]
    stats.trend = _scatter(trend, index, catalog.slots)
    stats.popularity_max = float(stats.popularity.max(initial=0.0))
    stats.trend_max = float(stats.trend.max(initial=0.0))
    for name, entries in list(segments.items())[: stats.max_segments - 1]:
        hitters = stats.segments.setdefault(name, HeavyHitters(stats.segment_items))
        _restore(hitters, entries, catalog.index_of)
    for hitters, entries in zip(stats.stages, st.get("stages", []), strict=False):
        _restore(hitters, entries, catalog.index_of)
    models.ranker.restore(doc["ranker"])
    if "reranker" in doc:  # format 4
        models.reranker.restore(doc["reranker"])
    models.records_applied = int(doc.get("records_applied", 0))
    models.learned_through = {str(k): int(v) for k, v in doc.get("learned_through", {}).items()}
    return models


def _hitters(h: HeavyHitters, ids: list[str]) -> list[list[Any]]:
    """Heavy hitters as ``[[item_id, count, error], ...]``."""
    return [
        [ids[int(i)], float(c), float(e)]
        for i, c, e in zip(h.items[: h.size], h.counts[: h.size], h.errors[: h.size], strict=True)
    ]


def _restore(
    hitters: HeavyHitters, entries: list[list[Any]], index_of: Callable[[str], int]
) -> None:
    """Refill heavy hitters from ``_hitters`` entries (at most their capacity)."""
    for item_id, count, error in entries[: hitters.capacity]:
        hitters.add(index_of(item_id), float(count))
        hitters.errors[hitters.size - 1] = float(error)


def _info_row(info: ItemInfo) -> list[Any]:
    return [
        info.item_id,
        list(info.categories),
        info.duration_seconds,
        info.published_ts,
        info.creator_id,
        info.title,
    ]


def _dense(arr: FloatArray, order: np.ndarray) -> list[float]:
    """Values of the live items in ``order`` (0 past the end of ``arr``)."""
    out = np.zeros(order.shape[0])
    inside = order < arr.shape[0]
    out[inside] = arr[order[inside]]
    return [float(x) for x in out]


def _scatter(values: list[float], index: np.ndarray, size: int) -> FloatArray:
    out = np.zeros(max(size, 1), dtype=np.float64)
    out[index] = np.array(values, dtype=np.float64)[: index.shape[0]]
    return out


def _heaviest(values: list[float], items: list[Any], k: int) -> list[list[Any]]:
    """A format-1 dense segment vector as heavy-hitter entries (its ``k`` heaviest items)."""
    arr = np.array(values, dtype=np.float64)
    top = np.flatnonzero(arr > 0)
    top = top[np.argsort(-arr[top], kind="stable")][:k]
    return [[items[i][0], float(arr[i]), 0.0] for i in top.tolist()]
