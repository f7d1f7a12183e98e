"""The ranking model: a river logistic regression over user x item features.

It learns online (while some list reads it: ``ModelParams.like_ranker``), one example per
event, "was this item chosen and liked, or not": the event's item is a positive when the
event is a positive (a watch past the completion threshold) and a negative when skipped;
items sampled by popularity from the catalogue are negatives too ("what else the user could
have picked"). At ranking time the learned weights score every candidate at once with one
matrix product, instead of one river call per candidate (a list is refreshed thousands of
times a second).

Snapshots are plain JSON (weights, intercept, update count), never pickles: a snapshot read
back from Redis must not be able to run code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from river import linear_model, optim, utils

from pipeline.model.arrays import FloatArray

FEATURES: tuple[str, ...] = (
    "knn",  # collaborative similarity to the user's recent positives, 0..1 in the list
    "category",  # user's category affinity for the item's categories, -1..1
    "popularity",  # long-term decayed popularity, log-scaled 0..1
    "trend",  # short-term popularity in the user's segment, 0..1
    "skip_rate",  # item's smoothed skip rate
    "completion",  # item's smoothed mean watch completion
    "dislike",  # similarity to items the user skipped, 0..1
    "fresh",  # 1 for just published, fading over a week
)

# Starting weights: a sensible ranker before the first event (and the prior online learning
# moves from). kNN first, then taste, then what is popular now.
PRIOR: dict[str, float] = {
    "knn": 4.0,
    "category": 1.0,
    "popularity": 1.0,
    "trend": 1.0,
    "skip_rate": -1.0,
    "completion": 0.5,
    "dislike": -1.0,
    "fresh": 0.2,
}


class Ranker:
    """Online logistic regression whose weights rank candidate matrices."""

    def __init__(self, learning_rate: float = 0.02, l2: float = 1e-4) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self.model = self._fresh(PRIOR, 0.0)
        self.updates = 0

    def _fresh(self, weights: dict[str, float], intercept: float) -> Any:
        model = linear_model.LogisticRegression(
            optimizer=optim.SGD(self.learning_rate), l2=self.l2, intercept_init=intercept
        )
        # river keeps weights in a private VectorDict; seeding it is how a prior (or a
        # snapshot) becomes the starting point of online learning.
        model._weights = utils.VectorDict(dict(weights))
        return model

    def learn(self, features: dict[str, float], label: bool) -> None:
        """One online step on one example."""
        self.model.learn_one(features, label)
        self.updates += 1

    def weight_vector(self) -> FloatArray:
        """Current weights in ``FEATURES`` order."""
        weights = self.model.weights
        return np.array([float(weights.get(name, 0.0)) for name in FEATURES])

    def score(self, matrix: FloatArray) -> FloatArray:
        """Logits of candidates, ``matrix`` having one row per candidate, ``FEATURES`` columns."""
        return matrix @ self.weight_vector() + float(self.model.intercept)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state for Redis."""
        return {
            "weights": {name: float(v) for name, v in self.model.weights.items()},
            "intercept": float(self.model.intercept),
            "updates": self.updates,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue learning from a snapshot written by ``snapshot``."""
        weights = {str(k): float(v) for k, v in dict(snapshot["weights"]).items()}
        self.model = self._fresh(weights, float(snapshot["intercept"]))
        self.updates = int(snapshot["updates"])
