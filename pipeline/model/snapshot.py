"""Shared-model state to and from a JSON document (pure), for versioned snapshots in Redis.

A snapshot holds the catalogue, the co-occurrence rows, the item statistics and the ranker
weights, with public item ids (dense indices are per process). It is JSON, compressed by the
store, never a pickle: reading a snapshot must not be able to run code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.model.arrays import fit
from pipeline.model.catalog import ItemInfo
from pipeline.model.models import ModelParams, SharedModels

SNAPSHOT_FORMAT = 1


def models_to_dict(models: SharedModels) -> dict[str, Any]:
    """Everything the shared models learned, keyed by item id."""
    ids = models.catalog.ids
    n = len(ids)
    stats = models.stats
    return {
        "format": SNAPSHOT_FORMAT,
        "items": [
            [
                i.item_id,
                list(i.categories),
                i.duration_seconds,
                i.published_ts,
                i.creator_id,
                i.title,
            ]
            for i in models.catalog.infos
        ],
        "cooc": {
            "landmark_ts": models.cooc.landmark_ts,
            "mass": _dense(models.cooc.mass, n),
            "rows": {
                ids[i]: {ids[j]: w for j, w in row.items()} for i, row in models.cooc.rows.items()
            },
        },
        "stats": {
            "landmark_ts": stats.landmark_ts,
            "popularity": _dense(stats.popularity, n),
            "interactions": _dense(stats.interactions, n),
            "skips": _dense(stats.skips, n),
            "watches": _dense(stats.watches, n),
            "completion_sum": _dense(stats.completion_sum, n),
            "trend": {seg: _dense(arr, n) for seg, arr in stats.trend.items()},
        },
        "ranker": models.ranker.snapshot(),
        "records_applied": models.records_applied,
    }


def models_from_dict(doc: dict[str, Any], params: ModelParams | None = None) -> SharedModels:
    """Models that continue from a snapshot written by ``models_to_dict``.

    The format number is checked where snapshots are decoded (``pipeline.stores.codec``).
    """
    models = SharedModels(params)
    for item_id, cats, duration, published, creator, title in doc["items"]:
        models.upsert_item(ItemInfo(item_id, tuple(cats), duration, published, creator, title))
    n = len(models.catalog)
    index = models.catalog.index_of
    cooc = doc["cooc"]
    models.cooc.landmark_ts = cooc["landmark_ts"]
    models.cooc.mass = fit(np.array(cooc["mass"], dtype=np.float64), n)
    models.cooc.rows = {
        index(i): {index(j): float(w) for j, w in row.items()} for i, row in cooc["rows"].items()
    }
    st = doc["stats"]
    stats = models.stats
    stats.landmark_ts = st["landmark_ts"]
    stats.popularity = np.array(st["popularity"], dtype=np.float64)
    stats.interactions = np.array(st["interactions"], dtype=np.float64)
    stats.skips = np.array(st["skips"], dtype=np.float64)
    stats.watches = np.array(st["watches"], dtype=np.float64)
    stats.completion_sum = np.array(st["completion_sum"], dtype=np.float64)
    stats.trend = {seg: np.array(arr, dtype=np.float64) for seg, arr in st["trend"].items()}
    models.ranker.restore(doc["ranker"])
    models.records_applied = int(doc.get("records_applied", 0))
    return models


def _dense(arr: np.ndarray, n: int) -> list[float]:
    out = np.zeros(n)
    m = min(n, arr.shape[0])
    out[:m] = arr[:m]
    return [float(x) for x in out]
