"""User-kNN over recent windows: scoring, and every structure bounded."""

from __future__ import annotations

import numpy as np

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
    assert list(knn.windows["a"]) == [2, 3, 4]  # the last 3 distinct items
    assert 0 not in knn.likers
    knn.add("b", 4)
    knn.add("c", 4)  # a third user: the least recently active (a) goes
    assert set(knn.windows) == {"b", "c"}
    assert set(knn.likers[4]) == {"b", "c"}
    knn.add("c", 5)
    knn.add("d", 5)
    knn.add("e", 5)
    assert len(knn.likers[5]) <= 2 and len(knn.windows) <= 2


def test_forget_and_eviction_leave_no_trace() -> None:
    knn = UserKnn()
    for user, item in (("a", 1), ("a", 2), ("b", 2)):
        knn.add(user, item)
    knn.forget_user("a")
    assert "a" not in knn.windows and all("a" not in u for u in knn.likers.values())
    knn.evict(np.array([2]))
    assert 2 not in knn.likers and knn.windows["b"] == {}
    assert knn.entries() == 0
