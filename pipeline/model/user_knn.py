"""User-kNN over recent windows: people whose recent items overlap most with yours.

Each user's *window* is the last ``window`` distinct items they chose (affinity weight > 0,
see ``pipeline.features.sequence``); per item, ``likers`` holds the users whose window has
it (the ``max_likers`` most recent). To score a user, every other user sharing an item of
the user's recent sequence gets that item's weight times ``exp(-(d - 1) / positions)`` (``d``
= how many items back, 1 for the latest; only the latest ``scan_items`` items and each one's
``scan_likers`` most recent likers are read, so a score costs at most their product in
dictionary updates); the total over ``sqrt`` of their window size
(cosine) ranks them, and the ``neighbours`` best vote for the items of their windows with
their similarity. Positions, never seconds.

**Not a shared model.** It is keyed by user, and learn records never carry a user id, so
each worker keeps one over the users of its own partitions, learned from its own events
(a user's events all reach one worker). It is not in snapshots or the model log: after a
restart it fills again from the next events, and meanwhile lists rank without it. A
``forget`` drops the user (``forget_user``).

**Bounded**: at most ``max_users`` windows (the least recently active user goes first),
``window`` items each, ``max_likers`` users per item. Memory: about ``max_users`` x
``window`` x 2 dict entries (~200 bytes per user-item).

>>> knn = UserKnn(neighbours=1)
>>> for user, item in (("a", 1), ("a", 2), ("b", 1)):
...     knn.add(user, item)
>>> ids, scores = knn.score("b", [(1, 1.0)])
>>> ids.tolist()
[1, 2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import islice

import numpy as np

from pipeline.model.arrays import FloatArray, IntArray

_EMPTY_IDS: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_W: FloatArray = np.zeros(0, dtype=np.float64)


class UserKnn:
    """Recent windows per user and the recent likers per item, bounded."""

    def __init__(
        self,
        *,
        neighbours: int = 30,
        positions: float = 5.0,
        window: int = 50,
        max_likers: int = 500,
        max_users: int = 200_000,
        scan_items: int = 10,
        scan_likers: int = 200,
    ) -> None:
        self.neighbours = neighbours
        self.positions = positions
        self.window = window
        self.max_likers = max_likers
        self.max_users = max_users
        self.scan_items = scan_items  # the user's latest items that look for neighbours
        self.scan_likers = scan_likers  # the most recent likers read per item
        self.windows: dict[str, dict[int, None]] = {}  # by last activity, oldest first
        self.likers: dict[int, dict[str, None]] = {}

    def add(self, user: str, item: int) -> None:
        """``user`` chose ``item``: it joins (or leads again) their window."""
        window = self.windows.pop(user, None)
        if window is None:
            window = {}
            if len(self.windows) >= self.max_users:
                self.forget_user(next(iter(self.windows)))
        self.windows[user] = window  # most recently active last
        window.pop(item, None)
        window[item] = None
        users = self.likers.setdefault(item, {})
        users.pop(user, None)
        users[user] = None
        if len(users) > self.max_likers:
            gone = next(iter(users))
            del users[gone]
            other = self.windows.get(gone)
            if other is not None:
                other.pop(item, None)
        if len(window) > self.window:
            oldest = next(iter(window))
            del window[oldest]
            self._unlike(oldest, user)

    def forget_user(self, user: str) -> None:
        """Drop everything about ``user`` (a forget, or the least active one at capacity)."""
        window = self.windows.pop(user, None)
        for item in window or ():
            self._unlike(item, user)

    def evict(self, items: IntArray) -> None:
        """Forget evicted catalogue indices (their index may come back as another item)."""
        for item in items.tolist():
            for user in self.likers.pop(item, {}):
                window = self.windows.get(user)
                if window is not None:
                    window.pop(item, None)

    def score(self, user: str, recent: Sequence[tuple[int, float]]) -> tuple[IntArray, FloatArray]:
        """Items of the nearest users' windows with their summed similarity (sorted by id).

        ``recent``: the user's recent items with affinity weights, oldest first.
        """
        last = len(recent) - 1
        sims: dict[str, float] = {}
        get = sims.get
        for k in range(last, max(last - self.scan_items, -1), -1):  # latest first
            item, weight = recent[k]
            users = self.likers.get(item)
            if not users:
                continue
            r = weight * math.exp((k - last) / self.positions)
            for other in islice(reversed(users), self.scan_likers):  # most recent first
                sims[other] = get(other, 0.0) + r
        sims.pop(user, None)
        if not sims:
            return _EMPTY_IDS, _EMPTY_W
        windows = self.windows
        ranked = self._nearest(sims)
        votes: dict[int, float] = {}
        for sim, other in ranked:
            for item in windows[other]:
                votes[item] = votes.get(item, 0.0) + sim
        ids = np.fromiter(votes.keys(), dtype=np.int64, count=len(votes))
        values = np.fromiter(votes.values(), dtype=np.float64, count=len(votes))
        order = np.argsort(ids)
        return ids[order], values[order]

    def _nearest(self, sims: dict[str, float]) -> list[tuple[float, str]]:
        """The ``neighbours`` best ``(cosine, user)``, best first (ties: greater user first).

        The same as ``heapq.nlargest`` over every candidate, in numpy: the cosines of the
        few hundred candidates in one vector operation, a Python sort only for those that
        can make the top (at or above the ``neighbours``-th best), identical floats.
        """
        n, k = len(sims), self.neighbours
        sizes = np.fromiter(map(len, map(self.windows.__getitem__, sims)), np.float64, n)
        cosines = np.fromiter(sims.values(), np.float64, n) / np.sqrt(np.maximum(sizes, 1.0))
        if n > k:
            bound = np.partition(cosines, n - k)[n - k]
            keep = np.flatnonzero(cosines >= bound).tolist()
        else:
            keep = list(range(n))
        users = list(sims)
        values = cosines.tolist()
        return sorted(((values[i], users[i]) for i in keep), reverse=True)[:k]

    def entries(self) -> int:
        """Stored user-item pairs (what the memory scales with)."""
        return sum(len(w) for w in self.windows.values())

    def _unlike(self, item: int, user: str) -> None:
        users = self.likers.get(item)
        if users is not None:
            users.pop(user, None)
            if not users:
                del self.likers[item]
