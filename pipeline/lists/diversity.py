"""The last step of a list: order, a per-category cap for diversity, and human reasons.

Pure functions over plain data, so the rules a list obeys can be read and tested in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate after ranking: its score and the signal that put it there."""

    item_id: str
    score: float
    reason: str


def diversify(
    ranked: Iterable[tuple[K, float]],
    categories_of: Callable[[K], Sequence[str]],
    *,
    n: int,
    cap: int,
) -> list[tuple[K, float]]:
    """Take the best ``n`` items, at most ``cap`` per category, keeping the order.

    An item with several categories counts against each of them, so a list cannot be
    filled with one genre through its sub-genres. When the cap leaves the list short the
    capped items fill the remaining places, best first: a short list would be worse than a
    less varied one.

    >>> cats = {"a": ["X"], "b": ["X"], "c": ["Y"]}
    >>> diversify([("a", 3), ("b", 2), ("c", 1)], cats.__getitem__, n=2, cap=1)
    [('a', 3), ('c', 1)]
    """
    chosen: list[tuple[K, float]] = []
    overflow: list[tuple[K, float]] = []
    if n <= 0:
        return chosen
    per_category: dict[str, int] = {}
    for item_id, score in ranked:
        cats = categories_of(item_id)
        capped = False
        for c in cats:  # a plain loop, not any(...): this runs per candidate, per list
            if per_category.get(c, 0) >= cap:
                capped = True
                break
        if capped:
            overflow.append((item_id, score))
            continue
        chosen.append((item_id, score))
        for c in cats:
            per_category[c] = per_category.get(c, 0) + 1
        if len(chosen) == n:
            return chosen
    return chosen + overflow[: n - len(chosen)]


def recency_weights(count: int, decay: float) -> list[float]:
    """Weights for a history of ``count`` items, oldest first: the newest gets 1.

    >>> recency_weights(3, 0.5)
    [0.25, 0.5, 1.0]
    """
    return [decay ** (count - 1 - k) for k in range(count)]
