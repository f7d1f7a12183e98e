"""Recency weights of a user's history (``pipeline.model.item_features``)."""

from __future__ import annotations

import pytest

from pipeline.lists.diversity import recency_weights


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
