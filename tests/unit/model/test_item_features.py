"""Recency weights of a user's history, feature rows (``pipeline.model.item_features``)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.lists.diversity import recency_weights
from pipeline.model.catalog import ItemInfo
from pipeline.model.item_features import feature_matrix, feature_row
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord


# --------------------------------------------------------------------------- recency
def test_recency_weights_docstring_example() -> None:
    assert recency_weights(3, 0.5) == [0.25, 0.5, 1.0]


def test_recency_weights_newest_counts_most() -> None:
    weights = recency_weights(6, 0.9)
    assert len(weights) == 6
    assert weights[-1] == 1.0
    assert weights == sorted(weights)
    for older, newer in zip(weights, weights[1:], strict=False):
        assert older / newer == pytest.approx(0.9)


def test_recency_weights_edge_cases() -> None:
    assert recency_weights(0, 0.9) == []
    assert recency_weights(1, 0.1) == [1.0]
    assert recency_weights(4, 1.0) == [1.0, 1.0, 1.0, 1.0]


# --------------------------------------------------------------------------- feature rows
def test_feature_row_is_the_feature_matrix_of_one_item() -> None:
    """Training examples (scalar) and ranking (vectors) compute the same features."""
    rng = np.random.default_rng(5)
    models = SharedModels(ModelParams(segment_items=5))
    t0 = 1_700_000_000_000
    for k in range(30):
        cats = tuple(f"C{int(c)}" for c in rng.integers(0, 4, int(rng.integers(0, 3))))
        models.upsert_item(ItemInfo(f"i{k}", cats, published_ts=t0 - int(rng.integers(0, 10**9))))
    for k in range(400):
        kind = ("watch", "skip", "click")[k % 3]
        models.apply(
            LearnRecord(
                f"i{int(rng.integers(0, 40))}",
                t0 + k * 60_000,
                kind,
                0.5,
                0.7,
                (f"locale:l{k % 2}",),
                (),
            ),  # fmt: skip
        )
    affinity = {"C0": 0.7, "C2": -1.5, "unknown": 3.0}
    now = t0 + 10**7
    for segment in ("global", "locale:l0", "locale:nowhere"):
        for item in range(models.catalog.slots):
            knn, dislike = np.array([0.3]), np.array([0.1])
            one = np.array([item])
            matrix = feature_matrix(
                models.catalog, models.stats, one, knn, dislike, now, segment, affinity
            )
            row = feature_row(models.catalog, models.stats, item, 0.3, 0.1, now, segment, affinity)
            assert row == pytest.approx(matrix[0].tolist(), rel=1e-12, abs=1e-15)
