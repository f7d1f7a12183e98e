"""Bounded rows of ``(id, weight)`` entries in one slab arena: the storage of neighbour rows.

Item-item co-occurrence (and any other kind of row, e.g. directed transitions) needs, per
row, a small set of neighbours with a weight, updated millions of times and read per list.
A dict per row costs ~150 bytes a pair and grows for ever; here every row lives in a block
of one flat arena (``ids`` int32, ``weights`` float32: 8 bytes an entry, the bulk of a
worker's memory at a million items), blocks come in capacity classes
(4, 8, 16, ... up to ``capacity``) and a row moves to the next class when it fills its
block. There is no Python object per row: a row is three numbers (block start, length,
class). Freed blocks are reused by rows of their class.

**Bound.** A row never holds more than ``capacity`` entries. When a full row must take new
neighbours it is first pruned to its ``keep`` heaviest entries (decayed weight), then the
new entries are appended: pairs seen once, long ago, are the first to go, and a new pair
always gets in and has ``capacity - keep`` insertions of the row to gather weight before the
next prune. (Replacing only the smallest entry when a new weight exceeds it would freeze a
hot row: a new pair arrives with one increment and never beats the accumulated minimum.)

**Error.** An entry's weight is exact unless the pair was pruned before; then it counts
only what came after its last prune, so it underestimates by at most the weight it had when
pruned, which was below the row's ``keep``-th heaviest weight at that time. A pair absent
from a row was either never seen or pruned under that same bound.

**Precision.** Weights are float32 (7 significant digits): a sum of increments of similar
size is exact to ~1e-7 relative, and an increment below ~1e-7 of an entry's weight is lost,
which cannot change a ranking. Callers keep weights far below float32's range (~3.4e38):
forward-decayed weights are rebased before their growth factor reaches ``2 ** 64``
(``pipeline.model.cooc``). Ids must fit an int32.

**Budget.** ``max_slots`` bounds the arena whatever the catalogue and the traffic
(``RECLOOP_MODEL_NEIGHBOR_MEMORY_MB``; the per-row bound alone allows ``rows x capacity``
entries, 3.2 GB at a million items of 400). When a block would pass it, the table drops its lightest
entries, across all rows, down to three quarters of the budget (the threshold weight is
read from a sample of rows) and packs the arena: heavy rows keep their length and the
pairs seen once go first. Each such pass copies the arena once for a quarter of it freed,
so its cost per learned entry is a constant; the error rule above holds, with "pruned"
including these passes. A table below its budget never runs one: learning there is
exactly what it was without a budget.

**Memory** = arena slots x 8 bytes + 14 bytes per row. The arena grows by half when
full, into zeroed arrays whose pages become resident only as blocks reach them, so the
resident part is the slots handed out so far: at most ``max_slots x 8`` bytes with a
budget (the arena stops growing there), ``rows x capacity x 8`` bytes without one. A growth
copies the slots in use, so for its duration the old arrays are resident too (at most
twice the arena's size, once per growth). Rows leave their outgrown blocks to the next rows
of that class; when such freed blocks hold a quarter of the arena it is packed instead of
grown. ``nbytes`` says what is resident now.

>>> t = NeighborTable(capacity=8, keep=4)
>>> t.add_many(0, np.array([10, 11, 12]), np.array([1.0, 2.0, 3.0])).tolist()  # new ones
[True, True, True]
>>> t.add(0, 11, 0.5)
>>> ids, weights = t.row(0)
>>> ids.tolist(), weights.tolist()
([10, 11, 12], [1.0, 2.5, 3.0])
"""

from __future__ import annotations

import time
from bisect import bisect_left

import numpy as np

from pipeline.model.arrays import (
    BoolArray,
    Float32Array,
    FloatArray,
    Int8Array,
    Int32Array,
    IntArray,
)

