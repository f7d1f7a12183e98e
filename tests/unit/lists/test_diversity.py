"""The per-category cap (``pipeline.lists.diversity``)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pipeline.lists.diversity import diversify

CATS: dict[str, Sequence[str]] = {
    "x1": ["X"],
    "x2": ["X"],
    "x3": ["X"],
    "x4": ["X"],
    "y1": ["Y"],
    "y2": ["Y"],
    "z1": ["Z"],
    "xy": ["X", "Y"],
    "none": [],
}


def ranked(*ids: str) -> list[tuple[str, float]]:
    """``ids`` best first, with decreasing scores."""
    return [(item, float(len(ids) - k)) for k, item in enumerate(ids)]


def names(items: list[tuple[str, float]]) -> list[str]:
    return [i for i, _ in items]


# --------------------------------------------------------------------------- diversify
def test_docstring_example() -> None:
    cats = {"a": ["X"], "b": ["X"], "c": ["Y"]}
    assert diversify([("a", 3), ("b", 2), ("c", 1)], cats.__getitem__, n=2, cap=1) == [
        ("a", 3),
        ("c", 1),
    ]


def test_cap_per_category() -> None:
    out = diversify(ranked("x1", "x2", "x3", "y1", "x4", "y2"), CATS.__getitem__, n=4, cap=2)
    assert names(out) == ["x1", "x2", "y1", "y2"]


def test_multi_category_item_counts_against_each_category() -> None:
    out = diversify(ranked("xy", "x1", "y1", "z1", "x2"), CATS.__getitem__, n=3, cap=1)
    assert names(out) == ["xy", "z1", "x1"]
    # a multi-category item is itself held back when any of its categories is full
    out = diversify(ranked("x1", "xy", "y1"), CATS.__getitem__, n=2, cap=1)
    assert names(out) == ["x1", "y1"]


def test_order_and_scores_are_kept() -> None:
    items = ranked("z1", "x1", "y1", "x2", "y2", "none")
    out = diversify(items, CATS.__getitem__, n=6, cap=5)
    assert out == items


def test_fills_with_capped_items_best_first_when_short() -> None:
    out = diversify(ranked("x1", "x2", "x3", "x4", "y1"), CATS.__getitem__, n=4, cap=1)
    assert names(out) == ["x1", "y1", "x2", "x3"]


def test_items_without_categories_are_never_capped() -> None:
    cats = {f"n{k}": () for k in range(5)}
    out = diversify(ranked(*cats), cats.__getitem__, n=5, cap=1)
    assert len(out) == 5


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9])
def test_n_is_respected(n: int) -> None:
    items = ranked("x1", "x2", "x3", "x4", "y1", "y2", "z1", "none")
    out = diversify(iter(items), CATS.__getitem__, n=n, cap=2)  # any iterable, e.g. generator
    assert len(out) == min(n, len(items))
    assert len(set(names(out))) == len(out)


def test_n_zero_gives_an_empty_list() -> None:
    out = diversify(ranked("x1", "y1", "z1"), CATS.__getitem__, n=0, cap=1)
    assert out == []


def test_empty_input() -> None:
    assert diversify([], CATS.__getitem__, n=5, cap=2) == []
