"""Trending per segment: the heaviest items of a segment by decayed mass, in bounded space.

A segment (``locale:en-GB``, ``device:tv``) only needs its top items (a trending list is a
hundred items long), so instead of a catalogue-sized array each segment keeps a
*space-saving* heavy-hitters summary of ``capacity`` items: an item already counted adds its
increment; a new item takes the slot of the lightest one and inherits its count. Every item
whose decayed mass exceeds ``total / capacity`` is guaranteed to be present; a count
overestimates the true mass by at most the inherited count (``errors``), which is at most
the smallest count in the summary. Memory: ``capacity`` x (16 bytes + a dict entry + a
heap entry).

Finding the lightest slot is the per-event cost at a large catalogue (most events name an
item outside a segment's top): a lazy min-heap of ``(count, slot)`` finds it in
``O(log capacity)`` instead of a scan of ``capacity`` counts. Counts only grow between
rebuilds, so a slot's heap entry is at most its count; a popped entry that is behind is
pushed again with the current count, and the first one that is current is the lightest
(ties go to the lowest slot, as a scan's ``argmin`` would choose).

>>> t = HeavyHitters(capacity=2)
>>> for item, inc in [(1, 5.0), (2, 1.0), (3, 2.0)]:
...     t.add(item, inc)
>>> t.top(2).tolist(), t.values(np.array([1, 2, 3])).tolist()
([1, 3], [5.0, 0.0, 3.0])
"""

from __future__ import annotations

import heapq

import numpy as np

from pipeline.model.arrays import FloatArray, IntArray


class HeavyHitters:
    """Space-saving summary of the ``capacity`` heaviest items (decayed counts)."""

    def __init__(self, capacity: int = 500) -> None:
        self.capacity = capacity
        self.items: IntArray = np.full(capacity, -1, dtype=np.int64)
        self.counts: FloatArray = np.zeros(capacity, dtype=np.float64)
        self.errors: FloatArray = np.zeros(capacity, dtype=np.float64)
        self.size = 0
        self.version = 0  # bumped on every change: readers re-rank only after one
        self._slot: dict[int, int] = {}
        self._sorted: tuple[int, IntArray, IntArray] | None = None
        self._heap: list[tuple[float, int]] | None = []  # one entry a slot; None: rebuild
        self._max: float | None = 0.0  # running largest count; None: scan when next read

    def __len__(self) -> int:
        return self.size

    def __contains__(self, item: object) -> bool:
        return item in self._slot

    def add(self, item: int, inc: float) -> None:
        """Count ``inc`` more mass for ``item``."""
        slot = self._slot.get(item)
        if slot is not None:
            count = self.counts.item(slot) + inc
            self.counts[slot] = count
            if inc < 0:  # counts no longer only grow: the heap is rebuilt when next needed
                self._heap = None
        else:
            if self.size < self.capacity:
                slot = self.size
                self.size += 1
                count = inc
                self.errors[slot] = 0.0
            else:  # replace the lightest; the newcomer inherits its count as error
                slot = self._lightest()
                del self._slot[self.items.item(slot)]
                error = self.counts.item(slot)
                self.errors[slot] = error
                count = error + inc
            self.counts[slot] = count
            self.items[slot] = item
            self._slot[item] = slot
            if self._heap is not None:
                heapq.heappush(self._heap, (count, slot))
        if inc < 0:  # a count went down (or replaced the largest one): scan when next read
            self._max = None
        elif self._max is not None and count > self._max:
            self._max = count
        self.version += 1

    def _lightest(self) -> int:
        """Pop the slot with the smallest count (lowest slot on a tie) off the heap."""
        heap = self._heap
        if heap is None or len(heap) != self.size:
            heap = [(c, s) for s, c in enumerate(self.counts[: self.size].tolist())]
            heapq.heapify(heap)
            self._heap = heap
        counts = self.counts
        while True:
            count, slot = heap[0]
            current = counts.item(slot)
            if current == count:
                heapq.heappop(heap)
                return slot
            heapq.heapreplace(heap, (current, slot))  # behind: back in at its count

    def remove(self, items: IntArray) -> None:
        """Forget items (evicted from the catalogue)."""
        for item in items.tolist():
            slot = self._slot.pop(item, None)
            if slot is None:
                continue
            last = self.size - 1
            if slot != last:  # move the last entry into the hole
                moved = int(self.items[last])
                self.items[slot], self.counts[slot] = moved, self.counts[last]
                self.errors[slot] = self.errors[last]
                self._slot[moved] = slot
            self.items[last], self.counts[last], self.errors[last] = -1, 0.0, 0.0
            self.size = last
            self.version += 1
            self._heap = None
            self._max = None

    def scale(self, factor: float) -> None:
        """Multiply every count by ``factor`` (forward-decay rebase)."""
        self.counts *= factor
        self.errors *= factor
        self._heap = None
        self._max = None

    def max(self) -> float:
        """The largest count (0 when empty): kept as counts grow, a scan after a removal."""
        if self._max is None:
            self._max = float(self.counts[: self.size].max(initial=0.0))
        return self._max

    def top(self, k: int) -> IntArray:
        """The ``k`` heaviest items with a positive count, heaviest first."""
        counts = self.counts[: self.size]
        nz = np.flatnonzero(counts > 0)
        if nz.shape[0] > k:
            nz = nz[np.argpartition(-counts[nz], k)[:k]]
        order = np.lexsort((self.items[nz], -counts[nz]))
        return self.items[nz[order]].copy()

    def value(self, item: int) -> float:
        """The count of one item (0 when not in the summary)."""
        slot = self._slot.get(item)
        return 0.0 if slot is None else float(self.counts[slot])

    def values(self, items: IntArray) -> FloatArray:
        """The counts of ``items`` (0 for items not in the summary), vectorised."""
        if items.shape[0] <= 8:  # a few: dict lookups beat re-sorting a summary that moved
            get = self._slot.get
            slots = [get(i, -1) for i in items.tolist()]
            return np.array([self.counts[s] if s >= 0 else 0.0 for s in slots])
        if self._sorted is None or self._sorted[0] != self.version:
            order = np.argsort(self.items[: self.size], kind="stable")
            self._sorted = (self.version, self.items[order], order)
        _, keys, order = self._sorted
        if keys.shape[0] == 0:
            return np.zeros(items.shape[0])
        pos = np.minimum(np.searchsorted(keys, items), keys.shape[0] - 1)
        return np.where(keys[pos] == items, self.counts[order[pos]], 0.0)

    def nbytes(self) -> int:
        """Bytes of the arrays (the slot dict comes on top: ~100 bytes an item)."""
        return self.items.nbytes + self.counts.nbytes + self.errors.nbytes
