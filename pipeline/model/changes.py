"""Which items changed, for readers that keep derived state in step (a bounded ring).

The candidate indexes (``pipeline.lists.candidates``) are kept up to date incrementally:
at each refresh they re-rank only the items whose statistics or metadata changed since
the previous one. A model appends the index of every item it changes to a ``ChangeLog``;
each reader remembers how far it has read. The ring holds the last ``capacity`` changes:
a reader that fell further behind is told so (``None``) and rebuilds from scratch, so the
log's memory is fixed (8 bytes x ``capacity``) whatever the traffic and however many
readers there are.

>>> log = ChangeLog(capacity=4)
>>> log.append(3); log.append_many(np.array([5, 3]))
>>> log.since(0).tolist(), log.position
([3, 5, 3], 3)
>>> log.append_many(np.array([1, 2])); log.since(0) is None
True
"""

from __future__ import annotations

import numpy as np

from pipeline.model.arrays import IntArray


class ChangeLog:
    """The last ``capacity`` item indices appended, with a running position."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self.ring: IntArray = np.zeros(capacity, dtype=np.int64)
        self.position = 0  # changes appended so far

    def append(self, item: int) -> None:
        """Record a change of one item."""
        self.ring[self.position % self.capacity] = item
        self.position += 1

    def append_many(self, items: IntArray) -> None:
        """Record changes of several items."""
        n = items.shape[0]
        if n >= self.capacity:
            self.ring[:] = items[n - self.capacity :]
            self.position += n
            self.ring = np.roll(self.ring, self.position % self.capacity)
            return
        at = (self.position + np.arange(n)) % self.capacity
        self.ring[at] = items
        self.position += n

    def since(self, position: int) -> IntArray | None:
        """Items changed after ``position`` (in order, repeats kept); ``None`` if overwritten."""
        n = self.position - position
        if n > self.capacity or n < 0:
            return None
        at = (position + np.arange(n)) % self.capacity
        return self.ring[at]
