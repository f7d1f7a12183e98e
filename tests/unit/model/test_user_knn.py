"""User-kNN over recent windows: scoring, and every structure bounded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.model.user_knn import UserKnn


def test_neighbours_vote_with_their_windows() -> None:
    knn = UserKnn(neighbours=1, positions=5.0)
    for user, items in {"a": [1, 2, 3], "b": [1, 9], "c": [7, 8]}.items():
        for item in items:
            knn.add(user, item)
    ids, scores = knn.score("me", [(1, 1.0), (2, 1.0)])
    assert ids.tolist() == [1, 2, 3]  # a shares two items: the single nearest neighbour
    assert np.all(scores > 0)
    assert knn.score("me", [(42, 1.0)])[0].shape[0] == 0


def test_windows_users_and_likers_are_bounded() -> None:
    knn = UserKnn(window=3, max_users=2, max_likers=2)
    for item in range(5):
        knn.add("a", item)
    assert knn.window_of("a") == [2, 3, 4]  # the last 3 distinct items
    assert knn.likers_of(0) == []
    knn.add("b", 4)
    knn.add("c", 4)  # a third user: the least recently active (a) goes
    assert set(knn.users()) == {"b", "c"}
    assert set(knn.likers_of(4)) == {"b", "c"}
    knn.add("c", 5)
    knn.add("d", 5)
    knn.add("e", 5)
    assert len(knn.likers_of(5)) <= 2 and len(knn.users()) <= 2


def test_forget_and_eviction_leave_no_trace() -> None:
    knn = UserKnn()
    for user, item in (("a", 1), ("a", 2), ("b", 2)):
        knn.add(user, item)
    knn.forget_user("a")
    assert "a" not in knn.users() and all("a" not in knn.likers_of(i) for i in (1, 2))
    knn.evict(np.array([2]))
    assert knn.likers_of(2) == [] and knn.window_of("b") == []
    assert knn.entries() == 0


class _DictKnn:
    """The dict-of-dicts implementation the arrays replaced: the reference they must match."""

    def __init__(self, *, neighbours: int, window: int, max_likers: int, max_users: int) -> None:
        self.neighbours, self.window = neighbours, window
        self.max_likers, self.max_users = max_likers, max_users
        self.windows: dict[str, dict[int, None]] = {}
        self.likers: dict[int, dict[str, None]] = {}

    def add(self, user: str, item: int) -> None:
        window = self.windows.pop(user, None)
        if window is None:
            window = {}
            if len(self.windows) >= self.max_users:
                self.forget_user(next(iter(self.windows)))
        self.windows[user] = window
        window.pop(item, None)
        window[item] = None
        users = self.likers.setdefault(item, {})
        users.pop(user, None)
        users[user] = None
        if len(users) > self.max_likers:
            gone = next(iter(users))
            del users[gone]
            self.windows[gone].pop(item, None)
        if len(window) > self.window:
            oldest = next(iter(window))
            del window[oldest]
            self._unlike(oldest, user)

    def forget_user(self, user: str) -> None:
        for item in self.windows.pop(user, None) or ():
            self._unlike(item, user)

    def evict(self, items: list[int]) -> None:
        for item in items:
            for user in self.likers.pop(item, {}):
                self.windows[user].pop(item, None)

    def _unlike(self, item: int, user: str) -> None:
        users = self.likers.get(item)
        if users is not None:
            users.pop(user, None)
            if not users:
                del self.likers[item]

    def score(self, user: str, recent: list[tuple[int, float]]) -> dict[int, float]:
        last = len(recent) - 1
        sims: dict[str, float] = {}
        for k in range(last, max(last - 10, -1), -1):
            item, weight = recent[k]
            r = weight * math.exp((k - last) / 5.0)
            for other in list(reversed(self.likers.get(item, {})))[:200]:
                sims[other] = sims.get(other, 0.0) + r
        sims.pop(user, None)
        ranked = sorted(
            ((s / math.sqrt(max(len(self.windows[u]), 1)), u) for u, s in sims.items()),
            reverse=True,
        )[: self.neighbours]
        votes: dict[int, float] = {}
        for sim, other in ranked:
            for item in self.windows[other]:
                votes[item] = votes.get(item, 0.0) + sim
        return votes


@pytest.mark.parametrize(
    ("bounds", "users", "items"),
    [
        ({"neighbours": 5, "window": 6, "max_likers": 4, "max_users": 30}, 45, 60),
        # long likers and windows: the numpy search of ``_drop`` (past 48 entries)
        ({"neighbours": 5, "window": 55, "max_likers": 60, "max_users": 80}, 70, 60),
    ],
)
def test_arrays_match_the_dict_reference_exactly(
    bounds: dict[str, int], users: int, items: int
) -> None:
    """Same windows, likers and scores (to the bit) as the dicts, under every bound and eviction."""
    rng = np.random.default_rng(3)
    knn, ref = UserKnn(**bounds), _DictKnn(**bounds)
    for step in range(6_000):
        user, item = f"u{int(rng.integers(0, users))}", int(rng.integers(0, items))
        knn.add(user, item)
        ref.add(user, item)
        if step % 500 == 499:
            gone = [int(x) for x in rng.integers(0, items, 3)]
            knn.evict(np.array(gone, dtype=np.int64))
            ref.evict(gone)
            knn.forget_user(user)
            ref.forget_user(user)
        if step % 50 == 0:
            ids_, weights = rng.integers(0, items, 8).tolist(), rng.random(8).tolist()
            recent = list(zip(ids_, weights, strict=True))
            ids, scores = knn.score(user, recent)
            expected = ref.score(user, recent)
            assert dict(zip(ids.tolist(), scores.tolist(), strict=True)) == expected
    assert knn.users() == list(ref.windows)
    assert all(knn.window_of(u) == list(w) for u, w in ref.windows.items())
    assert all(knn.likers_of(i) == list(u) for i, u in ref.likers.items())
    assert knn.entries() == sum(len(w) for w in ref.windows.values())


def test_memory_is_a_few_bytes_per_user_item() -> None:
    knn = UserKnn(window=50, max_users=2_000, max_likers=500)
    rng = np.random.default_rng(5)
    for _ in range(100_000):
        knn.add(f"u{int(rng.integers(0, 2_000))}", int(rng.integers(0, 5_000)))
    e, u, i = knn.entries(), len(knn.users()), knn.liked_items()
    assert knn.nbytes() <= 10 * e + 150 * u + 130 * i  # the formula in the module docstring
    assert knn.nbytes() < 20 * e  # the dicts took ~270 bytes a user-item
