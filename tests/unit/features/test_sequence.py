"""The sequence view both the learn record and the lists read (``features.sequence``)."""

from __future__ import annotations

import random

import pytest

from pipeline.features.sequence import affinity_of, recent_items
from pipeline.features.state import Interaction


def _reference(
    history: list[Interaction], n: int, *, weak: float, skip: float
) -> list[tuple[str, float]]:
    """The definition, spelled out: latest position, strongest weight, ``n`` newest items."""
    weights: dict[str, float] = {}
    latest: dict[str, int] = {}
    for position, h in enumerate(history):
        w = affinity_of(h.weight, weak=weak, skip=skip)
        if w > 0:
            weights[h.item_id] = max(weights.get(h.item_id, 0.0), w)
            latest[h.item_id] = position
    newest = sorted(latest, key=latest.__getitem__)[-n:] if n > 0 else []
    return [(item, weights[item]) for item in newest]


@pytest.mark.parametrize(("weak", "skip"), [(0.5, 0.3), (0.3, 0.0), (0.5, 0.0)])
def test_recent_items_match_the_definition(weak: float, skip: float) -> None:
    """Distinct items, oldest first, each at its latest position with its strongest weight."""
    rng = random.Random(7)
    signals = (1.0, 0.87, 0.5, 0.3, 0.22, 0.0, -0.3, -0.5, -1.0)
    for _ in range(2_000):
        history = [
            Interaction(f"i{rng.randint(0, 25)}", k, "watch", rng.choice(signals))
            for k in range(rng.randint(0, 60))
        ]
        for n in (1, 5, 20, 100):
            assert recent_items(history, n, weak=weak, skip=skip) == _reference(
                history, n, weak=weak, skip=skip
            )
