"""The learning-to-rank layer's model: prior, pairwise learning, snapshots."""

from __future__ import annotations

import numpy as np

from pipeline.model.reranker import RERANK_FEATURES, Reranker

BLEND, POP = RERANK_FEATURES.index("blend"), RERANK_FEATURES.index("popularity")


def test_untrained_weights_keep_the_blend_order() -> None:
    ranker = Reranker()
    head = np.zeros((3, len(RERANK_FEATURES)))
    head[:, BLEND] = [1.0, 0.7, 0.2]
    head[:, POP] = [0.0, 1.0, 0.5]
    scores = ranker.score(head)
    assert np.argsort(-scores).tolist() == [0, 1, 2]


def test_pairs_teach_what_the_chosen_items_have_more_of() -> None:
    ranker = Reranker(learning_rate=0.2)
    diff = np.zeros((4, len(RERANK_FEATURES)))
    diff[:, POP] = 1.0  # the chosen item was always the more popular one
    for _ in range(50):
        ranker.learn(diff)
    weights = ranker.weight_vector()
    assert weights[POP] > 0.5
    assert weights[BLEND] == 1.0  # a feature that never differed does not move
    assert ranker.updates == 200


def test_learning_refreshes_the_cached_weights() -> None:
    ranker = Reranker(learning_rate=0.2)
    before = ranker.weight_vector().copy()
    diff = np.zeros((1, len(RERANK_FEATURES)))
    diff[0, POP] = 1.0
    ranker.learn(diff)
    assert ranker.weight_vector()[POP] > before[POP]


def test_snapshot_round_trip_continues_learning() -> None:
    ranker = Reranker(learning_rate=0.2)
    diff = np.zeros((2, len(RERANK_FEATURES)))
    diff[:, POP] = 1.0
    ranker.learn(diff)
    restored = Reranker(learning_rate=0.2)
    restored.restore(ranker.snapshot())
    assert restored.weight_vector().tolist() == ranker.weight_vector().tolist()
    assert restored.updates == 2
    restored.learn(diff)
    assert restored.weight_vector()[POP] > ranker.weight_vector()[POP]
