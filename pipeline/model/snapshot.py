"""Shared-model state to and from a snapshot document (pure), for versioned snapshots in Redis.

A snapshot holds the catalogue, the co-occurrence rows, the item statistics and the ranker
weights, with public item ids (dense indices are per process). It is JSON plus, since
format 5, the neighbour rows as flat arrays (``NeighborColumns``) that the store keeps in
separate binary parts (``pipeline.stores.codec``): never a pickle, so reading a snapshot
cannot run code.

Taking a snapshot is split in two (``freeze``): copying the state, on the event loop and
at the cost of copying arrays, then building the document from the copies, in a thread.

Format 2 (bounded state): ``catalog``, when each item was last seen (eviction order);
the overall trend as a dense vector and each segment's trending as heavy hitters
``[[item_id, count, error], ...]``. Format 1 (one dense trend vector per segment) is still
read: each segment keeps its heaviest items, as if they had been counted by heavy hitters.
Format 3 adds ``stats.stages``, the stage popularity (heavy hitters per stage, in the same
``[item_id, count, error]`` form); formats 1 and 2 read with empty stages, which fill again
from the next positives. Format 4 adds ``reranker``, the learning-to-rank layer's weights
(``pipeline.model.reranker``); formats 1-3 read with its starting weights (the blend's order).
Format 5 stores ``cooc.rows`` as ``NeighborColumns`` (item positions in ``items``, float32
weights exactly as the rows hold them) instead of ``{item_id: {neighbour_id: weight}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from pipeline.model.arrays import BoolArray, Float32Array, FloatArray, Int32Array, IntArray
from pipeline.model.catalog import ItemInfo
from pipeline.model.cooc import resolve_refs
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.neighbors import NeighborTable
from pipeline.model.trending import HeavyHitters

SNAPSHOT_FORMAT = 5
READABLE_FORMATS = (1, 2, 3, 4, 5)
_DENSE = ("popularity", "interactions", "skips", "watches", "completion_sum")
PART_ENTRIES = 1_000_000  # neighbour entries per stored part (8 MB; numpy steps of ~10 ms)
ITEM_COLUMNS = ("item_id", "categories", "duration_seconds", "published_ts", "creator_id", "title")
_SLICE = 50_000  # items per step when the header is built in a thread (GIL held ~5 ms)


@dataclass(frozen=True)
class NeighborColumns:
    """Co-occurrence rows as four flat arrays (format 5), in the table's row order.

    Row ``k`` is the item at position ``rows[k]`` of the document's ``items``; its
    neighbours are the next ``lengths[k]`` entries of ``ids`` (positions in ``items`` too)
    and ``weights``; ``pruned[k]`` says whether the row ever dropped entries (its mirrors
    may hold pairs it lacks: learning must search them, see ``NeighborTable.append_to_rows``).
    No Python object per pair: at tens of millions of pairs the dict of
    dicts of formats 1-4 cost ~6 s of CPU on the event loop and ~16 bytes a pair stored.
    """

    rows: Int32Array
    lengths: Int32Array
    ids: Int32Array
    weights: Float32Array
    pruned: BoolArray

    @property
    def entries(self) -> int:
        """Neighbour entries in all rows."""
        return int(self.ids.shape[0])

    @staticmethod
    def concat(parts: Sequence[NeighborColumns]) -> NeighborColumns:
        """The parts one after another (as ``FrozenModels.row_parts`` cut them)."""
        if not parts:
            return _NO_ROWS
        return NeighborColumns(
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.weights for p in parts]),
            np.concatenate([p.pruned for p in parts]),
        )


_NO_ROWS = NeighborColumns(
    np.zeros(0, dtype=np.int32),
    np.zeros(0, dtype=np.int32),
    np.zeros(0, dtype=np.int32),
    np.zeros(0, dtype=np.float32),
    np.zeros(0, dtype=bool),
)


@dataclass(frozen=True)
class _Hitters:
    items: IntArray
    counts: FloatArray
    errors: FloatArray

    @staticmethod
    def of(h: HeavyHitters) -> _Hitters:
        n = h.size
        return _Hitters(h.items[:n].copy(), h.counts[:n].copy(), h.errors[:n].copy())

    def entries(self, ids: Sequence[str]) -> list[list[Any]]:
        """``[[item_id, count, error], ...]``."""
        return [
            [ids[i], c, e]
            for i, c, e in zip(
                self.items.tolist(), self.counts.tolist(), self.errors.tolist(), strict=True
            )
        ]


class FrozenModels:
    """Copies of everything a snapshot holds, taken in one step on the event loop.

    A snapshot must hold exactly the model log up to one position, so its state is taken
    with no ``await`` in between (the models change with every batch). Taking it costs
    copies of arrays and of lists of references (memory bandwidth: the co-occurrence arena's
    used slots, at most ``RECLOOP_MODEL_NEIGHBOR_MEMORY_MB``, and a few arrays per item),
    never a Python object per pair or per item. Building the document and cutting the rows
    into parts (``header``, ``row_parts``) read only these copies, so they run in a thread
    while the models keep learning. Until it is dropped, a ``FrozenModels`` holds about as
    much memory as the arena's used slots (8 bytes each) plus ~140 bytes per item.
    """

    def __init__(self, models: SharedModels, buffers: ArenaBuffers | None = None) -> None:
        catalog, stats, cooc = models.catalog, models.stats, models.cooc
        order = np.flatnonzero(catalog.live[: catalog.slots])
        self.order = order
        self.ids = catalog.ids.copy()
        self.categories = catalog.category_tuples.copy()
        self.creators = catalog.creators.copy()
        self.titles = catalog.titles.copy()
        self.duration = catalog.duration[order]
        self.published = catalog.published_ts[order]
        self.last_seen = catalog.last_seen[order]
        self.touched = catalog.touched[order]
        self.cooc_landmark = cooc.landmark_ts
        self.mass = _dense(cooc.mass, order)
        self.generation = cooc.generation.copy()
        self.evicted = cooc.evicted
        table = cooc.table
        self.row_start = table.start.copy()
        self.row_length = table.length.copy()
        self.row_block = table.block.copy()
        self.row_pruned = table.pruned_rows.copy()
        used = table.used
        if buffers is not None and buffers.ids.shape[0] >= used:
            np.copyto(buffers.ids[:used], table.ids[:used])
            np.copyto(buffers.weights[:used], table.weights[:used])
            self.arena_ids, self.arena_weights = buffers.ids[:used], buffers.weights[:used]
        else:
            self.arena_ids = table.ids[:used].copy()
            self.arena_weights = table.weights[:used].copy()
        self.stats_landmark = stats.landmark_ts
        self.dense = {name: _dense(getattr(stats, name), order) for name in _DENSE}
        self.trend = _dense(stats.trend, order)
        self.segments = {name: _Hitters.of(h) for name, h in stats.segments.items()}
        self.stages = [_Hitters.of(h) for h in stats.stages]
        self.ranker = models.ranker.snapshot()
        self.reranker = models.reranker.snapshot()
        self.records_applied = models.records_applied
        self.learned_through = dict(models.learned_through)

    def header(self) -> dict[str, Any]:
        """The document without its neighbour rows (``cooc.rows`` is left for the caller).

        Items are columns (``ITEM_COLUMNS``) and every per-item number stays a numpy array
        (the store writes it as a JSON array): no Python object per item is made, so building
        and dropping the header in a thread never holds the GIL for long (a million-item
        header of rows and float lists did, ~0.1-0.5 s at a time in allocation, the garbage
        collector and deallocation: stalls of the event loop). The string columns are
        lists of the catalogue's own strings and category tuples, picked in slices.
        ``duration_seconds`` is NaN (JSON null) and ``published_ts`` 0 when unknown.
        """
        order = _tolist(self.order)
        ids = self.ids
        items = {
            "item_id": _column(ids, order),
            "categories": _column(self.categories, order),
            "duration_seconds": self.duration,
            "published_ts": self.published.astype(np.int64),
            "creator_id": _column(self.creators, order),
            "title": _column(self.titles, order),
        }
        return {
            "format": SNAPSHOT_FORMAT,
            "items": items,
            "catalog": {"last_seen": self.last_seen, "touched": self.touched},
            "cooc": {"landmark_ts": self.cooc_landmark, "mass": self.mass},
            "stats": {
                "landmark_ts": self.stats_landmark,
                **self.dense,
                "trend": self.trend,
                "segments": {name: h.entries(ids) for name, h in self.segments.items()},
                "stages": [h.entries(ids) for h in self.stages],
            },
            "ranker": self.ranker,
            "reranker": self.reranker,
            "records_applied": self.records_applied,
            "learned_through": self.learned_through,
        }

    def row_parts(self, max_entries: int = PART_ENTRIES) -> Iterator[NeighborColumns]:
        """The neighbour rows in parts of at most ``max_entries`` entries.

        A longer row goes alone. Rows and neighbours no longer in the catalogue are left out.
        """
        rows = np.flatnonzero(self.row_block >= 0)
        size = max(self.row_block.shape[0], self.generation.shape[0], len(self.ids))
        position = np.full(size, -1, dtype=np.int64)
        position[self.order] = np.arange(self.order.shape[0])
        rows = rows[position[rows] >= 0]
        for first, last in row_cuts(self.row_length[rows], max_entries):
            yield self._columns(rows[first:last], position)

    def _columns(self, rows: IntArray, position: IntArray) -> NeighborColumns:
        lens = self.row_length[rows].astype(np.int64)
        offsets = np.zeros(rows.shape[0], dtype=np.int64)
        np.cumsum(lens[:-1], out=offsets[1:])
        take = np.repeat(self.row_start[rows] - offsets, lens) + np.arange(int(lens.sum()))
        refs, weights = self.arena_ids[take], self.arena_weights[take]
        if self.evicted:  # references to evicted items are dropped, as reading a row does
            nbrs, keep = resolve_refs(refs, self.generation)
        else:
            nbrs, keep = refs.astype(np.int64), np.ones(refs.shape[0], dtype=bool)
        nbr_pos = position[nbrs]
        keep &= nbr_pos >= 0
        if not keep.all():
            owner = np.repeat(np.arange(rows.shape[0]), lens)
            lens = np.bincount(owner[keep], minlength=rows.shape[0])
            nbr_pos, weights = nbr_pos[keep], weights[keep]
        filled = lens > 0
        return NeighborColumns(
            position[rows[filled]].astype(np.int32),
            lens[filled].astype(np.int32),
            nbr_pos.astype(np.int32),
            weights.astype(np.float32),
            self.row_pruned[rows[filled]],
        )

    def document(self) -> dict[str, Any]:
        """The whole document, rows included (tests and tools; workers write parts)."""
        doc = self.header()
        doc["cooc"]["rows"] = NeighborColumns.concat(list(self.row_parts()))
        return doc


def row_cuts(lengths: Int32Array, max_entries: int) -> Iterator[tuple[int, int]]:
    """Ranges ``[first, last)`` of rows holding at most ``max_entries`` entries each.

    A longer row goes alone. This is how the rows are cut into stored parts.

    >>> list(row_cuts(np.array([3, 3, 5, 2], dtype=np.int32), 6))
    [(0, 2), (2, 3), (3, 4)]
    """
    ends = np.cumsum(lengths, dtype=np.int64)
    first = 0
    while first < ends.shape[0]:
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + max_entries, side="right")))
        yield first, last
        first = last


@dataclass(frozen=True)
class ArenaBuffers:
    """Arrays that ``freeze`` copies the co-occurrence arena into, their pages touched.

    The arena is the bulk of a snapshot's copy (hundreds of MB at a million items). Copying
    it into fresh memory costs the page faults of that memory too, ~0.5-1 s measured at
    474 MB on the event loop, against ~50 ms into memory already touched; ``arena_buffers``
    touches it in a thread beforehand.
    """

    ids: Int32Array
    weights: Float32Array


def arena_buffers(models: SharedModels) -> ArenaBuffers:
    """Buffers for the next ``freeze`` of ``models``, with room for its arena to grow a bit.

    Meant for a thread (numpy fills them without the GIL); the arena is read only for its
    size, and a ``freeze`` whose arena outgrew the buffers copies into fresh memory instead.
    """
    table = models.cooc.table
    slots = min(int(table.ids.shape[0]), table.used + table.used // 16 + table.capacity)
    ids, weights = np.empty(slots, dtype=np.int32), np.empty(slots, dtype=np.float32)
    ids.fill(0)
    weights.fill(0)
    return ArenaBuffers(ids, weights)


def freeze(models: SharedModels, buffers: ArenaBuffers | None = None) -> FrozenModels:
    """What a snapshot of ``models`` holds, copied now (see ``FrozenModels``)."""
    return FrozenModels(models, buffers)


def models_to_dict(models: SharedModels) -> dict[str, Any]:
    """Everything the shared models learned, keyed by item id (rows as ``NeighborColumns``)."""
    return freeze(models).document()


def models_from_dict(doc: dict[str, Any], params: ModelParams | None = None) -> SharedModels:
    """Models that continue from a snapshot document (formats 1-5).

    The format number is checked where snapshots are decoded (``pipeline.stores.codec``),
    which also attaches a format-5 document's rows as ``NeighborColumns``.
    """
    models = SharedModels(params)
    catalog = models.catalog
    listed = item_rows(doc)
    for item_id, cats, duration, published, creator, title in listed:
        catalog.upsert(ItemInfo(item_id, tuple(cats), duration, published, creator, title))
    index = np.array([catalog.index_of(row[0]) for row in listed], dtype=np.int64)
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
    rows = cooc["rows"]
    if isinstance(rows, NeighborColumns):  # format 5
        _load_columns(models.cooc.table, rows, index)
    else:  # formats 1-4 do not say which rows dropped entries: as if all had
        for item_id, row in rows.items():
            nbrs = np.array([catalog.index_of(j) for j in row], dtype=np.int64)
            weights = np.array(list(row.values()))
            models.cooc.table.add_many(catalog.index_of(item_id), nbrs, weights)
            models.cooc.table.pruned_rows[catalog.index_of(item_id)] = True
    st = doc["stats"]
    stats = models.stats
    stats.landmark_ts = st["landmark_ts"]
    for name in _DENSE:
        setattr(stats, name, _scatter(st[name], index, catalog.slots))
    trend = st["trend"]
    segments = st.get("segments", {})
    if isinstance(trend, dict):  # format 1: a dense vector per segment
        segments = {
            name: _heaviest(values, listed, stats.segment_items)
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
    if "reranker" in doc:  # since format 4
        models.reranker.restore(doc["reranker"])
    models.records_applied = int(doc.get("records_applied", 0))
    models.learned_through = {str(k): int(v) for k, v in doc.get("learned_through", {}).items()}
    return models


def _load_columns(table: NeighborTable, cols: NeighborColumns, index: IntArray) -> None:
    """Add format-5 rows to ``table``; positions in ``items`` become catalogue indices."""
    n = index.shape[0]
    bad = [a for a in (cols.rows, cols.ids) if a.shape[0] and (a.min() < 0 or a.max() >= n)]
    if bad or int(cols.lengths.sum(dtype=np.int64)) != cols.entries or (cols.lengths < 0).any():
        msg = "snapshot rows name items outside the snapshot or do not add up"
        raise ValueError(msg)
    rows, nbrs = index[cols.rows], index[cols.ids]
    weights = cols.weights.astype(np.float64)
    lengths = cols.lengths.astype(np.int64)
    if table.load_rows(rows, lengths, nbrs, weights, cols.pruned):
        return
    end = 0  # not in one go (see ``load_rows``): row by row, as learning adds them
    for row, length, pruned in zip(
        rows.tolist(), lengths.tolist(), cols.pruned.tolist(), strict=True
    ):
        start, end = end, end + length
        table.add_many(row, nbrs[start:end], weights[start:end])
        # a row longer than this table's rows kept its heaviest entries: it dropped some
        table.pruned_rows[row] = pruned or length > table.capacity


def _restore(
    hitters: HeavyHitters, entries: list[list[Any]], index_of: Callable[[str], int]
) -> None:
    """Refill heavy hitters from ``[[item_id, count, error], ...]`` (at most their capacity)."""
    for item_id, count, error in entries[: hitters.capacity]:
        hitters.add(index_of(item_id), float(count))
        hitters.errors[hitters.size - 1] = float(error)


def _tolist(values: FloatArray | IntArray) -> list[Any]:
    """``values.tolist()`` in slices (see ``FrozenModels.header``)."""
    out: list[Any] = []
    for a in range(0, values.shape[0], _SLICE):
        out.extend(values[a : a + _SLICE].tolist())
    return out


def _column(values: Sequence[Any], order: list[int]) -> list[Any]:
    """``[values[i] for i in order]``, in slices of ``_SLICE`` (C-level ``itemgetter``)."""
    out: list[Any] = []
    for a in range(0, len(order), _SLICE):
        part = order[a : a + _SLICE]
        out.extend([values[part[0]]] if len(part) == 1 else itemgetter(*part)(values))
    return out


def item_rows(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A snapshot's items as rows, whichever the layout (columns since format 5).

    A row is ``(item_id, categories, duration, published, creator, title)``, unknown
    duration and publication time as ``None``.
    """
    items = doc["items"]
    if not isinstance(items, dict):
        return [tuple(row) for row in items]
    durations = [
        None if d != d else float(d)
        for d in np.asarray(items["duration_seconds"], dtype=np.float64).tolist()
    ]
    published = [int(p) or None for p in np.asarray(items["published_ts"], dtype=np.int64).tolist()]
    columns = [items[name] for name in ITEM_COLUMNS]
    columns[2], columns[3] = durations, published
    return list(zip(*columns, strict=True))


def _dense(arr: FloatArray, order: IntArray) -> FloatArray:
    """Values of the live items in ``order`` (0 past the end of ``arr``), a copy."""
    out = np.zeros(order.shape[0])
    inside = order < arr.shape[0]
    out[inside] = arr[order[inside]]
    return out


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
