"""The learning-to-rank layer: an online river model that re-orders the head of a list.

The blend (``pipeline.lists.recommend``) adds its sources with fixed weights. This model
learns, from what users then chose, how much each source should count *for this candidate
and this user*: item-kNN, user-kNN and stage popularity scores, popularity, category
affinity, completion and skip rates, the candidate's rank in the blend and how cold the user
is (``RERANK_FEATURES``, built by ``pipeline.lists.rerank``).

It is trained pairwise (RankNet): at each positive event, *before* the models learn from it,
the chosen item's feature row minus the row of an item the list would have shown instead
is one example "the first beats the second" for a ``river.linear_model.LogisticRegression``
without intercept (a pair difference has no bias). Starting weights reproduce the blend's
order (weight 1 on the blend score), so an untrained model changes nothing and learning moves
from there. Ranking reads the weights once per model change and scores a head with one
matrix product.

Snapshots are plain JSON (weights and update count), never pickles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from river import linear_model, optim, utils

from pipeline.model.arrays import FloatArray

RERANK_FEATURES: tuple[str, ...] = (
    "blend",  # the blend's score, scaled to the head's best
    "rank",  # 1 / log2(rank in the blend + 2)
    "knn",  # item-kNN score, scaled to the head's best
    "knn_last",  # similarity to the user's latest item alone, scaled to the head's best
    "uknn",  # user-kNN part, scaled to the head's best
    "stage",  # stage popularity at the user's stage, scaled to the head's best (not faded)
    "popularity",  # users per item, log share of the most popular
    "category",  # the user's category affinity for the item, -1..1
    "completion",  # the item's smoothed mean watch completion
    "skip_rate",  # the item's smoothed skip rate
    "cold",  # 3 / (3 + events): 1 for a new user, fading with their history
    "stage_cold",  # stage x cold: what others chose at this point speaks for cold users
    "popularity_cold",  # popularity x cold
    "knn_cold",  # item-kNN x cold: few positives make a noisy kNN
)

PRIOR: dict[str, float] = {"blend": 1.0}


class Reranker:
    """Pairwise online logistic regression whose weights score a list's head."""

    def __init__(self, learning_rate: float = 0.05, l2: float = 0.0) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.model = self._fresh(PRIOR)
        self.updates = 0
        self._weights: FloatArray | None = None  # cached vector, cleared by learning

    def _fresh(self, weights: dict[str, float]) -> Any:
        model = linear_model.LogisticRegression(
            optimizer=optim.SGD(self.learning_rate), l2=self.l2, intercept_lr=0.0
        )
        # river keeps weights in a private VectorDict: seeding it makes the prior (or a
        # snapshot) the starting point of online learning.
        model._weights = utils.VectorDict(dict(weights))
        return model

    def learn(self, differences: FloatArray) -> None:
        """One step per row: ``chosen - other`` feature rows, the chosen one preferred."""
        names = RERANK_FEATURES
        for row in differences.tolist():
            self.model.learn_one(dict(zip(names, row, strict=True)), True)
            self.updates += 1
        if differences.shape[0]:
            self._weights = None

    def weight_vector(self) -> FloatArray:
        """Current weights in ``RERANK_FEATURES`` order."""
        if self._weights is None:
            weights = self.model.weights
            self._weights = np.array([float(weights.get(n, 0.0)) for n in RERANK_FEATURES])
        return self._weights

    def score(self, matrix: FloatArray) -> FloatArray:
        """Scores of a head: one row per candidate, ``RERANK_FEATURES`` columns."""
        return matrix @ self.weight_vector()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for Redis."""
        return {
            "weights": {name: float(v) for name, v in self.model.weights.items()},
            "updates": self.updates,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue learning from a snapshot written by ``snapshot``."""
        weights = {str(k): float(v) for k, v in dict(snapshot["weights"]).items()}
        self.model = self._fresh(weights)
        self.updates = int(snapshot["updates"])
        self._weights = None