_EMPTY_IDS: Int32Array = np.zeros(0, dtype=np.int32)
_EMPTY_W: Float32Array = np.zeros(0, dtype=np.float32)
_GROWTH = 1.5  # the arena grows by half: less slack than doubling, copies stay amortised
_COMPACT_AT = 4  # pack the arena instead of growing it when freed blocks hold a quarter
_COMPACT_MIN = 16  # ... once the arena holds this many full rows (small tables never pack)
_COMPACT_CHUNK = 2_048  # rows moved per step of a compaction (index arrays of ~7 MB)
_BUDGET_KEEP = 0.75  # a table at its budget drops its lightest entries down to this share
_SAMPLE_ROWS = 20_000  # rows read to find the weight that keeps that share
_TIE = 1e-6  # budget keys: equal weights ordered by their position in the row (see _keys)


class NeighborTable:
    """Rows of at most ``capacity`` ``(id, weight)`` entries, stored in slab blocks."""

    def __init__(
        self,
        capacity: int = 200,
        *,
        keep: int | None = None,
        smallest: int = 4,
        max_slots: int | None = None,
    ) -> None:
        if capacity < 2:
            msg = f"capacity must be at least 2, got {capacity}"
            raise ValueError(msg)
        if max_slots is not None and max_slots < 4 * capacity:
            msg = f"max_slots must hold four full rows ({4 * capacity}), got {max_slots}"
            raise ValueError(msg)
        self.max_slots = max_slots
        self.capacity = capacity
        self.keep = min(capacity - 1, max(1, keep if keep is not None else (3 * capacity) // 4))
        classes = []
        size = min(smallest, capacity)
        while size < capacity:
            classes.append(size)
            size *= 2
        classes.append(capacity)
        self.classes: IntArray = np.array(classes, dtype=np.int64)
        self._sizes = classes
        self.ids: Int32Array = np.zeros(max(4_096, 2 * capacity), dtype=np.int32)
        self.weights: Float32Array = np.zeros(self.ids.shape[0], dtype=np.float32)
        self.used = 0  # arena slots handed to blocks (the end of the last one)
        self.high_water = 0  # the most slots ever handed out: the arena's resident part
        self.budget_passes = 0  # passes that dropped the lightest entries to fit the budget
        self._over = 0  # the budget is not enforced below this many used slots (see _fit_budget)
        self._free: list[list[int]] = [[] for _ in classes]
        self._free_slots = 0  # slots in freed blocks
        self.compactions = 0
        self.compact_seconds = 0.0  # wall time spent packing, all compactions
        self.start: IntArray = np.zeros(0, dtype=np.int64)
        self.length: Int32Array = np.zeros(0, dtype=np.int32)
        self.block: Int8Array = np.zeros(0, dtype=np.int8)  # capacity class, -1 = no block
        self.pruned_rows: BoolArray = np.zeros(0, dtype=bool)
        self.pruned = 0  # prunes so far (a row at capacity taking new neighbours)

    # ------------------------------------------------------------------ reading
    def row(self, row: int) -> tuple[Int32Array, Float32Array]:
        """Ids and weights of a row, as views into the arena (no copy), in insertion order."""
        if row >= self.block.shape[0] or self.block[row] < 0:
            return _EMPTY_IDS, _EMPTY_W
        s = int(self.start[row])
        end = s + int(self.length[row])
        return self.ids[s:end], self.weights[s:end]

    def lengths(self) -> Int32Array:
        """Entries per row (rows never written have 0)."""
        return self.length

    def entries(self) -> int:
        """Entries held in all rows."""
        return int(self.length.sum())

    def rows(self) -> IntArray:
        """The rows that hold a block."""
        return np.flatnonzero(self.block >= 0).astype(np.int64)

    def free_slots(self) -> int:
        """Arena slots in freed blocks, waiting for a row of their class."""
        return self._free_slots

    def nbytes(self) -> int:
        """Resident bytes: the arena's slots ever used (the rest is untouched) and row headers."""
        headers = (self.start, self.length, self.block, self.pruned_rows)
        slot = int(self.ids.itemsize + self.weights.itemsize)
        arena = min(self.high_water + self.capacity, int(self.ids.shape[0])) * slot
        return arena + sum(int(a.nbytes) for a in headers)

    # ------------------------------------------------------------------ writing
    def add(self, row: int, neighbor: int, inc: float) -> None:
        """Add ``inc`` to the weight of ``neighbor`` in ``row`` (inserting it when absent)."""
        self.add_many(row, np.array([neighbor], dtype=np.int64), np.array([inc]))

    def add_many(self, row: int, neighbors: IntArray, incs: FloatArray) -> BoolArray:
        """``add`` for distinct ``neighbors`` of one row, vectorised; which were new.

        The row is a contiguous slice of the arena: one comparison of the new ids against
        it finds those present (a row holds an id once, so a hit's flat position says which
        neighbour and where); the others are appended.
        """
        n = neighbors.shape[0]
        new = np.ones(n, dtype=bool)
        if n == 0:
            return new
        self.reserve(row + 1)
        ids, weights = self.row(row)
        width = ids.shape[0]
        if width:
            flat = np.flatnonzero(ids == neighbors[:, None])
            if flat.shape[0]:
                k, col = np.divmod(flat, width)
                weights[col] += incs[k]
                new[k] = False
                if flat.shape[0] == n:
                    return new
                neighbors, incs = neighbors[new], incs[new]
        self._append_many(row, neighbors, incs)
        return new

    def add_to_rows(self, rows: IntArray, neighbor: int, incs: FloatArray) -> None:
        """``add`` of one ``neighbor`` to each of the distinct ``rows``, vectorised."""
        self._find_or_append(rows, neighbor, incs)

    def append_to_rows(self, rows: IntArray, neighbor: int, incs: FloatArray) -> None:
        """``add`` of a ``neighbor`` the caller knows none of the distinct ``rows`` holds.

        Symmetric rows know it without a search: a pair is created on both sides at once,
        so a row never pruned (``was_pruned``) that lacks ``x`` means row ``x`` lacks it.
        """
        self._append_rows(rows, neighbor, incs)

    def _append_rows(
        self,
        rows: IntArray,
        neighbor: int,
        incs: FloatArray,
        lens: Int32Array | None = None,
        starts: IntArray | None = None,
    ) -> None:
        """Append ``neighbor`` to distinct ``rows`` that lack it: vectorised where it fits.

        ``lens`` and ``starts``: the rows' lengths and block starts when the caller has
        them (a search just read them).
        """
        n = rows.shape[0]
        if n == 0:
            return
        if lens is None:
            try:
                lens = self.length[rows]
            except IndexError:
                self.reserve(int(rows.max()) + 1)
                lens = self.length[rows]
        if starts is None:
            starts = self.start[rows]
        blocks = self.block[rows]
        # a row without a block (-1) reads the last class, and fails the first test anyway
        fits = (blocks >= 0) & (lens < self.classes[blocks])
        fit = int(np.count_nonzero(fits))
        if fit == n:  # the usual case: one scatter, no mask
            at = starts + lens
            self.ids[at] = neighbor
            self.weights[at] = incs
            self.length[rows] = lens + 1
            return
        if fit:
            at = starts[fits] + lens[fits]
            self.ids[at] = neighbor
            self.weights[at] = incs[fits]
            self.length[rows[fits]] += 1
        for k in np.flatnonzero(~fits).tolist():
            self._append(int(rows[k]), neighbor, float(incs[k]))

    def was_pruned(self, row: int) -> bool:
        """Whether ``row`` ever dropped entries to make room (since it was last removed)."""
        return row < self.pruned_rows.shape[0] and bool(self.pruned_rows[row])

    def remove_row(self, row: int) -> None:
        """Drop a row and free its block."""
        if row < self.block.shape[0] and self.block[row] >= 0:
            self._release(int(self.block[row]), int(self.start[row]))
            self.block[row] = -1
            self.length[row] = 0
            self.pruned_rows[row] = False

    def remove_where(self, row: int, drop: BoolArray) -> None:
        """Drop the entries of ``row`` where the boolean mask ``drop`` is true (order kept)."""
        ids, weights = self.row(row)
        keep = ~drop
        n = int(keep.sum())
        s = int(self.start[row])
        self.ids[s : s + n] = ids[keep]
        self.weights[s : s + n] = weights[keep]
        self.length[row] = n

    def scale(self, factor: float) -> None:
        """Multiply every weight by ``factor`` (forward-decay rebase)."""
        self.weights[: self.used] *= factor

    # ------------------------------------------------------------------ transport
    def to_arrays(self) -> tuple[IntArray, IntArray, Int32Array, Float32Array]:
        """``(rows, offsets, ids, weights)``: ``rows[k]`` holds ``ids[offsets[k]:offsets[k+1]]``."""
        rows = self.rows()
        lens = self.length[rows].astype(np.int64)
        offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        take = np.repeat(self.start[rows] - offsets[:-1], lens) + np.arange(int(offsets[-1]))
        return rows, offsets, self.ids[take].copy(), self.weights[take].copy()

    def load_arrays(
        self,
        rows: IntArray,
        offsets: IntArray,
        ids: IntArray | Int32Array,
        weights: FloatArray | Float32Array,
    ) -> None:
        """Add rows written by ``to_arrays`` (rows beyond ``capacity`` keep their heaviest)."""
        all_ids = np.asarray(ids, dtype=np.int64)
        all_w = np.asarray(weights, dtype=np.float64)
        for k, row in enumerate(rows.tolist()):
            a, b = int(offsets[k]), int(offsets[k + 1])
            row_ids, row_w = all_ids[a:b], all_w[a:b]
            if b - a > self.capacity:
                best = np.sort(np.argpartition(-row_w, self.capacity - 1)[: self.capacity])
                row_ids, row_w = row_ids[best], row_w[best]
            self.add_many(row, row_ids, row_w)
            self.pruned_rows[row] = True  # its history is unknown: its mirrors may differ

    def load_rows(
        self,
        rows: IntArray,
        lengths: IntArray,
        ids: IntArray,
        weights: FloatArray,
        pruned: BoolArray,
    ) -> bool:
        """Fill an empty table with whole rows at once (a snapshot's); whether it did.

        ``rows[k]`` holds the next ``lengths[k]`` entries of ``ids`` and ``weights``;
        ``pruned[k]``: whether it ever dropped entries (``was_pruned``). Each row
        gets the smallest block that holds it, all blocks one after another: a few array
        operations instead of a Python call per row (a million rows at start-up). The rows
        are what ``add_many`` on each would make, in another arena order. Nothing is done
        (False: add the rows one by one) unless the table is empty, the rows distinct and
        non-empty, none longer than ``capacity`` and all within the budget.
        """
        n = int(lengths.sum())
        if (
            self.used
            or rows.shape[0] == 0
            or int(lengths.min()) < 1
            or int(lengths.max()) > self.capacity
            or np.unique(rows).shape[0] != rows.shape[0]
        ):
            return False
        cls = np.searchsorted(self.classes, lengths)  # the smallest class that holds the row
        sizes = self.classes[cls]
        total = int(sizes.sum())
        if self.max_slots is not None and total > self.max_slots:
            return False
        starts = np.zeros(rows.shape[0], dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        firsts = np.zeros(rows.shape[0], dtype=np.int64)
        np.cumsum(lengths[:-1], out=firsts[1:])
        self.reserve(int(rows.max()) + 1)
        self._resize(total + self.capacity)  # one largest block of slack (unclipped reads)
        take = np.repeat(starts - firsts, lengths) + np.arange(n)
        self.ids[take] = ids
        self.weights[take] = weights
        self.start[rows], self.length[rows], self.block[rows] = starts, lengths, cls
        self.pruned_rows[rows] = pruned
        self.used = self.high_water = total
        return True

    # ------------------------------------------------------------------ internals
    def reserve(self, n: int) -> None:
        """Make room for rows below ``n`` (rows are also added as they are written)."""
        have = self.block.shape[0]
        if n <= have:
            return
        size = max(n, 2 * have, 1024)
        self.start = np.concatenate((self.start, np.zeros(size - have, dtype=np.int64)))
        self.length = np.concatenate((self.length, np.zeros(size - have, dtype=np.int32)))
        self.block = np.concatenate((self.block, np.full(size - have, -1, dtype=np.int8)))
        self.pruned_rows = np.concatenate((self.pruned_rows, np.zeros(size - have, dtype=bool)))

    def _find_or_append(self, rows: IntArray, neighbor: int, incs: FloatArray) -> None:
        """Add ``incs`` to ``neighbor`` in distinct ``rows`` (appended where absent).

        One gather of the rows' blocks finds where the neighbour already is; the rows
        without it get it appended by ``_append_rows`` (vectorised where their block has
        room: at scale most rows are pruned, so most new pairs arrive here), with the
        lengths and starts this search read.
        """
        n = rows.shape[0]
        if n == 0:
            return
        try:
            lens = self.length[rows]
        except IndexError:  # rows never seen: make room (the rule is that they fit)
            self.reserve(int(rows.max()) + 1)
            lens = self.length[rows]
        starts = self.start[rows]
        width = int(lens.max())
        if width:
            flat = np.flatnonzero(self._windows(width)[starts] == neighbor)
            if flat.shape[0]:
                k, col = np.divmod(flat, width)
                inside = col < lens[k]  # past a row's length lies another row or garbage
                if np.count_nonzero(inside) < k.shape[0]:
                    k, col = k[inside], col[inside]
                self.weights[starts[k] + col] += incs[k]  # a row holds it at most once
                if k.shape[0] == n:
                    return
                missing = np.ones(n, dtype=bool)
                missing[k] = False
                rows, incs = rows[missing], incs[missing]
                lens, starts = lens[missing], starts[missing]
        self._append_rows(rows, neighbor, incs, lens, starts)

    def _windows(self, width: int) -> Int32Array:
        """A read-only strided view whose ``k``-th row is the arena's ``width`` ids from ``k``.

        Indexing it with row starts copies each block as one run (a gather of a
        ``starts x width`` index matrix copies id by id: ~40 % slower for twenty rows). Every
        start has ``capacity`` slots after it (the arena's slack), so no row runs off the end.
        """
        ids = self.ids
        step = ids.itemsize
        view: Int32Array = np.ndarray(
            (ids.shape[0] - width + 1, width), dtype=np.int32, buffer=ids, strides=(step, step)
        )
        view.flags.writeable = False
        return view

    def _append(self, row: int, neighbor: int, inc: float) -> int:
        """Append one entry known to be absent from ``row``; its offset (scalar fast path)."""
        block = int(self.block[row])
        n = int(self.length[row])
        if block < 0 or n >= self._sizes[block]:
            at, n = self._make_room(row, 1)
        else:
            at = int(self.start[row]) + n
            self.length[row] = n + 1
        self.ids[at] = neighbor
        self.weights[at] = inc
        return n

    def _append_many(self, row: int, neighbors: IntArray, incs: FloatArray) -> int:
        """Append entries known to be absent from ``row``; the offset of the first."""
        m = neighbors.shape[0]
        n = int(self.length[row])
        block = int(self.block[row])
        if block >= 0 and n + m <= self._sizes[block]:
            s = int(self.start[row]) + n
            self.ids[s : s + m] = neighbors
            self.weights[s : s + m] = incs
            self.length[row] = n + m
            return n
        return self._grow(row, neighbors, incs)

    def _grow(self, row: int, neighbors: IntArray, incs: FloatArray) -> int:
        """Append to a row that lacks room (pruned when full, moved to a larger block).

        Returns the offset of the first appended entry.
        """
        m = neighbors.shape[0]
        if m > self.capacity:  # more new pairs than a row holds: the heaviest
            best = np.sort(np.argpartition(-incs, self.capacity - 1)[: self.capacity])
            neighbors, incs, m = neighbors[best], incs[best], self.capacity
        at, n = self._make_room(row, m)
        self.ids[at : at + m] = neighbors
        self.weights[at : at + m] = incs
        return n

    def _make_room(self, row: int, m: int) -> tuple[int, int]:
        """Make room for ``m`` more entries at the end of ``row`` and count them in its length.

        A full row is pruned first, a row whose block is too small moves to a larger one.
        Returns where the new entries go in the arena and the row's offset of the first;
        the caller writes them (a single entry as scalars, without an array of one).
        """
        block = int(self.block[row])
        n = int(self.length[row]) if block >= 0 else 0
        if n + m > self.capacity:
            self._prune(row, min(self.keep, self.capacity - m))
            n = int(self.length[row])
        cls = bisect_left(self._sizes, n + m)
        if block != cls:
            start = self._alloc(cls)
            # a compaction in ``_alloc`` may have moved, shrunk or (budget) emptied the row
            block = int(self.block[row])
            n = int(self.length[row]) if block >= 0 else 0
            if block >= 0:
                old = int(self.start[row])
                if n:
                    self.ids[start : start + n] = self.ids[old : old + n]
                    self.weights[start : start + n] = self.weights[old : old + n]
                self._release(block, old)
            self.start[row] = start
            self.block[row] = cls
        else:
            start = int(self.start[row])
        self.length[row] = n + m
        return start + n, n

    def _prune(self, row: int, keep: int) -> None:
        """Keep the ``keep`` heaviest entries of a row (their order unchanged)."""
        ids, weights = self.row(row)
        if ids.shape[0] <= keep:
            return
        drop = np.ones(ids.shape[0], dtype=bool)
        if keep > 0:
            drop[np.argpartition(-weights, keep - 1)[:keep]] = False
        self.remove_where(row, drop)
        self.pruned += 1
        self.pruned_rows[row] = True

    def _release(self, cls: int, start: int) -> None:
        self._free[cls].append(start)
        self._free_slots += self._sizes[cls]

    def _alloc(self, cls: int) -> int:
        free = self._free[cls]
        if free:
            self._free_slots -= self._sizes[cls]
            return free.pop()
        size = self._sizes[cls]
        if self._free_slots * _COMPACT_AT >= self.used > _COMPACT_MIN * self.capacity:
            self.compact()  # freed blocks hold a quarter: the arena grows only with rows
        budget = self.max_slots
        if budget is not None and self.used + size > budget and self.used >= self._over:
            self._fit_budget(size, budget)
        # one largest block of slack past the end: lookups read whole widths unclipped
        if self.used + size + self.capacity > self.ids.shape[0]:
            grown = int(_GROWTH * self.ids.shape[0])
            if budget is not None and self.used + size <= budget:
                grown = min(grown, budget + self.capacity)  # never past the bound
            self._resize(max(grown, self.used + size + self.capacity))
        start = self.used
        self.used += size
        self.high_water = max(self.high_water, self.used)
        return start

    def _resize(self, size: int) -> None:
        """Move the arena's slots in use to arrays of ``size`` slots.

        Zeroed arrays come from the OS untouched (calloc): copying only the slots in use
        keeps the growth slack out of the resident memory until rows reach it.
        """
        ids = np.zeros(size, dtype=np.int32)
        ids[: self.used] = self.ids[: self.used]
        weights = np.zeros(size, dtype=np.float32)
        weights[: self.used] = self.weights[: self.used]
        self.ids, self.weights = ids, weights

    def _fit_budget(self, size: int, budget: int) -> None:
        """Make a block of ``size`` fit the budget: pack, then drop the lightest entries.

        The entries dropped are the table's lightest, whatever their row: a threshold
        weight is read from a sample of rows so that the table keeps ``_BUDGET_KEEP`` of the
        budget, and every entry below it goes (rows that lose entries count as pruned).
        Pairs seen once, long ago, go first, as in a row's own prune; heavy rows keep their
        length. Each pass copies the arena once and frees a quarter of it: amortised, a
        constant per entry learned.
        """
        if self._free_slots:
            self.compact()
        for _ in range(3):  # one pass suffices unless the sample misjudged the weights
            if self.used + size <= budget:
                return
            theta = self._weight_quantile(1.0 - _BUDGET_KEEP * budget / max(1, self.used))
            if theta is None:
                break
            self.compact(min_weight=theta)
            self.budget_passes += 1
        # the passes could not make room (cannot happen with distinct keys): the arena grows
        # past its bound rather than retrying at every block, until the next quarter
        if self.used + size > budget:
            self._over = self.used + budget // 4

    def _weight_quantile(self, q: float) -> float | None:
        """The ``q``-quantile of the entries' weights, from an even sample of the rows."""
        rows = self.rows()
        if rows.shape[0] == 0:
            return None
        step = max(1, rows.shape[0] // _SAMPLE_ROWS)
        sample = rows[::step]
        lens = self.length[sample].astype(np.int64)
        total = int(lens.sum())
        if total == 0:
            return None
        rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
        weights = self.weights[np.repeat(self.start[sample], lens) + rank]
        keys = _keys(weights, sample, rank, lens)
        return float(np.quantile(keys, min(1.0, max(0.0, q))))

    def compact(self, *, min_weight: float | None = None) -> None:
        """Pack every row into the smallest block that holds it, in place, freed blocks out.

        Rows leave blocks behind as they move up the classes, and few rows come after them
        at a million items, so freed small blocks pile up. Runs when a block must come from
        the end of the arena while freed blocks hold a ``1 / _COMPACT_AT`` share of it, and
        when the budget is reached (``min_weight``: entries whose key, ``_keys``, is below
        it are dropped on the way). Rows are moved in the order of their
        blocks, each to an offset no later than its own, so the move needs no second arena;
        they go in chunks so the index arrays stay small. Views from ``row`` are stale after.
        """
        t0 = time.perf_counter()
        rows = self.rows()
        rows = rows[np.argsort(self.start[rows], kind="stable")]
        offset = 0
        for a in range(0, rows.shape[0], _COMPACT_CHUNK):
            chunk = rows[a : a + _COMPACT_CHUNK]
            lens = self.length[chunk].astype(np.int64)
            total = int(lens.sum())
            owner = np.repeat(np.arange(chunk.shape[0], dtype=np.int64), lens)
            rank = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
            src = np.repeat(self.start[chunk], lens) + rank
            ids, weights = self.ids[src], self.weights[src]  # copies: read before any write
            new_lens = lens
            if min_weight is not None:
                keep = _keys(weights, chunk, rank, lens) >= min_weight
                owner, ids, weights = owner[keep], ids[keep], weights[keep]
                new_lens = np.bincount(owner, minlength=chunk.shape[0]).astype(np.int64)
                rank = np.arange(owner.shape[0], dtype=np.int64) - np.repeat(
                    np.cumsum(new_lens) - new_lens, new_lens
                )
                self.pruned_rows[chunk[new_lens < lens]] = True
            cls = np.searchsorted(self.classes, new_lens)
            sizes = np.where(new_lens > 0, self.classes[np.minimum(cls, len(self._sizes) - 1)], 0)
            starts = offset + np.cumsum(sizes) - sizes
            dst = starts[owner] + rank
            self.ids[dst] = ids
            self.weights[dst] = weights
            self.start[chunk] = starts
            self.length[chunk] = new_lens
            self.block[chunk] = np.where(new_lens > 0, cls, -1)
            offset += int(sizes.sum())
        self.used = offset
        self._free = [[] for _ in self._sizes]
        self._free_slots = 0
        self.compactions += 1
        self.compact_seconds += time.perf_counter() - t0


def _keys(weights: Float32Array, rows: IntArray, rank: IntArray, lens: IntArray) -> FloatArray:
    """What the budget ranks entries by: the weight, ties broken by recency in the row.

    Entries come grouped by row: ``rows`` and ``lens`` give each group's row and length,
    ``rank`` each entry's position in its row (oldest first). Equal weights are common
    (every pair seen once with the same increment); without a tie-break a threshold on them
    would keep all or drop all. The nudge, below a millionth, only orders near-equal
    weights: the newer in its row is kept first, then a hash of (row, position) decides, so
    that equal weights at the same place of different rows split too.
    """
    per_entry = np.repeat(lens, lens)
    row = np.repeat(rows, lens).astype(np.uint64)
    mixed = (row * np.uint64(0x9E3779B1) + rank.astype(np.uint64) * np.uint64(0x85EBCA77)) & (
        np.uint64(0xFFFF)
    )
    order = (rank + 1) / (per_entry + 1) + mixed.astype(np.float64) / 65_536.0 / 1_024.0
    keys: FloatArray = weights.astype(np.float64) * (1.0 + _TIE * order)
    return keys
