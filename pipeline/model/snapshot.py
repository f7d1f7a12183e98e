"""Engine state to and from a JSON document (pure), for versioned snapshots in Redis.

A snapshot holds the catalogue, the co-occurrence rows, the item statistics and the ranker
weights, with public item ids (dense indices are per process). It is JSON, compressed by the
store, never a pickle: reading a snapshot must not be able to run code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.lists.recommend import Engine, EngineParams
from pipeline.model.catalog import ItemInfo
from pipeline.model.growable import fit

SNAPSHOT_FORMAT = 1


def engine_to_dict(engine: Engine) -> dict[str, Any]:
    """Everything the shared models learned, keyed by item id."""
    ids = engine.catalog.ids
    n = len(ids)
    stats = engine.stats
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
            for i in engine.catalog.infos
        ],
        "cooc": {
            "landmark_ts": engine.cooc.landmark_ts,
            "mass": _dense(engine.cooc.mass, n),
            "rows": {
                ids[i]: {ids[j]: w for j, w in row.items()} for i, row in engine.cooc.rows.items()
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
        "ranker": engine.ranker.snapshot(),
        "records_applied": engine.records_applied,
    }


def engine_from_dict(doc: dict[str, Any], params: EngineParams | None = None) -> Engine:
    """An engine that continues from a snapshot written by ``engine_to_dict``."""
    if doc.get("format") != SNAPSHOT_FORMAT:
        msg = f"unsupported model snapshot format {doc.get('format')!r}; expected {SNAPSHOT_FORMAT}"
        raise ValueError(msg)
    engine = Engine(params)
    for item_id, cats, duration, published, creator, title in doc["items"]:
        engine.upsert_item(ItemInfo(item_id, tuple(cats), duration, published, creator, title))
    n = len(engine.catalog)
    index = engine.catalog.index_of
    cooc = doc["cooc"]
    engine.cooc.landmark_ts = cooc["landmark_ts"]
    engine.cooc.mass = fit(np.array(cooc["mass"], dtype=np.float64), n)
    engine.cooc.rows = {
        index(i): {index(j): float(w) for j, w in row.items()} for i, row in cooc["rows"].items()
    }
    st = doc["stats"]
    stats = engine.stats
    stats.landmark_ts = st["landmark_ts"]
    stats.popularity = np.array(st["popularity"], dtype=np.float64)
    stats.interactions = np.array(st["interactions"], dtype=np.float64)
    stats.skips = np.array(st["skips"], dtype=np.float64)
    stats.watches = np.array(st["watches"], dtype=np.float64)
    stats.completion_sum = np.array(st["completion_sum"], dtype=np.float64)
    stats.trend = {seg: np.array(arr, dtype=np.float64) for seg, arr in st["trend"].items()}
    engine.ranker.restore(doc["ranker"])
    engine.records_applied = int(doc.get("records_applied", 0))
    return engine


def _dense(arr: np.ndarray, n: int) -> list[float]:
    out = np.zeros(n)
    m = min(n, arr.shape[0])
    out[:m] = arr[:m]
    return [float(x) for x in out]
